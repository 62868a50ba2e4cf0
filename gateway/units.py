"""The services count time in milliseconds; the API in seconds."""

from __future__ import annotations


def seconds(milliseconds: int) -> float:
    return round(milliseconds / 1000, 3)
