"""Hostile audio: headers that lie, audio longer than its bound, callers that leave, and a
bounded fuzz of the decoder over mutated files of every accepted container.

The decoder's units run without models; the gRPC tests use the real services (conftest)
where the engines matter and services over the scripted engines of tests/fakes.py where
they do not (small bounds, counted work).
"""

from __future__ import annotations

import asyncio
import contextlib
import io
import os
import resource
import struct
import subprocess
import sys
import threading
import time
from collections.abc import AsyncIterator, Callable, Iterator, Sequence
from pathlib import Path

import av
import grpc
import numpy as np
import pytest
from grpc_status import rpc_status

from services.stt.diarization import DiarizationSettings, Diarizer
from services.stt.live import LiveTranscriber
from services.stt.recognizer import SAMPLE_RATE, RecognitionOptions, Segment, Transcript, Word
from services.stt.server import create_server as create_stt_server
from services.stt.settings import StreamingSettings, SttSettings
from services.tts.server import create_server as create_tts_server
from services.tts.settings import TtsSettings
from speechmesh.common import cancel, limits
from speechmesh.common.audio.decode import decode_audio
from speechmesh.common.audio.encode import encode_audio
from speechmesh.common.audio.formats import FORMATS
from speechmesh.common.audio.pcm import Pcm
from speechmesh.common.audio.resample import resample
from speechmesh.common.chunks import chunked
from speechmesh.common.errors import AudioTooLong, Cancelled, InvalidAudio
from speechmesh.runtime.blocking import Blocking
from speechmesh.runtime.server import stop_server
from speechmesh.runtime.status import error_info
from speechmesh.runtime.uploads import SPOOL_MEMORY_BYTES, read_audio
from speechmesh.v1 import stt_pb2, stt_pb2_grpc, tts_pb2, tts_pb2_grpc
from tests.conftest import SEED_CONTAINERS, running_gateway, wait_serving
from tests.fakes import (
    ScriptedCloner,
    ScriptedRecognizer,
    ScriptedSynthesizer,
    ToneEmbedder,
    scripted_registry,
    scripted_stt_engines,
)

ROOT = Path(__file__).resolve().parent.parent


# ---------------------------------------------------------------- hostile files


def noise(seconds: float, rate: int = 16_000) -> Pcm:
    rng = np.random.default_rng(0)
    return Pcm((rng.standard_normal(int(seconds * rate)) * 0.1).astype(np.float32), rate)


def tone(seconds: float, rate: int = 16_000) -> Pcm:
    t = np.arange(int(seconds * rate)) / rate
    return Pcm((0.3 * np.sin(2 * np.pi * 220 * t)).astype(np.float32), rate)


def wav(pcm: Pcm) -> bytes:
    return encode_audio(pcm, FORMATS["wav"])


def streamed_wav(pcm: Pcm) -> bytes:
    """A WAV whose RIFF size says "unknown length", as streaming writers leave it."""
    data = bytearray(wav(pcm))
    data[4:8] = b"\xff\xff\xff\xff"
    return bytes(data)


def lying_wav(rate: int | None = None, channels: int | None = None) -> bytes:
    """The issue's file: 214 KB of 16 kHz 16-bit WAV with its fmt header rewritten."""
    data = bytearray(wav(noise(6.69)))
    assert data[12:16] == b"fmt "
    if rate is not None:
        data[24:32] = struct.pack("<II", rate, rate * 2 % (1 << 32))  # sample rate, byte rate
    if channels is not None:
        data[22:24] = struct.pack("<H", channels)
        data[32:34] = struct.pack("<H", channels * 2)  # block align
    return bytes(data)


LYING = {
    "1 Hz": (lying_wav(rate=1), "sample rate of 1 Hz"),
    "4 GHz": (lying_wav(rate=4_000_000_000), "not audio that can be decoded"),
    "7350 Hz": (lying_wav(rate=7_350), "sample rate of 7350 Hz"),
    "1000 channels": (lying_wav(channels=1000), "channel"),
    "40 channels": (lying_wav(channels=40), "40 channels"),
}


