"""What the audio service sends back, received into spools and answered as files.

The service sends each result whole once it is done (services/audio/output.py); the
gateway spools it (memory up to a few MiB, then disk) so a long result costs no memory,
and so an error that comes before the last byte still becomes the documented JSON error
instead of a cut response. Stems arrive one after the other and go into one ZIP.
"""

from __future__ import annotations

import contextlib
import tempfile
import zipfile
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, field
from typing import IO

import grpc
from fastapi.responses import StreamingResponse

from gateway.uploads import AudioBudget
from speechmesh.common import limits
from speechmesh.common.audio.formats import FORMATS
from speechmesh.convert import FORMAT_BY_ENCODING
from speechmesh.v1 import audio_pb2, common_pb2

SPOOL_MEMORY_BYTES = 4 * 1024 * 1024


@dataclass
class Received:
    """One received file (or ZIP of stems) and how it was made."""

    file: IO[bytes] = field(
        # Closed by the response that sends it (`file_response`), or by the caller on error.
        default_factory=lambda: tempfile.SpooledTemporaryFile(max_size=SPOOL_MEMORY_BYTES)  # noqa: SIM115
    )
    metadata: common_pb2.AudioMetadata = field(default_factory=common_pb2.AudioMetadata)
    report: audio_pb2.ProcessingReport = field(default_factory=audio_pb2.ProcessingReport)

    @property
    def media_type(self) -> str:
        return self.metadata.mime_type or "application/octet-stream"

    @property
    def extension(self) -> str:
        return FORMATS[FORMAT_BY_ENCODING[self.metadata.encoding]].name if self.metadata.encoding else "bin"

    def close(self) -> None:
        self.file.close()


@contextlib.contextmanager
def _receiving(received: Received, budget: AudioBudget) -> Iterator[None]:
    """Closes `received` on any failure; a refusal past `budget` becomes 402."""
    try:
        yield
    except grpc.aio.AioRpcError as error:
        received.close()
        raise budget.refusal(error) or error from None
    except BaseException:
        received.close()
        raise


async def receive(replies: AsyncIterator[audio_pb2.ProcessedAudio], budget: AudioBudget) -> Received:
    """The file a processing call sends."""
    received = Received()
    with _receiving(received, budget):
        async for message in replies:
            if message.HasField("audio_content"):
                received.file.write(message.audio_content)
            elif message.HasField("metadata"):
                received.metadata, received.report = message.metadata, message.report
    return received


async def receive_stems(
    replies: AsyncIterator[audio_pb2.SeparateResponse], budget: AudioBudget, extension: str
) -> Received:
    """Every stem a separation sends, as `<stem>.<extension>` files of one ZIP."""
    received = Received()
    entry: IO[bytes] | None = None
    # Audio files hardly compress: stored, not deflated, costs no CPU.
    with _receiving(received, budget), zipfile.ZipFile(received.file, "w", zipfile.ZIP_STORED) as archive:
        try:
            async for message in replies:
                if message.audio.HasField("audio_content"):
                    if entry is None:
                        entry = archive.open(f"{message.stem}.{extension}", "w", force_zip64=True)
                    entry.write(message.audio.audio_content)
                elif message.audio.HasField("metadata"):
                    received.metadata, received.report = message.audio.metadata, message.audio.report
                    if entry is not None:
                        entry.close()
                        entry = None
        finally:
            # An entry left open would make closing the ZIP raise, hiding the real error.
            if entry is not None:
                entry.close()
    return received


def file_response(received: Received, media_type: str, filename: str, headers: dict[str, str]) -> StreamingResponse:
    """`received` sent from its spool, closed once sent (or once the client has gone)."""
    size = received.file.tell()

    def chunks() -> Iterator[bytes]:
        try:
            received.file.seek(0)
            while block := received.file.read(limits.CHUNK_BYTES):
                yield block
        finally:
            received.close()

    return StreamingResponse(
        chunks(),
        media_type=media_type,
        headers={
            **headers,
            "Content-Length": str(size),
            "Content-Disposition": f'attachment; filename="{filename}"',
        },
    )
