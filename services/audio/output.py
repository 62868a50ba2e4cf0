"""Encoded results of the audio service: files written to spools, sent once complete.

A result is encoded into a spooled temporary file (memory up to a few MiB, then disk)
and only sent when the whole input has been processed: a file that fails half-way
(truncated input, a bound passed, the caller gone) is never half-delivered, and an
hour of output costs disk, not memory.
"""

from __future__ import annotations

import tempfile
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from typing import IO

import av
import numpy as np

from speechmesh.common import limits
from speechmesh.common.audio.container import ContainerInfo
from speechmesh.common.audio.encode import StreamEncoder
from speechmesh.common.audio.formats import FORMATS, OutputFormat, OutputSpec
from speechmesh.common.audio.pcm import Pcm

SPOOL_MEMORY_BYTES = 8 * 1024 * 1024


def chosen_format(output: OutputSpec | None, info: ContainerInfo, default: str) -> OutputFormat:
    """The asked format; unasked, `default`, where "input" means the input's own format
    (WAV when it is one the service cannot write)."""
    if output is not None:
        return output.format
    if default == "input":
        return FORMATS.get(info.format) or FORMATS["wav"]
    return FORMATS[default]


@dataclass
class Produced:
    """One encoded output file (a stem's name, or "" for the only one)."""

    name: str
    format: OutputFormat
    sample_rate: int
    channels: int
    frames: int = 0  # at the input rate fed to the encoder
    input_rate: int = 1
    file: IO[bytes] = field(
        # Closed by whoever sends it (the servicer), which also deletes the spool.
        default_factory=lambda: tempfile.SpooledTemporaryFile(max_size=SPOOL_MEMORY_BYTES)  # noqa: SIM115
    )

    @property
    def duration_seconds(self) -> float:
        return self.frames / self.input_rate

    def chunks(self, size: int = limits.CHUNK_BYTES) -> Iterator[bytes]:
        self.file.seek(0)
        while block := self.file.read(size):
            yield block

    def close(self) -> None:
        self.file.close()


def encodable_rate(fmt: OutputFormat, rate: int) -> int:
    """`rate`, or the nearest rate above it (else below) that the format's encoder takes:
    MP3 and AAC have fixed lists (a 37.8 kHz recording cannot be MP3 at 37.8 kHz)."""
    rates = av.codec.Codec(fmt.codec, "w").audio_rates
    if not rates or rate in rates:
        return rate
    above = [candidate for candidate in rates if candidate > rate]
    return min(above) if above else max(rates)


class Outputs:
    """One encoder per named output, fed block by block, into spools."""

    def __init__(
        self,
        names: tuple[str, ...],
        fmt: OutputFormat,
        input_rate: int,
        *,
        sample_rate: int,
        channels: int,
        bitrate_kbps: int = 0,
        tags: Mapping[str, str] | None = None,
    ) -> None:
        self.produced: dict[str, Produced] = {}
        self._encoders: dict[str, StreamEncoder] = {}
        try:
            for name in names:
                produced = Produced(name, fmt, 0, 0, input_rate=input_rate)
                self.produced[name] = produced
                encoder = StreamEncoder(
                    fmt,
                    input_rate,
                    sample_rate=encodable_rate(fmt, sample_rate or input_rate),
                    channels=channels,
                    bitrate_kbps=bitrate_kbps,
                    streaming=False,
                    file=produced.file,
                    tags=tags,
                )
                produced.sample_rate, produced.channels = encoder.sample_rate, encoder.channels
                self._encoders[name] = encoder
        except BaseException:
            self.close()
            raise

    def feed(self, blocks: Mapping[str, np.ndarray]) -> None:
        for name, audio in blocks.items():
            produced = self.produced[name]
            self._encoders[name].feed(Pcm(audio, produced.input_rate))
            produced.frames += len(audio)

    def finish(self) -> list[Produced]:
        for encoder in self._encoders.values():
            encoder.finish()
        return list(self.produced.values())

    def close(self) -> None:
        """Gives up: the encoders' FFmpeg contexts and the spools go."""
        for encoder in self._encoders.values():
            encoder.close()
        for produced in self.produced.values():
            produced.close()