@contextlib.contextmanager
def peak_memory() -> Iterator[Callable[[], int]]:
    """Yields a function giving how far this process's peak RSS rose above its RSS at the
    start, in bytes (Linux: writing 5 to clear_refs resets the peak)."""
    Path("/proc/self/clear_refs").write_text("5")
    start = _status_kib("VmRSS")
    yield lambda: (_status_kib("VmHWM") - start) * 1024


def _status_kib(field: str) -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1])
    raise KeyError(field)


# ---------------------------------------------------------------- the decoder's bounds


@pytest.mark.parametrize("case", list(LYING))
def test_a_header_outside_the_accepted_rates_and_channels_is_invalid_audio(case: str) -> None:
    data, needle = LYING[case]
    assert len(data) > 210_000
    started = time.perf_counter()
    with peak_memory() as grown, pytest.raises(InvalidAudio, match=needle):
        decode_audio(data, sample_rate=SAMPLE_RATE, max_seconds=10_800)
    assert grown() < 50 * 2**20 and time.perf_counter() - started < 1


def test_every_frame_is_checked_not_only_the_header() -> None:
    # ADTS has no global header: each frame states its own rate, and AAC allows 7350 Hz.
    first = encode_audio(tone(1.0), FORMATS["aac"])
    slow = encode_audio(tone(1.0, 7_350), FORMATS["aac"], sample_rate=7_350)
    with pytest.raises(InvalidAudio, match="A frame of the audio has a sample rate of 7350 Hz"):
        decode_audio(first + slow, sample_rate=SAMPLE_RATE)


def test_a_stream_that_changes_rate_mid_way_decodes_at_one_rate() -> None:
    data = encode_audio(tone(1.0), FORMATS["aac"]) + encode_audio(tone(1.0, 44_100), FORMATS["aac"])
    pcm = decode_audio(data, sample_rate=SAMPLE_RATE)
    assert pcm.sample_rate == SAMPLE_RATE and pcm.duration_seconds == pytest.approx(2.0, abs=0.2)
    kept = decode_audio(data)
    assert kept.sample_rate == 16_000 and kept.duration_seconds == pytest.approx(2.0, abs=0.2)


@pytest.mark.parametrize("name", ["wav", "streamed wav", "flac", "mp3", "ogg", "m4a"])
def test_audio_longer_than_the_bound_is_refused_or_cut(name: str) -> None:
    pcm = tone(3.0)
    data = streamed_wav(pcm) if name == "streamed wav" else encode_audio(pcm, FORMATS[name])
    with pytest.raises(AudioTooLong) as caught:
        decode_audio(data, sample_rate=SAMPLE_RATE, max_seconds=1.5)
    assert caught.value.max_seconds == 1.5 and caught.value.fields["max_seconds"] == "1.5"
    assert caught.value.reason == "FILE_TOO_LARGE" and "1.5 s" in caught.value.message
    first = decode_audio(data, sample_rate=SAMPLE_RATE, max_seconds=1.5, keep_first=True)
    assert first.frames == round(1.5 * SAMPLE_RATE)
    assert decode_audio(data, sample_rate=SAMPLE_RATE, max_seconds=3.5).duration_seconds == pytest.approx(3, abs=0.1)


class CountingFile(io.BytesIO):
    """Records how far into the file its reader got."""

    furthest = 0

    def read(self, size: int | None = -1) -> bytes:
        data = super().read(size)
        self.furthest = max(self.furthest, self.tell())
        return data


def test_decoding_stops_at_the_bound_whatever_the_length() -> None:
    # No declared length to refuse early: the decoder itself must stop.
    file = CountingFile(streamed_wav(noise(600, 8_000)))
    started = time.perf_counter()
    with peak_memory() as grown, pytest.raises(AudioTooLong):
        decode_audio(file, sample_rate=SAMPLE_RATE, max_seconds=5)
    assert file.furthest < len(file.getvalue()) // 20, "read far past 5 s of a 10 min file"
    assert grown() < 50 * 2**20 and time.perf_counter() - started < 1


