"""The one admission point: every keyed route goes through `admit`; the ticket's headers and
an X-Request-Id leave on every response (a 200, an error, a 500, a stream); each admitted
request is settled once its response has ended, by outcome; a stopped service takes only
its own routes down."""

from __future__ import annotations

import asyncio
import io
import json
import threading
import wave
from collections.abc import AsyncIterator
from types import SimpleNamespace

import httpx
import pytest
from fastapi import Depends, FastAPI
from fastapi.responses import JSONResponse, StreamingResponse
from fastapi.routing import APIRoute
from prometheus_client import REGISTRY

from gateway.admission import AdmissionMiddleware, Outcome, Ticket, admit
from gateway.app import create_app
from gateway.errors import ApiError, install_error_handlers
from gateway.openapi import AUTHENTICATED, flat_routes
from gateway.settings import GatewaySettings
from gateway.store.keys import ApiKey
from services.stt.server import create_server as create_stt_server
from services.stt.settings import SttSettings
from speechmesh.runtime.server import stop_server
from tests.conftest import running_gateway, running_service, wait_serving
from tests.fakes import ScriptedRecognizer, ScriptedSynthesizer, scripted_registry, scripted_stt_engines

# The playground page (`/`) holds no data: it calls the keyed routes with the key it is given.
PUBLIC = {"/", "/healthz", "/readyz", "/openapi.json", "/docs", "/docs/oauth2-redirect", "/redoc"}


def _calls(dependant) -> set:
    found = {dependant.call}
    for dependency in dependant.dependencies:
        found |= _calls(dependency)
    return found


def _api_routes(routes: list) -> list[APIRoute]:
    return [route for route in flat_routes(routes) if isinstance(route, APIRoute)]


def test_every_keyed_route_goes_through_admit() -> None:
    app = create_app(GatewaySettings())
    routes = _api_routes(app.routes)
    keyed = [route for route in routes if (route.openapi_extra or {}).get("security") == AUTHENTICATED["security"]]
    assert len(keyed) >= 14  # both spellings of every /v1/ route but the preview
    for route in keyed:
        assert admit in _calls(route.dependant), route.path
    others = {route.path for route in routes} - {route.path for route in keyed} - PUBLIC
    # The preview takes a signature or a key (admitted in its body, tested in test_hostile_http).
    assert others == {"/v1/voices/preview/{voice_id}.mp3"}


def _header_checks(reply: httpx.Response, seen: set[str]) -> None:
    request_id = reply.headers["x-request-id"]
    assert len(request_id) == 32 and request_id not in seen
    seen.add(request_id)


async def test_headers_on_a_200_a_4xx_and_a_stream(gateway, client: httpx.AsyncClient) -> None:
    seen: set[str] = set()
    whole = await client.post("/v1/tts/", json={"text": "Hello there.", "model": "piper", "format": "wav"})
    assert whole.status_code == 200 and whole.headers["x-model"] == "piper"
    # Piper is a free-tier model: 1 credit per started 1,000 characters.
    assert whole.headers["x-credits-used"] == "1"
    _header_checks(whole, seen)

    async with client.stream(
        "POST", "/v1/tts/", json={"text": "Hello there.", "model": "piper", "stream": True}
    ) as streamed:
        assert streamed.status_code == 200
        assert streamed.headers["x-model"] == "piper" and streamed.headers["x-voice"]
        assert streamed.headers["x-credits-used"] == "1"
        _header_checks(streamed, seen)
        assert len(await streamed.aread()) > 1000

    unknown = await client.post("/v1/tts/", json={"text": "Hello.", "model": "piper", "voice": "nobody"})
    assert unknown.status_code == 404
    _header_checks(unknown, seen)
    async with gateway.client(await gateway.key("pro")) as pro:
        too_long = await pro.post("/v1/tts/", json={"text": "a" * 5001})
    assert too_long.status_code == 400 and too_long.json()["error"]["param"] == "text"
    assert too_long.headers["x-ratelimit-limit"] == "60" and "x-credits-used" not in too_long.headers
    _header_checks(too_long, seen)
    async with httpx.AsyncClient(base_url=gateway.base_url) as anonymous:
        _header_checks(await anonymous.get("/v1/models/"), seen)


