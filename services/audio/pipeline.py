"""From an uploaded file to encoded results, transport-free: one function per method.

Each decodes the upload block by block at the rate its engine works at, runs the engine
over overlapping segments (`segments.py`) and encodes into spooled files (`output.py`):
memory holds a few segments whatever the length of the input, and the work stops at the
next segment once the caller has gone. Bounds are checked while decoding (an upload's
headers are claims): the service's longest input, or the caller's shorter one.
Blocking; the servicer runs these in its thread pool.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import IO

import numpy as np

from services.audio.clarity import clarify
from services.audio.output import Outputs, Produced, chosen_format
from services.audio.processors import Analysis, Analyzer, Denoiser, Dereverberator, Restyler, Separator, VoiceConverter
from services.audio.segments import segmented
from speechmesh.common import limits
from speechmesh.common.audio.container import ContainerInfo, container_info
from speechmesh.common.audio.decode import decode_audio, decode_blocks
from speechmesh.common.audio.formats import OutputSpec
from speechmesh.common.audio.pcm import Pcm
from speechmesh.common.audio.stretch import StreamStretcher
from speechmesh.common.errors import InvalidArgument, InvalidAudio
from speechmesh.speakers.world import VoiceProfile

# Decoded audio is handed over in blocks of this many frames (5.5 s at 48 kHz).
_BLOCK_FRAMES = 1 << 18
# Speech is converted and restyled at this rate: WORLD's cost grows with it, and speech
# holds little above 12 kHz.
SPEECH_RATE = 24_000
# A speaker is measured from the start of their recording, this long at most.
PROFILE_SECONDS = 30.0
# Key and tempo are measured on the first 10 minutes: a song's key and tempo are there.
ANALYSIS_SECONDS = 600.0


@dataclass(frozen=True)
class Bounds:
    max_seconds: float  # longest input processed
    segment_seconds: float
    overlap_seconds: float


@dataclass(frozen=True)
class Delivery:
    """How results are encoded: the asked spec, or None for the method's `default` (a
    format name, or "input" for the input's own format)."""

    output: OutputSpec | None
    default: str


@dataclass
class Result:
    outputs: list[Produced]
    input_seconds: float
    similarity_before: float = 0.0
    similarity_after: float = 0.0

    def close(self) -> None:
        for produced in self.outputs:
            produced.close()


@dataclass(frozen=True)
class EnhanceOptions:
    denoise: bool
    clarity: bool
    strength: int


def enhance(
    upload: IO[bytes], denoiser: Denoiser | None, options: EnhanceOptions, delivery: Delivery, bounds: Bounds
) -> Result:
    """Denoised (by `denoiser`, None when not asked) and clarified speech."""
    rate = denoiser.sample_rate if denoiser is not None else 0

    def process(segment: np.ndarray, rate: int) -> dict[str, np.ndarray]:
        audio = segment
        if denoiser is not None:
            audio = _per_channel(audio, lambda channel: denoiser.denoise(channel, options.strength))
        if options.clarity:
            audio = clarify(audio, rate)
        return {"": audio}

    return _transform(upload, rate, 0, process, delivery, bounds)


def dereverb(
    upload: IO[bytes], engine: Dereverberator, kind: str, intensity: int, delivery: Delivery, bounds: Bounds
) -> Result:
    def process(segment: np.ndarray, rate: int) -> dict[str, np.ndarray]:
        audio = segment if segment.ndim == 2 else segment[:, None]
        out = engine.dereverb(audio, rate, kind, intensity)
        return {"": out if segment.ndim == 2 else out[:, 0]}

    return _transform(upload, 0, 0, process, delivery, bounds)


def separate(upload: IO[bytes], engine: Separator, stems: int, delivery: Delivery, bounds: Bounds) -> Result:
    def process(segment: np.ndarray, rate: int) -> dict[str, np.ndarray]:
        audio = segment if segment.ndim == 2 else segment[:, None]
        out = engine.separate(audio, stems)
        return {name: stem if segment.ndim == 2 else stem[:, 0] for name, stem in out.items()}

    return _transform(upload, engine.sample_rate, 0, process, delivery, bounds)


def convert(upload: IO[bytes], delivery: Delivery, bounds: Bounds) -> Result:
    """The input re-encoded as `delivery` says, its player tags kept."""
    info = container_info(upload)
    rate = limits.SAMPLE_RATE_MAX_HERTZ if info.sample_rate > limits.SAMPLE_RATE_MAX_HERTZ else 0
    decoded = decode_blocks(
        upload, sample_rate=rate, channels=0, max_seconds=bounds.max_seconds, block_frames=_BLOCK_FRAMES
    )
    first = next(decoded)
    outputs = _outputs(("",), info, delivery, first.sample_rate, first.channels)
    try:
        frames = 0
        for pcm in itertools.chain((first,), decoded):
            outputs.feed({"": pcm.samples})
            frames += pcm.frames
        return Result(outputs.finish(), frames / first.sample_rate)
    except BaseException:
        outputs.close()
        raise


def analyze(upload: IO[bytes], analyzer: Analyzer) -> tuple[Analysis, float]:
    """The analysis of the first ANALYSIS_SECONDS, and the input's analysed length."""
    pcm = decode_audio(upload, sample_rate=analyzer.sample_rate, max_seconds=ANALYSIS_SECONDS, keep_first=True)
    return analyzer.analyze(pcm.samples, pcm.sample_rate), pcm.duration_seconds


