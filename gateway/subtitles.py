"""Transcript renderings OpenAI's `response_format` offers: plain text, SubRip, WebVTT."""

from __future__ import annotations

from speechmesh.v1 import stt_pb2


def _clock(milliseconds: int, separator: str) -> str:
    hours, rest = divmod(max(milliseconds, 0), 3_600_000)
    minutes, rest = divmod(rest, 60_000)
    secs, millis = divmod(rest, 1000)
    return f"{hours:02d}:{minutes:02d}:{secs:02d}{separator}{millis:03d}"


def srt(reply: stt_pb2.RecognizeResponse) -> str:
    cues = [
        f"{index}\n{_clock(segment.start_ms, ',')} --> {_clock(segment.end_ms, ',')}\n{segment.text}\n"
        for index, segment in enumerate(reply.segments, start=1)
    ]
    return "\n".join(cues)


def vtt(reply: stt_pb2.RecognizeResponse) -> str:
    cues = [
        f"{_clock(segment.start_ms, '.')} --> {_clock(segment.end_ms, '.')}\n{segment.text}\n"
        for segment in reply.segments
    ]
    return "\n".join(["WEBVTT\n", *cues])


def text(reply: stt_pb2.RecognizeResponse) -> str:
    return f"{reply.text}\n"
