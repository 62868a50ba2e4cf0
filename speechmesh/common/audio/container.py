"""What an uploaded file's container says about itself: its format and its tags.

Read from the headers only (nothing decoded): the audio tools answer in the input's
format unless told otherwise, and the converter carries the tags people see in their
players (title, artist, ...) over to the new file.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import IO

import av

from speechmesh.common.audio.decode import BAD_DATA

# FFmpeg's demuxer names -> the API's format names. MP4 and M4A share a demuxer.
_FORMAT_BY_DEMUXER = {
    "mp3": "mp3",
    "wav": "wav",
    "flac": "flac",
    "ogg": "ogg",
    "aac": "aac",
    "mov,mp4,m4a,3gp,3g2,mj2": "m4a",
}
# Tags worth keeping: what players show. FFmpeg names them the same in every container.
TAGS = ("title", "artist", "album", "album_artist", "date", "genre", "track", "comment")
_TAG_MAX_CHARS = 1000


@dataclass(frozen=True)
class ContainerInfo:
    # The API format name of the input ("mp3", "wav", ...), or "" for one it cannot write.
    format: str = ""
    tags: dict[str, str] = field(default_factory=dict)
    # The first audio stream's header values (a claim: the decoder checks them); 0 unknown.
    sample_rate: int = 0
    channels: int = 0


def container_info(file: IO[bytes]) -> ContainerInfo:
    """The input's format and player tags; an unreadable file gives an empty answer (the
    decoder, which runs next, says what is wrong with it)."""
    file.seek(0)
    try:
        with av.open(file, mode="r") as container:
            name = _FORMAT_BY_DEMUXER.get(container.format.name, "")
            if name == "ogg" and container.streams.audio and container.streams.audio[0].codec_context.name == "opus":
                name = "opus"
            metadata = {key.lower(): value for key, value in container.metadata.items()}
            rate = channels = 0
            if container.streams.audio:
                context = container.streams.audio[0].codec_context
                rate, channels = context.sample_rate or 0, context.layout.nb_channels
                # Ogg and FLAC keep their comments on the stream, not the container.
                stream_tags = container.streams.audio[0].metadata
                metadata.update({key.lower(): value for key, value in stream_tags.items() if key.lower() in TAGS})
    except BAD_DATA:
        return ContainerInfo()
    finally:
        file.seek(0)
    tags = {key: str(metadata[key])[:_TAG_MAX_CHARS] for key in TAGS if metadata.get(key)}
    return ContainerInfo(name, tags, rate, channels)
