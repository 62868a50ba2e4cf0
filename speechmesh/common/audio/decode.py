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

    Raises InvalidAudio for empty input, input with no audio stream, or input that
    yields no samples (e.g. truncated before the first frame).
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
        blocks: list[np.ndarray] = []
        try:
            for frame in container.decode(stream):
                for out in resampler.resample(frame):
                    blocks.append(out.to_ndarray().reshape(-1, 1 if mono else 2))
        except av.FFmpegError:
            if not blocks:
                raise InvalidAudio("The audio data is corrupt or truncated.") from None
        for out in resampler.resample(None):
            blocks.append(out.to_ndarray().reshape(-1, 1 if mono else 2))
    if not blocks:
        raise InvalidAudio("The file contains no audio samples.")
    samples = np.concatenate(blocks).astype(np.float32)
    return Pcm(samples[:, 0] if mono else samples, rate)