@dataclass(frozen=True)
class Speaker:
    """The speaker of an upload, measured once from its start."""

    start: Pcm  # the first PROFILE_SECONDS, at SPEECH_RATE
    profile: VoiceProfile


def speaker(upload: IO[bytes], converter: VoiceConverter) -> Speaker:
    """Measures the upload's speaker: the first check of its bytes, made before a target
    voice is measured, so a bad upload is refused at once."""
    start = decode_audio(upload, sample_rate=SPEECH_RATE, max_seconds=PROFILE_SECONDS, keep_first=True)
    try:
        return Speaker(start, converter.profile(start))
    except InvalidAudio as error:
        raise InvalidAudio(f"The speaker of the upload cannot be measured from its first 30 s: {error}.") from None


@dataclass(frozen=True)
class Voice:
    """A conversion to do: the converter, the upload's speaker and the voice to move toward."""

    converter: VoiceConverter
    speaker: Speaker
    target: VoiceProfile


def voice_convert(upload: IO[bytes], voice: Voice, delivery: Delivery, bounds: Bounds) -> Result:
    return restyle(upload, None, "neutral", 1.0, voice, delivery, bounds)


def restyle(
    upload: IO[bytes],
    restyler: Restyler | None,
    emotion: str,
    speed: float,
    voice: Voice | None,
    delivery: Delivery,
    bounds: Bounds,
) -> Result:
    """Speech converted toward `voice` (None: kept), delivered with `emotion`, at `speed`
    times its pace; with the similarity to the voice before and after, when converted."""
    heard: list[np.ndarray] = []  # the output's start, to measure it against the target

    def process(segment: np.ndarray, rate: int) -> dict[str, np.ndarray]:
        pcm = Pcm(segment, rate)
        if voice is not None:
            pcm = voice.converter.convert(pcm, voice.speaker.profile, voice.target)
        if restyler is not None and emotion != "neutral":
            pcm = restyler.restyle(pcm, emotion)
        if sum(len(part) for part in heard) < PROFILE_SECONDS * rate:
            heard.append(pcm.samples)
        return {"": pcm.samples}

    tempo = speed * (restyler.tempo(emotion) if restyler is not None else 1.0)
    result = _transform(upload, SPEECH_RATE, 1, process, delivery, bounds, tempo)
    if voice is not None:
        output = Pcm(np.concatenate(heard)[: round(PROFILE_SECONDS * SPEECH_RATE)], SPEECH_RATE)
        result.similarity_before = voice.converter.similarity(voice.speaker.start, voice.target)
        result.similarity_after = voice.converter.similarity(output, voice.target)
    return result


def _per_channel(audio: np.ndarray, fn: Callable[[np.ndarray], np.ndarray]) -> np.ndarray:
    if audio.ndim == 1:
        return fn(audio)
    return np.stack([fn(np.ascontiguousarray(audio[:, channel])) for channel in range(audio.shape[1])], axis=1)


def _transform(
    upload: IO[bytes],
    rate: int,
    channels: int,
    process: Callable[[np.ndarray, int], dict[str, np.ndarray]],
    delivery: Delivery,
    bounds: Bounds,
    tempo: float = 1.0,
) -> Result:
    """Decodes `upload` at `rate` (0: its own) with `channels` (0: its own, up to 2),
    runs `process` over segments, optionally changes the pace (mono only), and encodes
    every output it names, at the input's rate and channels unless asked otherwise."""
    info = container_info(upload)
    if not rate and info.sample_rate > limits.SAMPLE_RATE_MAX_HERTZ:
        # 88.2-192 kHz recordings are processed (and answered) at 48 kHz: engines and clarity
        # are made for 8-48 kHz, and an hour at 192 kHz would be 2.6 GB of WAV per output.
        rate = limits.SAMPLE_RATE_MAX_HERTZ
    decoded = decode_blocks(
        upload, sample_rate=rate, channels=channels, max_seconds=bounds.max_seconds, block_frames=_BLOCK_FRAMES
    )
    first = next(decoded)
    rate = first.sample_rate
    frames = 0

    def blocks() -> Iterator[np.ndarray]:
        nonlocal frames
        for pcm in itertools.chain((first,), decoded):
            frames += pcm.frames
            yield pcm.samples

    segment = round(bounds.segment_seconds * rate)
    overlap = round(bounds.overlap_seconds * rate)
    stretcher = StreamStretcher(rate, tempo) if tempo != 1.0 else None
    outputs: Outputs | None = None
    try:
        for out in segmented(blocks(), lambda audio: process(audio, rate), segment, overlap):
            if stretcher is not None:
                out = {name: stretcher.feed(audio) for name, audio in out.items()}
            if outputs is None:
                outputs = _outputs(tuple(out), info, delivery, rate, first.channels)
            outputs.feed(out)
        if outputs is None:
            raise InvalidArgument("The audio file holds no audio to process.")
        if stretcher is not None:
            outputs.feed({name: stretcher.flush() for name in outputs.produced})
        return Result(outputs.finish(), frames / rate)
    except BaseException:
        if outputs is not None:
            outputs.close()
        raise


def _outputs(names: tuple[str, ...], info: ContainerInfo, delivery: Delivery, rate: int, channels: int) -> Outputs:
    asked = delivery.output
    return Outputs(
        names,
        chosen_format(asked, info, delivery.default),
        rate,
        sample_rate=(asked.sample_rate if asked else 0) or min(info.sample_rate or rate, rate),
        channels=(asked.channels if asked else 0) or channels,
        bitrate_kbps=asked.bitrate_kbps if asked else 0,
        tags=info.tags,
    )
