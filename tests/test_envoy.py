"""Envoy in front of two real TTS replicas: deploy/envoy/envoy.yaml, the config Kubernetes
runs, rendered for loopback by deploy/envoy/local.py (only addresses and ports change).

Under synthesis traffic from a client that never retries on its own, one replica is
SIGKILLed: Envoy ejects it, replays on the survivor every call the dead one had not begun
to answer, and sends everything after to the survivor. A whole-file Synthesize answers
nothing until its file is encoded (services/tts/servicer.py), so the call the victim was
synthesizing is replayed too; only a call whose bytes were already leaving (well under a
millisecond of each call) could fail: at most one per worker of the dead replica.
Envoy's retries are per method: fake STT upstreams that answer UNAVAILABLE see an
idempotent Recognize three times, a live StreamingRecognize once. The config's retry list
is the clients' IDEMPOTENT lists, and the Kubernetes image is the Envoy release tested here.
"""

from __future__ import annotations

import asyncio
import re
import signal
import struct
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any

import grpc
import pytest
import pytest_asyncio
import yaml
from google.protobuf import descriptor_pool

from deploy.envoy import local
from speechmesh.clients import audio, chat, stt, tts
from speechmesh.v1 import common_pb2, models_pb2, stt_pb2, stt_pb2_grpc, tts_pb2, tts_pb2_grpc
from tests.envoy_mesh import (
    NO_RETRIES,
    ROOT,
    Envoy,
    FakeStt,
    Replica,
    envoy_version,
    fake_stt,
    running_envoy,
    tts_replicas,
    until,
)

PROXY = ROOT / "deploy" / "k8s" / "components" / "envoy" / "proxy.yaml"
K8S_COMPONENT = ROOT / "deploy" / "k8s" / "components" / "envoy" / "kustomization.yaml"

IDEMPOTENT = {tts.SERVICE: tts.IDEMPOTENT, stt.SERVICE: stt.IDEMPOTENT}
IDEMPOTENT |= {audio.SERVICE: audio.IDEMPOTENT, chat.SERVICE: chat.IDEMPOTENT}
# Methods every service also serves; none is on a client's list.
SHARED_METHODS = [
    (models_pb2.DESCRIPTOR.services_by_name["ModelCatalog"].full_name, "ListModels"),
    ("grpc.health.v1.Health", "Check"),
    ("grpc.health.v1.Health", "Watch"),
]
TEXTS = [
    "The quick brown fox jumps over the lazy dog.",
    "A proxy in front of two replicas.",
    "Every call is answered once.",
    "Speech from the surviving replica.",
]
CLIENTS = 6  # calls in flight at once: each replica runs one and queues the rest
REPLICA_WORKERS = 1  # so at most one call per replica is being answered at any moment


def _service_routes(config: dict[str, Any]) -> dict[str, tuple[dict[str, Any], dict[str, Any]]]:
    """Each listener that fronts a service (its cluster is health-checked): its one route's
    action and the cluster behind it."""
    clusters = {cluster["name"]: cluster for cluster in config["static_resources"]["clusters"]}
    found = {}
    for listener in config["static_resources"]["listeners"]:
        (chain,) = listener["filter_chains"]
        (manager,) = chain["filters"]
        (host,) = manager["typed_config"]["route_config"]["virtual_hosts"]
        (route,) = host["routes"]
        cluster = clusters[route["route"]["cluster"]]
        if "health_checks" in cluster:
            found[listener["name"]] = (route["route"], cluster)
    return found


def _health_name(cluster: dict[str, Any]) -> str:
    (check,) = cluster["health_checks"]
    return str(check["grpc_health_check"]["service_name"])


def test_retries_exactly_the_methods_the_clients_call_idempotent() -> None:
    """Each service route retries the paths of its service's IDEMPOTENT methods, and no other
    method of any service (a live recognition, a voice chat turn, the catalog, health)."""
    pool = descriptor_pool.Default()
    every_method = [(s, m.name) for s in IDEMPOTENT for m in pool.FindServiceByName(s).methods] + SHARED_METHODS
    routes = _service_routes(local.load())
    for listener, (route, cluster) in routes.items():
        (header,) = route["retry_policy"]["retriable_request_headers"]
        assert header["name"] == ":path", listener
        pattern = re.compile(header["string_match"]["safe_regex"]["regex"])
        retried = {(s, m) for s, m in every_method if pattern.search(f"/{s}/{m}")}
        assert retried == set(IDEMPOTENT[_health_name(cluster)]), listener
    assert {_health_name(cluster) for _, cluster in routes.values()} == set(IDEMPOTENT)


