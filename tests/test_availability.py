"""The gateway's view of its upstreams: Retry-After estimates (a fake clock, no servers) and,
against a real gRPC server, a restarted service served again as soon as it is SERVING."""

from __future__ import annotations

import asyncio
import threading
from types import SimpleNamespace

import grpc
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc

from gateway.errors import rpc_error_response
from services.tts.server import create_server as create_tts_server
from services.tts.settings import TtsSettings
from speechmesh.clients.availability import Availability
from speechmesh.runtime.server import stop_server
from speechmesh.runtime.status import to_grpc_status
from tests.conftest import running_gateway
from tests.fakes import ScriptedSynthesizer, scripted_registry

SERVING = health_pb2.HealthCheckResponse.SERVING


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_retry_after_counts_down_the_default_until_a_restart_is_seen() -> None:
    clock = Clock()
    availability = Availability(["tts", "stt"], default_restart_seconds=10, clock=clock)
    # Both down since the gateway started: the default, less the time already waited.
    clock.now += 2.5
    assert availability.retry_after() == 8
    availability.set_serving("tts", True)
    availability.set_serving("stt", True)
    # Nothing down yet though a call failed as unavailable: its outage has only begun.
    assert availability.retry_after() == 10
    availability.set_serving("stt", False)
    clock.now += 4
    assert availability.retry_after() == 6
    # Overdue: never below 1 s.
    clock.now += 30
    assert availability.retry_after() == 1


def test_retry_after_learns_how_long_restarts_take() -> None:
    clock = Clock()
    availability = Availability(["stt"], default_restart_seconds=10, clock=clock)
    clock.now += 60  # the outage under way at start says nothing about restarts
    availability.set_serving("stt", True)
    assert availability.expected_restart("stt") == 10
    for took in (3.0, 4.0, 30.0):
        availability.set_serving("stt", False)
        clock.now += took
        availability.set_serving("stt", True)
    # The median: one slow outage does not sway it.
    assert availability.expected_restart("stt") == 4
    availability.set_serving("stt", False)
    clock.now += 1.5
    assert availability.retry_after() == 3
    # Repeated NOT_SERVING (a loading service) keeps the outage's start.
    availability.set_serving("stt", False)
    assert availability.seconds_left("stt") == 2.5


def test_retry_after_covers_the_upstreams_called_that_are_down() -> None:
    clock = Clock()
    availability = Availability(["tts", "stt"], default_restart_seconds=20, clock=clock)
    availability.set_serving("tts", True)
    availability.set_serving("stt", True)
    availability.set_serving("tts", False)
    clock.now += 15
    availability.set_serving("stt", False)
    assert availability.seconds_left("tts") == 5
    assert availability.seconds_left("stt") == 20
    assert availability.retry_after() == 20
    # A request knows which upstream it called: its wait is that one's.
    assert availability.retry_after(["tts"]) == 5
    assert availability.retry_after(["stt", "tts"]) == 20


# Waits out gRPC's default reconnect backoff for the comparison, so ~15 s without a model.
@pytest.mark.slow
async def test_a_restarted_service_is_served_again_as_soon_as_it_is_serving(tmp_path) -> None:
    """Without short reconnect backoff, an 11.5 s outage leaves the channel waiting for its
    next attempt (scheduled 12.7-18.9 s after the outage began by gRPC's 1 s x 1.6 backoff),
    so the gateway answers 503 for seconds while the service is SERVING again."""
    release = threading.Event()
    release.set()

    async def start(port: int) -> tuple[grpc.aio.Server, int]:
        settings = TtsSettings(port=port, workers=1, log_json=False)
        server, port = await create_tts_server(settings, scripted_registry(ScriptedSynthesizer(release)))
        # On a subchannel of its own: gRPC pools subchannels by address and arguments, so a
        # plain channel could share the gateway's and its reconnect backoff.
        async with grpc.aio.insecure_channel(
            f"127.0.0.1:{port}", options=[("grpc.use_local_subchannel_pool", 1)]
        ) as channel:
            request = health_pb2.HealthCheckRequest()
            while (await health_pb2_grpc.HealthStub(channel).Check(request, wait_for_ready=True)).status != SERVING:
                await asyncio.sleep(0.05)
        return server, port

    server, port = await start(0)
    body = {"text": "hi", "format": "wav"}
    try:
        async with (
            running_gateway(f"127.0.0.1:{port}", tmp_path / "db.sqlite", upstream_restart_seconds=30) as gateway,
            gateway.client(await gateway.key()) as http,
        ):
            assert (await http.post("/v1/tts/", json=body)).status_code == 200
            await stop_server(server, grace=0)
            loop = asyncio.get_running_loop()
            down = loop.time()
            await asyncio.sleep(1)
            # Retry-After counts down from the configured restart time.
            retry_after = []
            for _ in range(2):
                reply = await http.post("/v1/tts/", json=body)
                assert reply.status_code == 503 and reply.json()["error"]["code"] == "model_loading"
                retry_after.append(int(reply.headers["retry-after"]))
                await asyncio.sleep(2)
            # 30 when the watch saw the outage begin a moment after this request failed.
            assert 27 <= retry_after[0] <= 30 and retry_after[1] < retry_after[0]
            await asyncio.sleep(11.5 - (loop.time() - down))
            server, _ = await start(port)
            back = loop.time()
            while (await http.get("/readyz")).json()["upstreams"]["tts"] != "SERVING":
                assert loop.time() - back < 2, "the gateway still sees the service as down"
                await asyncio.sleep(0.05)
            assert (await http.post("/v1/tts/", json=body)).status_code == 200
    finally:
        await stop_server(server, grace=0)


@pytest.mark.parametrize(
    ("code", "info", "status"),
    [
        # gRPC's own failures of a call whose connection broke (a service killed or starting).
        (grpc.StatusCode.INTERNAL, False, 503),
        (grpc.StatusCode.UNKNOWN, False, 503),
        (grpc.StatusCode.UNAVAILABLE, False, 503),
        # A service's own fault: it sends an ErrorInfo.
        (grpc.StatusCode.INTERNAL, True, 500),
    ],
)
def test_a_call_lost_in_transport_is_a_503_to_retry(code: grpc.StatusCode, info: bool, status: int) -> None:
    if info:
        sent = to_grpc_status(code, "Internal server error.", "INTERNAL", {})
        error = grpc.aio.AioRpcError(
            code, grpc.aio.Metadata(), grpc.aio.Metadata(*sent.trailing_metadata), sent.details
        )
    else:
        error = grpc.aio.AioRpcError(code, grpc.aio.Metadata(), grpc.aio.Metadata(), "Internal error from Core")
    mesh = SimpleNamespace(availability=Availability(["stt"], default_restart_seconds=7))
    request = SimpleNamespace(app=SimpleNamespace(state=SimpleNamespace(mesh=mesh)))
    reply = rpc_error_response(error, request)  # type: ignore[arg-type]
    assert reply.status_code == status
    assert (reply.headers.get("retry-after") == "7") == (status == 503)
