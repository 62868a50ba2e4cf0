"""Decoding uploaded audio files of any container FFmpeg reads into PCM, within bounds.

Uploads are hostile until decoded: headers lie about rate, channels and length, and
FFmpeg believes them (a 214 KB WAV whose header says 1 Hz "lasts" 30 hours and resamples
to 1.7 billion samples). So the decoder checks the rate and channel count of the stream
header and of every decoded frame (a stream may change both mid-way), counts what it has
decoded and stops at `max_seconds` (memory follows the audio actually decoded, never
what a header claims), turns whatever FFmpeg or numpy raise on bad bytes into
InvalidAudio, and checks between frames whether its caller has gone.
"""

from __future__ import annotations

import io
from collections.abc import Iterator
from typing import IO

import av
import numpy as np
from av.audio.stream import AudioStream
from av.container import InputContainer

from speechmesh.common import limits
from speechmesh.common.audio.pcm import Pcm
from speechmesh.common.cancel import checkpoint
from speechmesh.common.errors import AudioTooLong, InvalidAudio

# What bad bytes make PyAV raise: its own errors (most also subclass ValueError or
# OSError), ValueError for frames it cannot convert, and the odd TypeError or
# OverflowError from a header value out of any sane range.
BAD_DATA: tuple[type[Exception], ...] = (av.FFmpegError, ValueError, TypeError, OverflowError, IndexError, EOFError)
# The start of the file, where the headers the length checks read are.
_HEAD_BYTES = 65536


def decode_audio(
    source: bytes | IO[bytes],
    *,
    sample_rate: int = 0,
    mono: bool = True,
    max_seconds: float | None = None,
    keep_first: bool = False,
) -> Pcm:
    """Decodes the first audio stream, resampled to `sample_rate` (0 keeps the stream's).

    `source` is the file's bytes or a seekable binary file, read from its start.
    `max_seconds` bounds the decoded duration, and so the memory decoding takes:
    longer audio raises AudioTooLong as soon as decoding passes the bound, or with
    `keep_first` is cut to its first `max_seconds` (for callers that need a sample).

    Raises InvalidAudio for empty input, input with no audio stream, a sample rate or
    channel count outside the accepted range (`limits.INPUT_*`), input that yields no
    samples or non-finite ones, corrupt data, and files cut short: a file whose header
    states its length (WAV, FLAC, MP4/M4A, MP3 with a Xing/Info/VBRI header) must
    decode to that length. Transcribing half a file as if it were whole would lose
    data silently.
    """
    blocks = list(
        decode_blocks(
            source,
            sample_rate=sample_rate,
            channels=1 if mono else 2,
            max_seconds=max_seconds,
            keep_first=keep_first,
            block_frames=None,
        )
    )
    return blocks[0]


def decode_blocks(
    source: bytes | IO[bytes],
    *,
    sample_rate: int = 0,
    channels: int = 1,
    max_seconds: float | None = None,
    keep_first: bool = False,
    block_frames: int | None,
) -> Iterator[Pcm]:
    """`decode_audio`, handed over in blocks of `block_frames` frames (the last one
    shorter; None: one block) as decoding goes, so memory holds one block whatever the
    file's length. `channels` 1 or 2, or 0 for the stream's own count up to 2.

    The checks that need the whole file (nothing decoded, cut short) raise after the
    last block: a caller that acts on blocks must not publish its output before the
    generator is exhausted.
    """
    file = io.BytesIO(source) if isinstance(source, bytes) else source
    file.seek(0)
    head = file.read(_HEAD_BYTES)
    file.seek(0)
    if not head:
        raise InvalidAudio("The audio file is empty.")
    try:
        container = av.open(file, mode="r")
    except BAD_DATA as error:
        raise InvalidAudio(f"The file is not audio that can be decoded ({_why(error)}).") from None
    output: _Output | None = None
    with container:
        try:
            stream = _audio_stream(container)
            layout_channels = channels or min(stream.codec_context.layout.nb_channels, 2)
            output = _Output(sample_rate, layout_channels, max_seconds, keep_first)
            declared = _declared_seconds(container, stream, head)
            if declared is not None and max_seconds is not None and not keep_first and declared > max_seconds:
                raise AudioTooLong(max_seconds)  # cheap, before decoding; decoding still counts
            for frame in container.decode(stream):
                checkpoint()
                going = output.add(frame)
                if block_frames is not None:
                    yield from output.blocks(block_frames)
                if not going:
                    break
            output.flush()
        except BAD_DATA as error:
            if output is None or not output.seconds:
                raise InvalidAudio(f"The file is not audio that can be decoded ({_why(error)}).") from None
            raise InvalidAudio(f"The audio data is corrupt or cut short after {output.seconds:.1f} s.") from None
    yield from output.blocks(block_frames, last=True)
    if not output.frames_out:
        raise InvalidAudio("The file contains no audio samples.")
    seconds = output.frames_out / output.rate
    if not output.cut and declared is not None and seconds < declared * _COMPLETE - _SLACK_SECONDS:
        raise InvalidAudio(
            f"The audio file is truncated: its header says {declared:.1f} s but only {seconds:.1f} s are there."
        )