def test_non_finite_samples_are_invalid_audio() -> None:
    samples = tone(1.0).samples.copy()
    samples[100:200] = np.nan
    frame = av.AudioFrame.from_ndarray(samples.reshape(1, -1), format="flt", layout="mono")
    frame.sample_rate = 16_000
    buffer = io.BytesIO()
    with av.open(buffer, "w", format="wav") as container:
        stream = container.add_stream("pcm_f32le", rate=16_000, layout="mono")
        for packet in [*stream.encode(frame), *stream.encode(None)]:
            container.mux(packet)
    with pytest.raises(InvalidAudio, match="not numbers"):
        decode_audio(buffer.getvalue())


def test_a_header_naming_a_codec_ffmpeg_lacks_is_invalid_audio() -> None:
    data = bytearray(wav(tone(1.0)))
    data[20:22] = struct.pack("<H", 0x1234)  # the WAV format tag
    with pytest.raises(InvalidAudio, match="codec"):
        decode_audio(bytes(data))


def test_decoding_checks_whether_its_caller_has_gone() -> None:
    gone = threading.Event()
    gone.set()
    with pytest.raises(Cancelled):
        cancel.bound(gone, decode_audio, wav(tone(1.0)))


async def test_uploads_spool_to_disk_and_decode_from_the_file() -> None:
    data = wav(tone((SPOOL_MEMORY_BYTES + 2**20) / 32_000))

    async def messages() -> AsyncIterator[stt_pb2.RecognizeRequest]:
        for chunk in chunked(data):
            yield stt_pb2.RecognizeRequest(audio_content=chunk)

    with await read_audio(messages(), limits.STT_UPLOAD_MAX_BYTES, "file") as upload:
        assert upload.fileno() >= 0, "rolled over to a temporary file"
        assert decode_audio(upload, max_seconds=1, keep_first=True).duration_seconds == 1


# ---------------------------------------------------------------- cooperative cancellation


class TrippingEmbedder(ToneEmbedder):
    """Trips the cancellation token of the work it runs in on its first call, as a client
    leaving mid-diarization would."""

    def __init__(self, token: threading.Event) -> None:
        super().__init__()
        self.token = token

    def embed_many(self, clips: Sequence[np.ndarray]) -> np.ndarray:
        self.token.set()
        return super().embed_many(clips)


def test_diarization_stops_between_embedding_batches() -> None:
    # 200 words in 200 clips (a pause after each; each at least the clips' minimum length).
    words = tuple(Word(f" w{i}", i * 2.0, i * 2.0 + 1.6, 1.0) for i in range(200))
    transcript = Transcript("", "en", 1.0, 400.0, (Segment(0.0, 400.0, "", words),))
    token = threading.Event()
    embedder = TrippingEmbedder(token)
    diarizer = Diarizer(embedder, DiarizationSettings())
    with pytest.raises(Cancelled):
        cancel.bound(token, diarizer.diarize, np.zeros(400 * SAMPLE_RATE, np.float32), transcript)
    assert embedder.calls == 1


def test_voice_profiling_stops_before_its_costly_stages(monkeypatch: pytest.MonkeyPatch) -> None:
    from speechmesh.speakers import world as cloning

    harvested: list[int] = []
    f0 = cloning._f0

    def counted(x: np.ndarray, rate: int) -> tuple[np.ndarray, np.ndarray]:
        harvested.append(x.size)
        return f0(x, rate)

    monkeypatch.setattr(cloning, "_f0", counted)
    gone = threading.Event()
    gone.set()
    with pytest.raises(Cancelled):
        cancel.bound(gone, cloning.profile, noise(60), None)
    assert harvested == [], "Harvest ran (~0.2 s per second of audio)"