def test_every_service_has_the_same_timeouts_retries_checks_and_ejection() -> None:
    """One route shape and one cluster shape for every service: no deadline but the caller's,
    the same retry conditions and counts, health checks of the service's own name, outlier
    ejection and a retry budget."""
    routes = _service_routes(local.load())
    assert set(routes) == {"tts_grpc", "tts_kokoro_grpc", "stt_grpc", "audio_grpc", "chat_grpc"}
    shapes = set()
    for route, cluster in routes.values():
        policy = {k: v for k, v in route["retry_policy"].items() if k != "retriable_request_headers"}
        (check,) = cluster["health_checks"]
        shape = {
            "timeouts": (route["timeout"], route["idle_timeout"], route["max_stream_duration"]),
            "retry": policy,
            "check": {k: v for k, v in check.items() if k != "grpc_health_check"},
            **{key: cluster[key] for key in ("lb_policy", "common_lb_config", "outlier_detection", "circuit_breakers")},
        }
        shapes.add(repr(shape))
    assert len(shapes) == 1, shapes
    route, cluster = routes["tts_grpc"]
    assert (route["timeout"], route["idle_timeout"]) == ("0s", "0s")
    assert route["max_stream_duration"] == {"grpc_timeout_header_max": "0s"}
    assert route["retry_policy"]["retry_on"] == "unavailable,reset,connect-failure,refused-stream"
    assert cluster["outlier_detection"]["enforcing_consecutive_gateway_failure"] == 100


def test_kubernetes_takes_this_config_and_runs_the_release_tested_here() -> None:
    """The k8s component includes deploy/envoy (the one envoy.yaml) and pins the image of the
    Envoy that runs it in the test below."""
    component = yaml.safe_load(K8S_COMPONENT.read_text())
    assert component["components"] == ["../../../envoy"]
    assert not (K8S_COMPONENT.parent / "envoy.yaml").exists()
    (deployment,) = [d for d in yaml.safe_load_all(PROXY.read_text()) if d["kind"] == "Deployment"]
    (container,) = deployment["spec"]["template"]["spec"]["containers"]
    assert container["image"] == f"envoyproxy/envoy:v{envoy_version()}"


def test_the_local_config_keeps_everything_but_addresses_and_ports(capsys: pytest.CaptureFixture[str]) -> None:
    """deploy/envoy/local.py as documented: the named services' listeners on loopback, their
    upstreams swapped, every policy as committed; the rest left out."""
    local.main(["tts=127.0.0.1:50151,127.0.0.1:50152", "stt=127.0.0.1:50252", "--admin-port", "9911"])
    rendered = yaml.safe_load(capsys.readouterr().out)
    committed = local.load()
    assert rendered["admin"]["address"]["socket_address"] == {"address": "127.0.0.1", "port_value": 9911}
    listeners = {item["name"]: item for item in rendered["static_resources"]["listeners"]}
    assert set(listeners) == {"tts_grpc", "stt_grpc"}
    for name, listener in listeners.items():
        (original,) = [item for item in committed["static_resources"]["listeners"] if item["name"] == name]
        assert listener["address"]["socket_address"]["address"] == "127.0.0.1"
        assert (
            listener["address"]["socket_address"]["port_value"] == original["address"]["socket_address"]["port_value"]
        )
        assert listener["filter_chains"] == original["filter_chains"]
    clusters = {item["name"]: item for item in rendered["static_resources"]["clusters"]}
    assert set(clusters) == {"tts", "stt"}
    for name, cluster in clusters.items():
        (original,) = [item for item in committed["static_resources"]["clusters"] if item["name"] == name]
        assert {k: v for k, v in cluster.items() if k != "load_assignment"} == {
            k: v for k, v in original.items() if k != "load_assignment"
        }
    (endpoints,) = clusters["tts"]["load_assignment"]["endpoints"]
    assert [e["endpoint"]["address"]["socket_address"]["port_value"] for e in endpoints["lb_endpoints"]] == [
        50151,
        50152,
    ]


