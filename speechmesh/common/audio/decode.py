"""Decoding uploaded audio files of any container FFmpeg reads into PCM."""

from __future__ import annotations

import io
from typing import Any

import av
import numpy as np

from speechmesh.common.audio.pcm import Pcm
from speechmesh.common.errors import InvalidAudio


def decode_audio(data: bytes, *, sample_rate: int = 0, mono: bool = True) -> Pcm:
    """Decodes the first audio stream, resampled to `sample_rate` (0 keeps it).

    Raises InvalidAudio for empty input, input with no audio stream, input that
    yields no samples, corrupt data, and files cut short: a file whose header states
    its length (WAV, FLAC, MP4/M4A, MP3 with a Xing/Info/VBRI header) must decode to
    that length. Transcribing half a file as if it were whole would lose data silently.
    """
    if not data:
        raise InvalidAudio("The audio file is empty.")
    try:
        container: Any = av.open(io.BytesIO(data), mode="r")
    except av.FFmpegError as error:
        raise InvalidAudio(f"The file is not audio that can be decoded ({error.strerror}).") from None
    with container:
        if not container.streams.audio:
            raise InvalidAudio("The file has no audio stream.")
        stream = container.streams.audio[0]
        rate = sample_rate or stream.codec_context.sample_rate
        resampler = av.AudioResampler(format="flt", layout="mono" if mono else "stereo", rate=rate)
        declared = _declared_seconds(container, stream, data)
        blocks: list[np.ndarray] = []
        try:
            for frame in container.decode(stream):
                for out in resampler.resample(frame):
                    blocks.append(out.to_ndarray().reshape(-1, 1 if mono else 2))
        except av.FFmpegError:
            decoded = sum(len(block) for block in blocks) / rate
            raise InvalidAudio(f"The audio data is corrupt or cut short after {decoded:.1f} s.") from None
        for out in resampler.resample(None):
            blocks.append(out.to_ndarray().reshape(-1, 1 if mono else 2))
    if not blocks:
        raise InvalidAudio("The file contains no audio samples.")
    samples = np.concatenate(blocks).astype(np.float32)
    decoded = len(samples) / rate
    if declared is not None and decoded < declared * _COMPLETE - _SLACK_SECONDS:
        raise InvalidAudio(
            f"The audio file is truncated: its header says {declared:.1f} s but only {decoded:.1f} s are there."
        )
    return Pcm(samples[:, 0] if mono else samples, rate)


# Share of the declared length a whole file decodes to, and slack for encoder padding.
_COMPLETE = 0.98
_SLACK_SECONDS = 0.05
# WAV writers that stream set the RIFF size to this (or 0): length unknown.
_RIFF_UNKNOWN = (0, 0xFFFFFFFF)
_WAV_HEADER_BYTES = 44
_MP3_LENGTH_HEADERS = (b"Xing", b"Info", b"VBRI")


def _declared_seconds(container: Any, stream: Any, data: bytes) -> float | None:
    """The length the file's header states, where it states one exactly; else None."""
    name = container.format.name
    if name == "wav":
        riff = int.from_bytes(data[4:8], "little")
        bit_rate = stream.codec_context.bit_rate
        if data[:4] != b"RIFF" or riff in _RIFF_UNKNOWN or not bit_rate:
            return None
        # FFmpeg sizes a WAV by the bytes present; the RIFF size says what should be there.
        return max(riff + 8 - _WAV_HEADER_BYTES, 0) * 8 / bit_rate
    if name == "mp3" and not any(tag in data[:65536] for tag in _MP3_LENGTH_HEADERS):
        return None  # a bare MP3's length is estimated from its size, not stated
    if name not in ("flac", "mp3", "mov,mp4,m4a,3gp,3g2,mj2") or not stream.duration:
        return None
    return float(stream.duration * stream.time_base)
