"""Cutting audio bytes into gRPC-message-sized pieces, the same way on both sides."""

from __future__ import annotations

from collections.abc import Iterator

from speechmesh.common.limits import CHUNK_BYTES


def chunked(data: bytes, size: int = CHUNK_BYTES) -> Iterator[bytes]:
    """`data` in order, in pieces of at most `size` bytes (none for empty data)."""
    for start in range(0, len(data), size):
        yield data[start : start + size]