class _Output:
    """Decoded frames resampled to one rate and layout, counted against the bound."""

    def __init__(self, sample_rate: int, channels: int, max_seconds: float | None, keep_first: bool) -> None:
        self._rate = sample_rate  # 0: the first frame's
        self._channels = channels
        self._max_seconds = max_seconds
        self._keep_first = keep_first
        self._resampler: av.AudioResampler | None = None
        self._input: tuple[str, str, int] | None = None  # the frames the resampler is set up for
        self._blocks: list[np.ndarray] = []
        self._kept: int | None = None  # frames kept once cut at max_seconds
        self.seconds = 0.0  # of input decoded so far
        self.frames_out = 0  # handed over in blocks
        self._pending = 0  # samples in _blocks

    @property
    def rate(self) -> int:
        return self._rate

    @property
    def cut(self) -> bool:
        """Whether decoding stopped at max_seconds, keeping what came before."""
        return self._kept is not None

    def add(self, frame: av.AudioFrame) -> bool:
        """Takes one decoded frame; False once the bound is reached and the rest is to be left."""
        _check_format(frame.sample_rate, frame.layout.nb_channels, "A frame of the audio")
        seconds = frame.samples / frame.sample_rate
        limit = self._max_seconds
        over = limit is not None and self.seconds + seconds > limit
        if limit is not None and over and not self._keep_first:
            raise AudioTooLong(limit)
        self.seconds += seconds
        key = (frame.format.name, frame.layout.name, frame.sample_rate)
        if self._resampler is None or key != self._input:
            # A resampler takes frames of one kind only: a stream that changes rate or
            # layout mid-way gets a new one, converting to the same output.
            self.flush()
            self._rate = self._rate or frame.sample_rate
            layout = "mono" if self._channels == 1 else "stereo"
            self._resampler = av.AudioResampler(format="flt", layout=layout, rate=self._rate)
            self._input = key
        self._take(self._resampler.resample(frame))
        if limit is not None and over:
            self.flush()
            self._kept = round(limit * self._rate)
            return False
        return True

    def flush(self) -> None:
        if self._resampler is not None:
            self._take(self._resampler.resample(None))
            self._resampler = None

    def blocks(self, size: int | None, last: bool = False) -> Iterator[Pcm]:
        """What was decoded, in blocks of `size` frames (None: all of it in one block);
        the rest that does not fill a block stays for later unless `last`."""
        pending = self._pending // self._channels
        if not pending or (size and not last and pending < size):
            return
        samples = np.concatenate(self._blocks).reshape(-1, self._channels)
        self._blocks.clear()
        self._pending = 0
        if self._kept is not None:
            samples = samples[: max(self._kept - self.frames_out, 0)]
        step = size or len(samples)
        start = 0
        while step and len(samples) - start >= (1 if last else step):
            block = samples[start : start + step]
            start += len(block)
            self.frames_out += len(block)
            yield Pcm(block[:, 0] if self._channels == 1 else block, self._rate)
        if start < len(samples):
            self._blocks.append(samples[start:].reshape(-1))
            self._pending = self._blocks[0].size

    def _take(self, frames: list[av.AudioFrame]) -> None:
        for frame in frames:
            block = frame.to_ndarray().reshape(-1)
            # Per block: bad data stops decoding early, and no whole-buffer mask is made.
            if not np.isfinite(block).all():
                raise InvalidAudio("The audio holds samples that are not numbers (NaN or infinite).")
            self._blocks.append(block)
            self._pending += block.size


def _audio_stream(container: InputContainer) -> AudioStream:
    if not container.streams.audio:
        raise InvalidAudio("The file has no audio stream.")
    stream = container.streams.audio[0]
    context = stream.codec_context
    if context is None:  # FFmpeg has no decoder for the codec the header names
        raise InvalidAudio("The audio stream is in a codec that cannot be decoded.")
    _check_format(context.sample_rate, context.layout.nb_channels, "The audio stream's header")
    return stream


def _check_format(rate: int, channels: int, what: str) -> None:
    low, high = limits.INPUT_SAMPLE_RATE_MIN_HERTZ, limits.INPUT_SAMPLE_RATE_MAX_HERTZ
    if not low <= rate <= high:
        raise InvalidAudio(f"{what} has a sample rate of {rate} Hz; accepted rates are {low}-{high} Hz.")
    if not 1 <= channels <= limits.INPUT_CHANNELS_MAX:
        # FFmpeg reports 0 for a count it cannot take (above 512).
        stated = f"{channels} channels" if channels else "no channel count FFmpeg can read"
        raise InvalidAudio(f"{what} has {stated}; 1-{limits.INPUT_CHANNELS_MAX} channels are accepted.")


def _why(error: Exception) -> str:
    return getattr(error, "strerror", None) or type(error).__name__


# Share of the declared length a whole file decodes to, and slack for encoder padding.
_COMPLETE = 0.98
_SLACK_SECONDS = 0.05
# WAV writers that stream set the RIFF size to this (or 0): length unknown.
_RIFF_UNKNOWN = (0, 0xFFFFFFFF)
_WAV_HEADER_BYTES = 44
_MP3_LENGTH_HEADERS = (b"Xing", b"Info", b"VBRI")


def _declared_seconds(container: InputContainer, stream: AudioStream, head: bytes) -> float | None:
    """The length the file's header states, where it states one exactly; else None."""
    name = container.format.name
    if name == "wav":
        riff = int.from_bytes(head[4:8], "little")
        bit_rate = stream.codec_context.bit_rate
        if head[:4] != b"RIFF" or riff in _RIFF_UNKNOWN or not bit_rate:
            return None
        # FFmpeg sizes a WAV by the bytes present; the RIFF size says what should be there.
        return max(riff + 8 - _WAV_HEADER_BYTES, 0) * 8 / bit_rate
    if name == "mp3" and not any(tag in head for tag in _MP3_LENGTH_HEADERS):
        return None  # a bare MP3's length is estimated from its size, not stated
    if name not in ("flac", "mp3", "mov,mp4,m4a,3gp,3g2,mj2") or not stream.duration or stream.time_base is None:
        return None
    return float(stream.duration * stream.time_base)
