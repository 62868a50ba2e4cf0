"""Where stored results' bytes live: a local folder (default) or an S3-compatible bucket.

Names are checked ids (gateway/store/results.py), never paths a caller wrote. A blob appears
whole or not at all: the folder writes a temporary file and renames it; S3 makes an object
visible only once its upload completed.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import shutil
import tempfile
from collections.abc import AsyncIterator
from pathlib import Path
from typing import IO, Any, Protocol

_CHUNK = 1024 * 1024


class BlobStore(Protocol):
    async def put(self, name: str, source: IO[bytes]) -> None: ...

    def read(self, name: str) -> AsyncIterator[bytes]:
        """The blob's bytes in chunks; FileNotFoundError if it is gone."""

    async def delete(self, name: str) -> None: ...


class FolderBlobs:
    def __init__(self, folder: Path) -> None:
        self._folder = folder
        folder.mkdir(parents=True, exist_ok=True)

    async def put(self, name: str, source: IO[bytes]) -> None:
        await asyncio.to_thread(self._put, name, source)

    def _put(self, name: str, source: IO[bytes]) -> None:
        source.seek(0)
        with tempfile.NamedTemporaryFile(dir=self._folder, prefix=".partial-", delete=False) as target:
            try:
                shutil.copyfileobj(source, target, _CHUNK)
                target.flush()
                os.fsync(target.fileno())
            except BaseException:
                os.unlink(target.name)
                raise
        os.replace(target.name, self._folder / name)

    async def read(self, name: str) -> AsyncIterator[bytes]:
        file = await asyncio.to_thread(open, self._folder / name, "rb")
        try:
            while chunk := await asyncio.to_thread(file.read, _CHUNK):
                yield chunk
        finally:
            file.close()

    async def delete(self, name: str) -> None:
        with contextlib.suppress(FileNotFoundError):
            await asyncio.to_thread(os.unlink, self._folder / name)


class S3Blobs:
    """boto3 (its calls in threads): credentials and region from boto3's usual sources."""

    def __init__(self, bucket: str, endpoint_url: str | None) -> None:
        import boto3

        self._bucket = bucket
        self._client: Any = boto3.client("s3", endpoint_url=endpoint_url)

    async def put(self, name: str, source: IO[bytes]) -> None:
        source.seek(0)
        await asyncio.to_thread(self._client.upload_fileobj, source, self._bucket, name)

    async def read(self, name: str) -> AsyncIterator[bytes]:
        try:
            reply = await asyncio.to_thread(self._client.get_object, Bucket=self._bucket, Key=name)
        except self._client.exceptions.NoSuchKey:
            raise FileNotFoundError(name) from None
        body = reply["Body"]
        try:
            while chunk := await asyncio.to_thread(body.read, _CHUNK):
                yield chunk
        finally:
            body.close()

    async def delete(self, name: str) -> None:
        await asyncio.to_thread(self._client.delete_object, Bucket=self._bucket, Key=name)