@pytest_asyncio.fixture(scope="module")
async def mesh(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[tuple[Envoy, list[Replica], FakeStt]]:
    """Envoy in front of two TTS replicas and two fake STT upstreams."""
    tmp_path = tmp_path_factory.mktemp("envoy")
    async with tts_replicas(tmp_path, 2, REPLICA_WORKERS) as replicas, fake_stt(2) as fake:
        upstreams = {
            "tts": [("127.0.0.1", r.port) for r in replicas],
            "stt": [("127.0.0.1", port) for port in fake.ports],
        }
        async with running_envoy(tmp_path, upstreams) as proxy:
            yield proxy, replicas, fake


@dataclass
class Call:
    sent: float
    answered: float | None = None  # when the first message arrived
    done: float | None = None
    error: grpc.StatusCode | None = None
    details: str = ""
    wav: bytes = b""
    result: tts_pb2.SynthesisResult | None = None


@dataclass
class Traffic:
    """CLIENTS loops of whole-file WAV syntheses through Envoy, on one channel that never retries."""

    stub: tts_pb2_grpc.TextToSpeechStub
    calls: list[Call] = field(default_factory=list)
    running: bool = True

    async def loop(self, index: int) -> None:
        while self.running:
            call = Call(time.monotonic())
            self.calls.append(call)
            request = tts_pb2.SynthesizeRequest(
                text=TEXTS[(index + len(self.calls)) % len(TEXTS)],
                output=common_pb2.AudioOutputSpec(encoding=common_pb2.WAV),
            )
            try:
                async for message in self.stub.Synthesize(request, timeout=30):
                    call.answered = call.answered or time.monotonic()
                    if message.HasField("audio_content"):
                        call.wav += message.audio_content
                    elif message.HasField("result"):
                        call.result = message.result
            except grpc.aio.AioRpcError as error:
                call.error = error.code()
                call.details = error.details() or ""
            call.done = time.monotonic()

    def served_since(self, moment: float) -> list[Call]:
        return [c for c in self.calls if c.sent > moment and c.done is not None and c.error is None]


def _wav_seconds(wav: bytes) -> float:
    """The length of a 16-bit PCM WAV file, from its own header."""
    assert wav[:4] == b"RIFF" and wav[8:12] == b"WAVE", wav[:16]
    channels, rate = (int(value) for value in struct.unpack_from("<HI", wav, 22))
    data = wav.index(b"data")
    size = int(struct.unpack_from("<I", wav, data + 4)[0])
    assert size == len(wav) - data - 8 > 0
    return size / (2 * channels * rate)


COUNTERS = ("rq_total", "rq_error", "cx_total", "cx_connect_fail")  # every call or connection a host got


@pytest.mark.slow
async def test_a_killed_replica_is_ejected_and_no_unanswered_call_fails(
    mesh: tuple[Envoy, list[Replica], FakeStt],
) -> None:
    proxy, (victim, survivor), _ = mesh
    async with grpc.aio.insecure_channel(f"127.0.0.1:{proxy.ports['tts']}", options=NO_RETRIES) as channel:
        traffic = Traffic(tts_pb2_grpc.TextToSpeechStub(channel))
        loops = [asyncio.create_task(traffic.loop(i)) for i in range(CLIENTS)]
        try:

            async def both_serve() -> bool:
                hosts = await proxy.hosts("tts")
                return all(hosts[r.port].count("rq_success") >= 2 for r in (victim, survivor))

            await until(both_serve, "both replicas served calls", 60)

            # The kill comes while the victim holds calls it has not begun to answer (it answers
            # one at a time, the rest wait for a worker): those are Envoy's to replay.
            async def victim_queues() -> bool:
                return (await proxy.hosts("tts"))[victim.port].count("rq_active") >= 3

            await until(victim_queues, "the victim has calls queued", 30, every=0.005)
            held = (await proxy.hosts("tts"))[victim.port].count("rq_active")
            victim.process.send_signal(signal.SIGKILL)
            unanswered = [c for c in traffic.calls if c.done is None and c.answered is None]
            answering = [c for c in traffic.calls if c.done is None and c.answered is not None]

            async def ejected() -> bool:
                return not (await proxy.hosts("tts"))[victim.port].in_rotation

            ejected_after = await until(ejected, "Envoy took the killed replica out of rotation", 15, every=0.005)
            out = time.monotonic()
            # Once a call sent after the ejection is served, every earlier choice of host is settled.
            await until(lambda: bool(traffic.served_since(out)), "a call after the ejection was served", 30)
            before = await proxy.hosts("tts")
            settled = time.monotonic()
            await until(lambda: len(traffic.served_since(settled)) >= 2 * CLIENTS, "more calls were served", 60)
        finally:
            traffic.running = False
            async with asyncio.timeout(30):
                await asyncio.gather(*loops)
        after = await proxy.hosts("tts")
        stats = await proxy.stats("cluster.tts.")

    failed = [c for c in traffic.calls if c.error is not None]
    print(
        f"victim held {held} calls at the kill; out of rotation after {ejected_after * 1000:.0f} ms "
        f"({', '.join(sorted(after[victim.port].flags))}); "
        f"{stats['upstream_rq_retry']} retries, {stats['upstream_rq_retry_success']} served; "
        f"{len(traffic.calls)} calls, failed: {[(c.error.name, c.details) for c in failed if c.error]}"
    )
    # Every call the victim held but had not begun to send was replayed on the survivor and
    # served. The only failure possible: the call whose file the victim was sending at the kill
    # (one worker; its bytes had left though the client may not have seen them yet), which
    # nothing can replay. The client sees INTERNAL (Envoy resets the stream) or UNAVAILABLE;
    # the gateway answers 503. Measured: 5 runs of 6 with no failure, one with that one.
    assert stats["upstream_rq_retry_success"] >= max(1, held - REPLICA_WORKERS), stats
    assert len(failed) <= REPLICA_WORKERS, failed
    assert all(
        c in unanswered + answering and c.error in (grpc.StatusCode.INTERNAL, grpc.StatusCode.UNAVAILABLE)
        for c in failed
    )
    # After the ejection the victim got no call and no connection; the survivor served all.
    assert [after[victim.port].count(k) for k in COUNTERS] == [before[victim.port].count(k) for k in COUNTERS]
    assert after[survivor.port].count("rq_success") - before[survivor.port].count("rq_success") >= 2 * CLIENTS
    # And every answer is real speech: a WAV of the length and rate its result states.
    for call in [c for c in traffic.calls if c.error is None]:
        seconds = _wav_seconds(call.wav)
        assert call.result is not None
        assert 1.0 < seconds < 6.0, seconds
        assert abs(seconds * 1000 - call.result.audio.duration_ms) <= 1
        assert struct.unpack_from("<I", call.wav, 24)[0] == call.result.audio.sample_rate_hertz


@pytest.mark.slow
async def test_only_idempotent_methods_are_retried(mesh: tuple[Envoy, list[Replica], FakeStt]) -> None:
    proxy, _, fake = mesh
    async with grpc.aio.insecure_channel(f"127.0.0.1:{proxy.ports['stt']}", options=NO_RETRIES) as channel:
        stub = stt_pb2_grpc.SpeechToTextStub(channel)
        live = stub.StreamingRecognize(
            iter([stt_pb2.StreamingRecognizeRequest(streaming_config=stt_pb2.StreamingRecognitionConfig())]),
            timeout=10,
        )
        with pytest.raises(grpc.aio.AioRpcError) as refused:
            async for _ in live:
                pass
        assert refused.value.code() == grpc.StatusCode.UNAVAILABLE
        assert fake.calls == {"StreamingRecognize": 1}

        with pytest.raises(grpc.aio.AioRpcError) as refused:
            await stub.Recognize(iter([stt_pb2.RecognizeRequest(config=stt_pb2.RecognitionConfig())]), timeout=10)
        assert refused.value.code() == grpc.StatusCode.UNAVAILABLE
        # One call and its two retries, on both upstreams.
        assert fake.calls == {"StreamingRecognize": 1, "Recognize": 3}
    stats = await proxy.stats("cluster.stt.")
    assert stats["upstream_rq_retry"] == 2
