"""How long an uploaded audio file is, from its packets: demuxed, not decoded (about 50 times
faster), to price a transcription before it starts. The decoder's count is the truth (a file
can lie in its packets too); this is the estimate credits are held on."""

from __future__ import annotations

from typing import IO


def packet_seconds(file: IO[bytes]) -> float | None:
    """Seconds of the first audio stream by its packets' durations; None when the file cannot
    be read that way (not audio, or a container without packet durations)."""
    # Imported here: the gateway, which prices uploads with this, loads no codecs until then.
    import av

    from speechmesh.common.audio.decode import BAD_DATA

    file.seek(0)
    try:
        with av.open(file, mode="r") as container:
            if not container.streams.audio:
                return None
            stream = container.streams.audio[0]
            total = sum(packet.duration or 0 for packet in container.demux(stream))
            seconds = float(total * stream.time_base) if stream.time_base else 0.0
    except BAD_DATA:
        return None
    finally:
        file.seek(0)
    return seconds or None
