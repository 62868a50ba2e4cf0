"""`make run`'s supervision end to end: the repo's supervisord.conf runs the real services and
gateway on free ports in a temporary folder; under load, `kill -9` takes down stt, then tts,
then the gateway. The others keep serving, the dead one comes back by itself, and its
clients meanwhile get 503 with a Retry-After, never a 500 or a hang."""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import subprocess
import sys
import xmlrpc.client
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import pytest
from supervisor.xmlrpc import SupervisorTransport

from gateway.settings import GatewaySettings
from gateway.store.stores import open_stores
from tests.servers import free_ports

pytestmark = pytest.mark.slow

REPO = Path(__file__).resolve().parent.parent
BIN = Path(sys.executable).parent
RESTART_SECONDS = 8  # the gateway's restart estimate before it has seen one
TEXT = "The quick brown fox jumps over the lazy dog."


class Stack:
    """supervisord with the repo's config, and its XML-RPC interface for pids."""

    def __init__(self, run_dir: Path) -> None:
        tts, stt, audio, chat, http = free_ports(5)
        self.database = run_dir / "speechmesh.db"
        self.base_url = f"http://127.0.0.1:{http}"
        env = os.environ | {
            "SPEECHMESH_RUN_DIR": str(run_dir),
            "PATH": f"{BIN}{os.pathsep}{os.environ['PATH']}",
            "SPEECHMESH_TTS_PORT": str(tts),
            "SPEECHMESH_STT_PORT": str(stt),
            "SPEECHMESH_AUDIO_PORT": str(audio),
            "SPEECHMESH_TTS_METRICS_PORT": "0",
            "SPEECHMESH_AUDIO_METRICS_PORT": "0",
            "SPEECHMESH_CHAT_PORT": str(chat),
            "SPEECHMESH_CHAT_METRICS_PORT": "0",
            "SPEECHMESH_CHAT_STT_ADDRESS": f"127.0.0.1:{stt}",
            "SPEECHMESH_CHAT_TTS_ADDRESS": f"127.0.0.1:{tts}",
            "SPEECHMESH_GATEWAY_CHAT_ADDRESS": f"127.0.0.1:{chat}",
            "SPEECHMESH_STT_METRICS_PORT": "0",
            "SPEECHMESH_GATEWAY_WORKER_METRICS_PORT": "0",
            "SPEECHMESH_GATEWAY_PORT": str(http),
            "SPEECHMESH_GATEWAY_TTS_ADDRESS": f"127.0.0.1:{tts}",
            "SPEECHMESH_GATEWAY_STT_ADDRESS": f"127.0.0.1:{stt}",
            "SPEECHMESH_GATEWAY_AUDIO_ADDRESS": f"127.0.0.1:{audio}",
            "SPEECHMESH_AUDIO_TTS_ADDRESS": f"127.0.0.1:{tts}",
            "SPEECHMESH_GATEWAY_DATABASE_PATH": str(self.database),
            "SPEECHMESH_GATEWAY_UPSTREAM_RESTART_SECONDS": str(RESTART_SECONDS),
            # Small engine sets, so each start takes a second or two.
            "SPEECHMESH_TTS_ENGINES": '["piper"]',
            "SPEECHMESH_TTS_CLONERS": "[]",
            "SPEECHMESH_TTS_WORKERS": "2",
            "SPEECHMESH_STT_ENGINES": '["faster-whisper"]',
            "SPEECHMESH_STT_DEFAULT_MODEL": "faster-whisper",
            "SPEECHMESH_STT_WORKERS": "2",
            "SPEECHMESH_AUDIO_ENGINES": '["wpe"]',
            "SPEECHMESH_AUDIO_WORKERS": "1",
            "SPEECHMESH_CHAT_ENGINES": '["apertium"]',
            "SPEECHMESH_CHAT_WORKERS": "1",
        }
        self.log = run_dir / "supervisord.log"
        with self.log.open("wb") as log:
            self.process = subprocess.Popen(
                [BIN / "supervisord", "-c", REPO / "supervisord.conf"],
                env=env,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        self.transport = SupervisorTransport(None, None, f"unix://{run_dir}/supervisor.sock")
        self.rpc = xmlrpc.client.ServerProxy("http://127.0.0.1", transport=self.transport)

    def pid(self, program: str) -> int:
        """The pid of `program` (0 while it is not running)."""
        return self.rpc.supervisor.getProcessInfo(program)["pid"]

    def restarted(self, program: str, old: int) -> Callable[[], Awaitable[bool]]:
        async def check() -> bool:
            return self.pid(program) not in (0, old)

        return check

    def pids(self) -> list[int]:
        with contextlib.suppress(OSError, xmlrpc.client.Error):
            return [info["pid"] for info in self.rpc.supervisor.getAllProcessInfo() if info["pid"]]
        return []

    def shut_down(self) -> None:
        """Stops supervisord (which stops its programs); kills whatever is left."""
        children = self.pids()
        self.transport.close()
        self.process.send_signal(signal.SIGTERM)
        try:
            self.process.wait(timeout=40)
        except subprocess.TimeoutExpired:
            os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait()
        # Each program runs in a process group of its own (supervisord calls setpgrp).
        for pid in children:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(pid, signal.SIGKILL)

    def output(self) -> str:
        return self.log.read_text(errors="replace")


@contextlib.contextmanager
def supervised(run_dir: Path) -> Iterator[Stack]:
    stack = Stack(run_dir)
    try:
        yield stack
    except BaseException:
        print(stack.output()[-6000:])
        raise
    finally:
        stack.shut_down()
    assert stack.process.returncode == 0, stack.output()[-6000:]


async def wait_for(check: Callable[[], Awaitable[bool]], what: str, timeout: float) -> None:
    deadline = asyncio.get_running_loop().time() + timeout
    while True:
        with contextlib.suppress(httpx.TransportError, OSError, xmlrpc.client.Error):
            if await check():
                return
        assert asyncio.get_running_loop().time() < deadline, f"timed out waiting until {what}"
        await asyncio.sleep(0.1)


@dataclass
class Load:
    """Clients sending TTS and STT requests in a loop; every outcome is kept by phase."""

    http: httpx.AsyncClient
    wav: bytes
    phase: str = "warm-up"
    outcomes: list[tuple[str, str, int, str, int | None]] = field(default_factory=list)
    stt_in_flight: int = 0
    running: bool = True

    async def tts(self) -> None:
        while self.running:
            phase = self.phase
            reply = await self.http.post("/v1/tts/", json={"text": TEXT, "format": "wav"})
            self.record(phase, "tts", reply)
            await self.pause(reply)

    async def stt(self) -> None:
        while self.running:
            phase = self.phase
            self.stt_in_flight += 1
            try:
                reply = await self.http.post("/v1/stt/", files={"file": ("speech.wav", self.wav, "audio/wav")})
            finally:
                self.stt_in_flight -= 1
            self.record(phase, "stt", reply)
            await self.pause(reply)

    def record(self, phase: str, kind: str, reply: httpx.Response) -> None:
        """Keeps the outcome under the phase in which the request was sent."""
        code = reply.json()["error"]["code"] if reply.status_code != 200 else ""
        retry_after = int(reply.headers["retry-after"]) if "retry-after" in reply.headers else None
        self.outcomes.append((phase, kind, reply.status_code, code, retry_after))

    async def pause(self, reply: httpx.Response) -> None:
        """After a 503, a moment's pause instead of a tight loop (sooner than Retry-After, to
        see every stage of the restart)."""
        if reply.status_code == 503:
            await asyncio.sleep(0.25)

    def of(self, phase: str, kind: str) -> list[tuple[int, str, int | None]]:
        return [(status, code, retry) for p, k, status, code, retry in self.outcomes if (p, k) == (phase, kind)]


def assert_all_served(outcomes: list[tuple[int, str, int | None]]) -> None:
    assert outcomes and all(status == 200 for status, _, _ in outcomes), outcomes


def assert_served_or_told_to_retry(outcomes: list[tuple[int, str, int | None]]) -> None:
    assert outcomes, "no request completed"
    for status, code, retry_after in outcomes:
        assert status == 200 or (
            status == 503
            and code == "model_loading"
            and retry_after is not None
            and 1 <= retry_after <= RESTART_SECONDS
        ), outcomes


async def test_a_killed_process_comes_back_and_takes_nothing_else_down(tmp_path: Path) -> None:
    with supervised(tmp_path) as stack:

        async def ready() -> bool:
            async with httpx.AsyncClient(base_url=stack.base_url, timeout=5) as probe:
                reply = await probe.get("/readyz")
                return reply.status_code == 200 and set(reply.json()["capabilities"].values()) == {"serving"}

        await wait_for(ready, "every capability serving", timeout=90)
        stores = await open_stores(GatewaySettings(database_path=stack.database))
        # Steady load from four clients: past a Pro key's 60 requests a minute.
        key, secret = await stores.keys.create("supervision", "internal")
        await stores.credits.grant(key.id, 100_000, "test")
        await stores.close()
        headers = {"Authorization": f"Bearer {secret}"}
        async with httpx.AsyncClient(base_url=stack.base_url, headers=headers, timeout=30) as http:
            speech = await http.post("/v1/tts/", json={"text": TEXT, "format": "wav"})
            assert speech.status_code == 200
            load = Load(http, speech.content)
            clients = [asyncio.create_task(work()) for work in (load.tts, load.tts, load.stt, load.stt)]
            try:
                for victim, other in (("stt", "tts"), ("tts", "stt")):
                    await asyncio.sleep(1)
                    load.phase = victim
                    async with asyncio.timeout(10):
                        while not load.stt_in_flight:  # kill it mid-request
                            await asyncio.sleep(0.01)
                    old = stack.pid(victim)
                    os.kill(old, signal.SIGKILL)

                    await wait_for(stack.restarted(victim, old), f"{victim} runs again", timeout=30)
                    await wait_for(ready, f"every capability serving after {victim} died", timeout=60)
                    assert (await http.post("/v1/tts/", json={"text": TEXT, "format": "wav"})).status_code == 200
                    reply = await http.post("/v1/stt/", files={"file": ("speech.wav", load.wav, "audio/wav")})
                    assert reply.status_code == 200 and reply.json()["text"].strip()
                    load.phase = f"after {victim}"
                    async with asyncio.timeout(20):
                        while len(load.of(load.phase, victim)) < 2:
                            await asyncio.sleep(0.1)
                    assert_all_served(load.of(victim, other))
                    assert_served_or_told_to_retry(load.of(victim, victim))
                    assert_all_served(load.of(f"after {victim}", victim))
            finally:
                load.running = False
                await asyncio.gather(*clients)

            old = stack.pid("gateway")
            os.kill(old, signal.SIGKILL)
            await wait_for(stack.restarted("gateway", old), "the gateway runs again", timeout=30)
            await wait_for(ready, "every capability serving after the gateway died", timeout=60)
            assert (await http.post("/v1/tts/", json={"text": TEXT, "format": "wav"})).status_code == 200
            reply = await http.post("/v1/stt/", files={"file": ("speech.wav", load.wav, "audio/wav")})
            assert reply.status_code == 200
        # The one-shot helper printed its message and exited for good, once.
        hello = stack.rpc.supervisor.getProcessInfo("hello")
        assert (hello["statename"], hello["exitstatus"]) == ("EXITED", 0)
    output = stack.output()
    assert output.count("speechmesh is ready on") == 1 and output.count("spawned: 'hello'") == 1
