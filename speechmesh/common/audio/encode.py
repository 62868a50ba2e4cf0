"""Encoding PCM into files, whole or progressively.

`StreamEncoder` writes into a non-seekable sink and hands back the bytes each `feed`
produced, so a caller can send audio while later audio is still being made; the
muxer is told to flush after every packet (and Ogg to cut short pages) for that.
`encode_audio` writes into a seekable buffer so FFmpeg can go back and fill in exact
header fields (WAV sizes, FLAC total samples) when the file is finished.
"""

from __future__ import annotations

import contextlib
import io
from collections.abc import Mapping
from typing import IO, Any

import av
import numpy as np

from speechmesh.common.audio.formats import OutputFormat
from speechmesh.common.audio.pcm import Pcm

_OGG_PAGE_MICROSECONDS = "20000"


class _Sink:
    """A write-only, non-seekable file object that collects what the muxer writes."""

    def __init__(self) -> None:
        self._parts: list[bytes] = []

    def write(self, data: bytes) -> int:
        self._parts.append(bytes(data))
        return len(data)

    def seekable(self) -> bool:
        return False

    def take(self) -> bytes:
        data = b"".join(self._parts)
        self._parts.clear()
        return data


class StreamEncoder:
    """Encodes PCM blocks of one sample rate into one file of `fmt`.

    `streaming=True`: every `feed` returns the bytes ready so far and the concatenation
    of all returns (plus `finish`) is a valid file. `streaming=False`: bytes come only
    from `finish`, with exact headers.
    """

    def __init__(
        self,
        fmt: OutputFormat,
        input_rate: int,
        *,
        sample_rate: int = 0,
        channels: int = 1,
        bitrate_kbps: int = 0,
        streaming: bool = True,
        file: IO[bytes] | None = None,
        tags: Mapping[str, str] | None = None,
    ) -> None:
        """`file`: a seekable file to write into instead of handing bytes back (exact
        headers, memory bounded for long audio; `finish` then returns b""). `tags`:
        container metadata (title, artist, ...), written where the container holds it."""
        self.format = fmt
        self.input_rate = input_rate
        self.sample_rate = fmt.fixed_rate or sample_rate or input_rate
        self.channels = fmt.fixed_channels or channels or 1
        self.frames_in = 0
        self._buffer: _Sink | IO[bytes] = file if file is not None else _Sink() if streaming else io.BytesIO()
        options = {"flush_packets": "1"} if streaming and file is None else {}
        if fmt.container == "ogg":
            options["page_duration"] = _OGG_PAGE_MICROSECONDS
        self._container: Any = av.open(self._buffer, mode="w", format=fmt.container, options=options)
        if tags:
            self._container.metadata.update(tags)
        layout = "stereo" if self.channels == 2 else "mono"
        self._stream: Any = self._container.add_stream(fmt.codec, rate=self.sample_rate, layout=layout)
        if fmt.lossy:
            kbps = bitrate_kbps or fmt.default_bitrate_kbps or 128
            self._stream.codec_context.bit_rate = kbps * 1000
        if fmt.codec_options:
            self._stream.codec_context.options = dict(fmt.codec_options)
        self._layout = layout

    @property
    def duration_seconds(self) -> float:
        return self.frames_in / self.input_rate

    def feed(self, pcm: Pcm) -> bytes:
        if pcm.sample_rate != self.input_rate:
            raise ValueError(f"expected {self.input_rate} Hz PCM, got {pcm.sample_rate} Hz")
        if pcm.frames == 0:
            return b""
        samples = pcm.to_int16()
        if samples.shape[1] != self.channels:
            # Stereo to mono is the channels' average; mono to stereo the one channel twice.
            source = samples.mean(axis=1, keepdims=True).astype(np.int16) if samples.shape[1] > 1 else samples
            samples = np.repeat(source, self.channels, axis=1)
        frame = av.AudioFrame.from_ndarray(
            np.ascontiguousarray(samples.reshape(1, -1)), format="s16", layout=self._layout
        )
        frame.sample_rate = self.input_rate
        frame.pts = self.frames_in
        self.frames_in += pcm.frames
        for packet in self._stream.encode(frame):
            self._container.mux(packet)
        return self._take()

    def finish(self) -> bytes:
        for packet in self._stream.encode(None):
            self._container.mux(packet)
        self._container.close()
        if isinstance(self._buffer, io.BytesIO):
            return self._buffer.getvalue()
        if isinstance(self._buffer, _Sink):
            return self._buffer.take()
        return b""

    def close(self) -> None:
        """Frees FFmpeg's context without finishing the file (a failed or abandoned encode)."""
        with contextlib.suppress(av.FFmpegError, ValueError, OSError):
            self._container.close()

    def _take(self) -> bytes:
        return self._buffer.take() if isinstance(self._buffer, _Sink) else b""


def encode_audio(
    pcm: Pcm, fmt: OutputFormat, *, sample_rate: int = 0, channels: int = 1, bitrate_kbps: int = 0
) -> bytes:
    """Encodes one whole PCM buffer into a finished file with exact headers."""
    encoder = StreamEncoder(
        fmt, pcm.sample_rate, sample_rate=sample_rate, channels=channels, bitrate_kbps=bitrate_kbps, streaming=False
    )
    encoder.feed(pcm)
    return encoder.finish()