@pytest.mark.slow
def test_whisper_stops_between_segments(speak, tiny_en) -> None:
    speech = resample(speak("Good morning. The meeting starts at nine."), SAMPLE_RATE)
    gone = threading.Event()
    gone.set()
    with pytest.raises(Cancelled):
        cancel.bound(gone, tiny_en.recognize, speech.samples, RecognitionOptions(language="en", vad_filter=False))


async def test_blocking_run_trips_the_token_when_its_caller_is_cancelled() -> None:
    blocking = Blocking(1)
    steps: list[int] = []
    ended = threading.Event()

    def work() -> None:
        try:
            for step in range(100):
                cancel.checkpoint()
                time.sleep(0.02)
                steps.append(step)
        finally:
            ended.set()

    task = asyncio.create_task(blocking.run(work))
    while not steps:
        await asyncio.sleep(0.01)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    at_cancel = len(steps)
    # Once the work has ended nothing more can happen; 100 steps would take 2 s.
    assert await asyncio.to_thread(ended.wait, 30)
    assert len(steps) <= at_cancel + 1
    blocking.shutdown()


# ---------------------------------------------------------------- live audio stays bounded


class AlwaysSpeech:
    def speech_probabilities(self, audio: np.ndarray) -> np.ndarray:
        return np.ones(audio.size // 512, np.float32)


def test_a_live_stream_that_never_pauses_is_cut_into_bounded_utterances() -> None:
    recognizer = ScriptedRecognizer()
    settings = StreamingSettings(max_utterance_seconds=5.0, interim_every_seconds=1.0)
    live = LiveTranscriber(recognizer, AlwaysSpeech(), RecognitionOptions(), settings, interim_results=True)
    for _ in range(60):
        live.feed(noise(1.0).samples)
    live.finish()
    # One frame (32 ms) may pass the cut; 60 s make at least twelve finals.
    assert len(recognizer.heard) >= 12 and max(recognizer.heard) <= 5.0 + 0.032
    with pytest.raises(ValueError, match="max_utterance_seconds"):
        StreamingSettings(max_utterance_seconds=1e9)


# ---------------------------------------------------------------- through the real services


async def recognize(channel: grpc.aio.Channel, data: bytes, timeout: float | None = None):
    async def messages() -> AsyncIterator[stt_pb2.RecognizeRequest]:
        yield stt_pb2.RecognizeRequest(config=stt_pb2.RecognitionConfig(language="en"))
        for chunk in chunked(data):
            yield stt_pb2.RecognizeRequest(audio_content=chunk)

    return stt_pb2_grpc.SpeechToTextStub(channel).Recognize(messages(), timeout=timeout)


def clone(channel: grpc.aio.Channel, reference: bytes, text: str = "Hello there."):
    async def messages() -> AsyncIterator[tts_pb2.CloneRequest]:
        yield tts_pb2.CloneRequest(config=tts_pb2.CloneConfig(text=text))
        for chunk in chunked(reference):
            yield tts_pb2.CloneRequest(audio_content=chunk)

    return tts_pb2_grpc.TextToSpeechStub(channel).Clone(messages())


async def refusal(call) -> grpc.aio.AioRpcError:
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        if hasattr(call, "__aiter__"):
            async for _ in call:
                pass
        else:
            await call
    return caught.value


@pytest.mark.slow
@pytest.mark.parametrize("case", ["1 Hz", "4 GHz", "1000 channels"])
async def test_lying_headers_are_refused_by_recognize_and_clone(stt_channel, tts_channel, case: str) -> None:
    data, needle = LYING[case]
    with peak_memory() as grown:
        for call in (await recognize(stt_channel, data), clone(tts_channel, data)):
            error = await refusal(call)
            assert error.code() is grpc.StatusCode.INVALID_ARGUMENT, error.details()
            assert needle in error.details()
        assert grown() < 100 * 2**20


@pytest.mark.slow
async def test_the_issues_file_through_the_gateway_is_a_400(client) -> None:
    data, needle = LYING["1 Hz"]
    for path, field in (("/v1/stt/", "file"), ("/v1/tts/clone/", "reference_audio")):
        reply = await client.post(path, files={field: ("lying.wav", data)}, data={"text": "Hello there."})
        assert reply.status_code == 400, reply.text
        assert needle in reply.json()["error"]["message"]


@contextlib.asynccontextmanager
async def stt_service(recognizer: ScriptedRecognizer, **settings) -> AsyncIterator[tuple[grpc.aio.Channel, str]]:
    """An STT service over `recognizer` with `settings`: a channel to it, and its address."""
    server, port = await create_stt_server(
        SttSettings(port=0, workers=2, log_json=False, **settings), scripted_stt_engines(recognizer)
    )
    try:
        await wait_serving(port)
        async with grpc.aio.insecure_channel(f"127.0.0.1:{port}") as channel:
            yield channel, f"127.0.0.1:{port}"
    finally:
        await stop_server(server, grace=0)


@contextlib.asynccontextmanager
async def tts_service(
    synthesizer: ScriptedSynthesizer, cloner: ScriptedCloner, **settings
) -> AsyncIterator[grpc.aio.Channel]:
    server, port = await create_tts_server(
        TtsSettings(port=0, workers=2, log_json=False, **settings), scripted_registry(synthesizer, cloner)
    )
    try:
        await wait_serving(port)
        async with grpc.aio.insecure_channel(f"127.0.0.1:{port}") as channel:
            yield channel
    finally:
        await stop_server(server, grace=0)


def released_synthesizer(**options) -> ScriptedSynthesizer:
    release = threading.Event()
    release.set()
    return ScriptedSynthesizer(release, **options)


async def test_recognize_refuses_audio_longer_than_its_bound_before_recognizing() -> None:
    recognizer = ScriptedRecognizer()
    async with stt_service(recognizer, max_audio_seconds=2) as (channel, _):
        error = await refusal(await recognize(channel, wav(tone(3.0))))
        assert error.code() is grpc.StatusCode.RESOURCE_EXHAUSTED
        info = error_info(rpc_status.from_call(error))
        assert info is not None and info.reason == "FILE_TOO_LARGE" and info.metadata["max_seconds"] == "2"
        assert recognizer.heard == []
        await (await recognize(channel, wav(tone(1.5))))
        assert recognizer.heard == [pytest.approx(1.5, abs=0.01)]


async def test_the_gateway_answers_413_for_audio_too_long(tmp_path) -> None:
    async with (
        stt_service(ScriptedRecognizer(), max_audio_seconds=2) as (_, address),
        running_gateway("127.0.0.1:9", tmp_path / "keys.db", address) as gateway,
        gateway.client(await gateway.key()) as http,
    ):
        reply = await http.post("/v1/stt/", files={"file": ("long.wav", wav(tone(3.0)))})
    assert reply.status_code == 413, reply.text
    error = reply.json()["error"]
    assert error["code"] == "file_too_large" and error["max_seconds"] == "2" and "2 s" in error["message"]


async def test_a_clone_reference_longer_than_its_bound_is_cut_not_refused() -> None:
    cloner = ScriptedCloner()
    async with tts_service(released_synthesizer(), cloner, clone_reference_max_seconds=2) as channel:
        replies = [reply async for reply in clone(channel, wav(tone(5.0)))]
    assert replies[-1].result.model == "world-adapt"
    assert cloner.references == [pytest.approx(2.0, abs=0.01)]


@pytest.fixture
async def stopped(monkeypatch: pytest.MonkeyPatch) -> asyncio.Event:
    """Set when work in a service's pool ends at a checkpoint (raises Cancelled): once it
    is set, that work does nothing more."""
    loop = asyncio.get_running_loop()
    event = asyncio.Event()
    bound = cancel.bound

    def watched(token: threading.Event, fn: Callable[..., object], *args: object) -> object:
        try:
            return bound(token, fn, *args)
        except Cancelled:
            loop.call_soon_threadsafe(event.set)
            raise

    monkeypatch.setattr(cancel, "bound", watched)
    return event


async def stop_when_started(
    done: Callable[[], int], call, stopped: asyncio.Event, deadline: bool = False
) -> tuple[int, int]:
    """Waits until the work has done a step, cancels `call` (or lets its deadline pass),
    and returns how many steps were done then and once the work has stopped."""
    stopped.clear()

    async def drain() -> None:
        if hasattr(call, "__aiter__"):
            async for _ in call:
                pass
        else:
            await call

    consumer = asyncio.ensure_future(drain())
    async with asyncio.timeout(30):  # against a hang only
        while not done():
            await asyncio.sleep(0.01)
    if not deadline:
        call.cancel()
    with contextlib.suppress(asyncio.CancelledError, grpc.aio.AioRpcError):
        await consumer
    assert await call.code() is (grpc.StatusCode.DEADLINE_EXCEEDED if deadline else grpc.StatusCode.CANCELLED)
    at_stop = done()
    try:
        async with asyncio.timeout(30):  # against a hang only: steps of 0.02 s stop at the next
            await stopped.wait()
    except TimeoutError:
        raise AssertionError(f"the work never stopped at a checkpoint ({at_stop} steps, then {done()})") from None
    return at_stop, done()


async def test_a_cancelled_recognize_stops_recognizing(stopped: asyncio.Event) -> None:
    recognizer = ScriptedRecognizer(steps=100, step_seconds=0.02)
    async with stt_service(recognizer) as (channel, _):
        at_cancel, later = await stop_when_started(
            lambda: recognizer.done, await recognize(channel, wav(tone(1.0))), stopped
        )
        assert later <= at_cancel + 1 < 20
        recognizer.done = 0
        call = await recognize(channel, wav(tone(1.0)), timeout=0.5)
        at_deadline, later = await stop_when_started(lambda: recognizer.done, call, stopped, deadline=True)
        assert later <= at_deadline + 1 < 50


async def test_a_cancelled_clone_stops_cloning(stopped: asyncio.Event) -> None:
    cloner = ScriptedCloner(steps=100, step_seconds=0.02)
    async with tts_service(released_synthesizer(), cloner) as channel:
        at_cancel, later = await stop_when_started(lambda: cloner.done, clone(channel, wav(tone(1.0))), stopped)
    assert later <= at_cancel + 1 < 20


async def test_a_cancelled_synthesis_stops_between_sentences(stopped: asyncio.Event) -> None:
    # Synthesize sends one finished file: the whole synthesis is one step of the pool.
    synthesizer = released_synthesizer(synth_seconds=0.02)
    text = " ".join(f"Sentence number {n} is here." for n in range(100))
    async with tts_service(synthesizer, ScriptedCloner()) as channel:
        call = tts_pb2_grpc.TextToSpeechStub(channel).Synthesize(tts_pb2.SynthesizeRequest(text=text))
        at_cancel, later = await stop_when_started(lambda: synthesizer.produced, call, stopped)
    assert later <= at_cancel + 1 < 20


# ---------------------------------------------------------------- fuzzing the decoder

# Every container the API accepts, as a phone, a browser or an encoder would write it.
CONTAINERS = {**SEED_CONTAINERS, "opus": FORMATS["opus"], "aac": FORMATS["aac"]}
FUZZ_MAX_SECONDS = 10.0
FUZZ_EXAMPLES = 1000
# The fuzz's address space: what it has after imports plus this. A decoded file within the
# bound takes a few MB; a header that makes FFmpeg or numpy allocate by its word fails.
FUZZ_HEADROOM_BYTES = 1 << 30


@pytest.fixture(scope="module")
def corpus(speak, tmp_path_factory) -> Path:
    clip = speak("Hello there, how are you?")
    folder = tmp_path_factory.mktemp("corpus")
    for name, fmt in CONTAINERS.items():
        (folder / f"speech.{name}").write_bytes(encode_audio(clip, fmt, channels=fmt.fixed_channels or 1))
    return folder


@pytest.mark.slow
def test_the_decoder_survives_mutated_headers_of_every_container(corpus: Path) -> None:
    """Runs `fuzz_decoder` in a child process with a capped address space, so a memory
    bomb fails the test instead of taking the machine."""
    child = subprocess.run(
        [sys.executable, "-c", f"from tests.test_hostile_audio import fuzz_decoder; fuzz_decoder({str(corpus)!r})"],
        cwd=ROOT,
        env={**os.environ, "MALLOC_ARENA_MAX": "2"},
        capture_output=True,
        text=True,
        timeout=240,
    )
    assert child.returncode == 0, child.stdout[-6000:] + child.stderr[-6000:]
    assert int(child.stdout.split()[-2]) >= FUZZ_EXAMPLES, child.stdout


# Values a lying header field is likely to hold: zeros, ones, the largest, sign flips.
_EXTREMES = [
    struct.pack(order, value)
    for order in ("<I", ">I")
    for value in (0, 1, 2, 255, 7_999, 65_535, 192_001, 1 << 24, 0x7FFFFFFF, 0x80000000, 0xFFFFFFFF)
]


def fuzz_decoder(folder: str) -> None:
    """Decodes mutated files (the first 256 bytes and random positions overwritten, some
    cut short): each decodes to finite samples within the bound or raises InvalidAudio or
    AudioTooLong, within hypothesis's deadline and the address space left."""
    from datetime import timedelta

    from hypothesis import HealthCheck, given, settings
    from hypothesis import strategies as st

    files = {path.suffix[1:]: path.read_bytes() for path in sorted(Path(folder).iterdir())}
    assert sorted(files) == sorted(CONTAINERS)
    soft, hard = resource.getrlimit(resource.RLIMIT_AS)
    resource.setrlimit(resource.RLIMIT_AS, (_status_kib("VmSize") * 1024 + FUZZ_HEADROOM_BYTES, hard))
    edit = st.tuples(
        st.integers(0, 255) | st.integers(0, 1 << 20), st.binary(min_size=1, max_size=4) | st.sampled_from(_EXTREMES)
    )
    examples = 0

    @settings(
        max_examples=FUZZ_EXAMPLES,
        deadline=timedelta(seconds=5),
        derandomize=True,
        database=None,
        suppress_health_check=[HealthCheck.too_slow],
    )
    @given(
        name=st.sampled_from(sorted(files)),
        edits=st.lists(edit, min_size=1, max_size=8),
        keep=st.none() | st.floats(0.1, 1.0),
        sample_rate=st.sampled_from([0, SAMPLE_RATE]),
        mono=st.booleans(),
        keep_first=st.booleans(),
    )
    def decode_mutated(name, edits, keep, sample_rate, mono, keep_first) -> None:
        nonlocal examples
        examples += 1
        data = bytearray(files[name])
        for position, value in edits:
            start = position % len(data)
            data[start : start + len(value)] = value
        if keep is not None:
            data = data[: max(1, int(len(data) * keep))]
        try:
            pcm = decode_audio(
                bytes(data), sample_rate=sample_rate, mono=mono, max_seconds=FUZZ_MAX_SECONDS, keep_first=keep_first
            )
        except (InvalidAudio, AudioTooLong):
            return
        assert np.isfinite(pcm.samples).all()
        assert 0 < pcm.frames <= FUZZ_MAX_SECONDS * pcm.sample_rate + 1
        assert limits.INPUT_SAMPLE_RATE_MIN_HERTZ <= pcm.sample_rate <= limits.INPUT_SAMPLE_RATE_MAX_HERTZ

    decode_mutated()
    resource.setrlimit(resource.RLIMIT_AS, (soft, hard))
    print(f"{examples} examples")