class RecordingPolicy:
    """Refuses the admission of /turned-away and more than 100 characters; records settlements."""

    def __init__(self) -> None:
        self.settled: list[tuple[str, Outcome, dict[str, float], int]] = []

    async def admit(self, ticket: Ticket) -> None:
        if ticket.route == "/turned-away":
            raise ApiError(429, "rate_limited", "Too many requests.")

    async def reserve(
        self, ticket: Ticket, unit: str, amount: float, param: str | None, model: str | None, grade: str | None
    ) -> None:
        if amount > 100:
            raise ApiError(402, "insufficient_credits", "Not enough credits.")

    async def served(self, ticket: Ticket, model: str | None, amount: float | None) -> None:
        pass

    async def settle(self, ticket: Ticket, outcome: Outcome) -> None:
        self.settled.append((ticket.route, outcome, dict(ticket.usage), ticket.sent_bytes))


class OneKey:
    async def lookup(self, secret: str) -> ApiKey | None:
        return ApiKey(1, "sk-tts-good", "t", "pro", "", None) if secret == "sk-tts-good" else None


def _tiny_app(policy: RecordingPolicy) -> FastAPI:
    """Routes admitted by the real `admit` that describe themselves and meter usage, then
    answer in each possible way."""
    app = FastAPI()
    install_error_handlers(app)
    app.add_middleware(AdmissionMiddleware)
    app.state.stores = SimpleNamespace(keys=OneKey())
    app.state.policy = policy

    async def described(ticket: Ticket = Depends(admit)) -> Ticket:
        ticket.describe({"X-Model": "m"})
        await ticket.meter("characters", 5)
        return ticket

    @app.get("/ok", dependencies=[Depends(described)])
    async def ok() -> JSONResponse:
        return JSONResponse({"ok": True})

    @app.get("/refused", dependencies=[Depends(described)])
    async def refused() -> JSONResponse:
        raise ApiError(404, "not_found", "No such thing.")

    @app.get("/broken", dependencies=[Depends(described)])
    async def broken() -> JSONResponse:
        raise RuntimeError("a bug with a secret path /etc/x")

    @app.get("/cut", dependencies=[Depends(described)])
    async def cut() -> StreamingResponse:
        async def chunks() -> AsyncIterator[bytes]:
            yield b"x" * 100
            raise RuntimeError("the upstream failed mid-stream")

        return StreamingResponse(chunks())

    @app.get("/turned-away", dependencies=[Depends(described)])
    async def turned_away() -> JSONResponse:
        raise AssertionError("not admitted: never runs")

    @app.get("/too-much")
    async def too_much(ticket: Ticket = Depends(described)) -> JSONResponse:
        await ticket.meter("characters", 1000)
        raise AssertionError("not reserved: never runs")

    return app


async def _call(app: FastAPI, path: str) -> tuple[int, dict[str, str], bytes]:
    """One GET through the ASGI app itself: what an HTTP server would send, cut streams included."""
    sent: list[dict] = []
    asked = False

    async def receive() -> dict:
        nonlocal asked
        if not asked:
            asked = True
            return {"type": "http.request", "body": b"", "more_body": False}
        await asyncio.Event().wait()  # the client stays until the response ends
        raise AssertionError("unreachable")

    async def send(message: dict) -> None:
        sent.append(message)

    scope = {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": "GET",
        "scheme": "http",
        "path": path,
        "raw_path": path.encode(),
        "root_path": "",
        "query_string": b"",
        "headers": [(b"authorization", b"Bearer sk-tts-good")],
        "client": ("127.0.0.1", 1),
        "server": ("test", 80),
    }
    await app(scope, receive, send)
    [start] = [message for message in sent if message["type"] == "http.response.start"]
    headers = {name.decode().lower(): value.decode() for name, value in start["headers"]}
    body = b"".join(message.get("body", b"") for message in sent if message["type"] == "http.response.body")
    return start["status"], headers, body


@pytest.mark.parametrize(
    ("path", "status", "outcome", "sent"),
    [
        ("/ok", 200, Outcome.SUCCEEDED, 11),
        ("/refused", 404, Outcome.FAILED, None),
        ("/broken", 500, Outcome.FAILED, None),
        ("/cut", 200, Outcome.CUT, 100),
    ],
)
async def test_the_ticket_headers_leave_with_every_response_and_each_request_is_settled(
    path: str, status: int, outcome: Outcome, sent: int | None
) -> None:
    policy = RecordingPolicy()
    code, headers, body = await _call(_tiny_app(policy), path)
    assert code == status
    assert headers["x-model"] == "m" and len(headers["x-request-id"]) == 32
    if status >= 400:
        assert set(json.loads(body)["error"]) >= {"code", "message"} and b"/etc/x" not in body
    if status == 500:
        assert headers["connection"] == "close"  # the request's body may be unread
    [(route, settled, usage, sent_bytes)] = policy.settled
    assert (route, settled, usage) == (path, outcome, {"characters": 5.0})
    if sent is not None:
        assert sent_bytes == sent


async def test_what_the_policy_refuses_is_neither_settled_nor_counted() -> None:
    policy = RecordingPolicy()
    app = _tiny_app(policy)
    code, headers, _ = await _call(app, "/turned-away")
    assert code == 429 and headers["x-request-id"] and policy.settled == []
    code, headers, _ = await _call(app, "/too-much")
    # Admitted (settled, as failed), with the 5 characters it was allowed and not the 1,000 refused.
    assert code == 402 and headers["x-model"] == "m"
    [(route, outcome, usage, _)] = policy.settled
    assert (route, outcome, usage) == ("/too-much", Outcome.FAILED, {"characters": 5.0})


def _requests(outcome: str) -> float:
    return (
        REGISTRY.get_sample_value("speechmesh_gateway_requests_total", {"route": "/v1/tts/", "outcome": outcome}) or 0.0
    )


async def _settled(outcome: str, before: float) -> None:
    async with asyncio.timeout(10):
        while _requests(outcome) == before:
            await asyncio.sleep(0.05)


async def test_a_client_that_leaves_is_settled_as_cut_or_abandoned(tmp_path) -> None:
    release = threading.Event()
    release.set()
    slow = ScriptedSynthesizer(release, synth_seconds=0.2, blocks=50)
    async with (
        running_service(scripted_registry(slow)) as port,
        running_gateway(f"127.0.0.1:{port}", tmp_path / "db.sqlite") as gateway,
        gateway.client(await gateway.key()) as http,
    ):
        await wait_serving(port)
        before = _requests("cut")
        async with http.stream("POST", "/v1/tts/", json={"text": "Hello.", "stream": True, "format": "wav"}) as reply:
            assert reply.status_code == 200
            await anext(reply.aiter_raw())
        await _settled("cut", before)
        assert slow.produced < 50  # the synthesis stopped with the stream

        # Gone before any response: the whole file was still being made.
        before, produced = _requests("abandoned"), slow.produced
        with pytest.raises(httpx.ReadTimeout):
            await http.post("/v1/tts/", json={"text": "Hello.", "format": "wav"}, timeout=0.5)
        await _settled("abandoned", before)
        assert slow.produced - produced < 50


def _wav() -> bytes:
    buffer = io.BytesIO()
    with wave.open(buffer, "wb") as out:
        out.setnchannels(1)
        out.setsampwidth(2)
        out.setframerate(16000)
        out.writeframes(b"\0\0" * 16000)
    return buffer.getvalue()


async def test_a_stopped_stt_service_leaves_tts_serving(tmp_path) -> None:
    release = threading.Event()
    release.set()
    stt_server, stt_port = await create_stt_server(
        SttSettings(port=0, workers=1, log_json=False), scripted_stt_engines(ScriptedRecognizer())
    )
    async with (
        running_service(scripted_registry(ScriptedSynthesizer(release))) as tts_port,
        running_gateway(f"127.0.0.1:{tts_port}", tmp_path / "db.sqlite", f"127.0.0.1:{stt_port}") as gateway,
        gateway.client(await gateway.key()) as http,
    ):
        await wait_serving(tts_port)
        await wait_serving(stt_port)
        files = {"file": ("a.wav", _wav(), "audio/wav")}
        assert (await http.post("/v1/stt/", files=files)).status_code == 200
        await stop_server(stt_server, grace=0)

        async with asyncio.timeout(10):
            while (ready := await http.get("/readyz")).json()["capabilities"]["stt"] != "unavailable":
                await asyncio.sleep(0.05)
        assert ready.status_code == 200 and ready.json()["capabilities"]["tts"] == "serving"
        assert (await http.post("/v1/tts/", json={"text": "Still here.", "format": "wav"})).status_code == 200
        down = await http.post("/v1/stt/", files=files)
        assert down.status_code == 503 and down.json()["error"]["code"] == "model_loading"
        assert int(down.headers["retry-after"]) >= 1 and down.headers["x-request-id"]
