"""Conversions between proto messages and speechmesh's plain values, in one place.

Used by every service and by the gateway, so an encoding or gender is spelled one way.
"""

from __future__ import annotations

from speechmesh.common import limits
from speechmesh.common.audio.formats import FORMATS, OutputFormat, OutputSpec
from speechmesh.common.errors import InvalidArgument
from speechmesh.v1 import common_pb2

FORMAT_BY_ENCODING: dict[common_pb2.AudioEncoding, str] = {
    common_pb2.MP3: "mp3",
    common_pb2.WAV: "wav",
    common_pb2.FLAC: "flac",
    common_pb2.OGG_VORBIS: "ogg",
    common_pb2.OGG_OPUS: "opus",
    common_pb2.AAC: "aac",
    common_pb2.M4A: "m4a",
    common_pb2.LINEAR16: "pcm",
}
ENCODING_BY_FORMAT = {name: encoding for encoding, name in FORMAT_BY_ENCODING.items()}

GENDER_BY_ENUM = {common_pb2.MALE: "male", common_pb2.FEMALE: "female", common_pb2.NEUTRAL: "neutral"}
ENUM_BY_GENDER = {name: value for value, name in GENDER_BY_ENUM.items()}


def output_spec(message: common_pb2.AudioOutputSpec, default: str) -> OutputSpec:
    """Validates an AudioOutputSpec; raises InvalidArgument naming the bad field."""
    name = FORMAT_BY_ENCODING.get(message.encoding, default) if message.encoding else default
    if message.encoding and message.encoding not in FORMAT_BY_ENCODING:
        raise InvalidArgument(f"Unknown audio encoding {message.encoding}.", param="format")
    rate = message.sample_rate_hertz
    if rate and not limits.SAMPLE_RATE_MIN_HERTZ <= rate <= limits.SAMPLE_RATE_MAX_HERTZ:
        raise InvalidArgument(
            f"'sample_rate' must be between {limits.SAMPLE_RATE_MIN_HERTZ} and {limits.SAMPLE_RATE_MAX_HERTZ} Hz.",
            param="sample_rate",
        )
    if message.channels not in (0, 1, 2):
        raise InvalidArgument("'channels' must be 1 (mono) or 2 (stereo).", param="channels")
    if message.bitrate_kbps and not 32 <= message.bitrate_kbps <= 320:
        raise InvalidArgument("'bitrate' must be between 32 and 320 kbit/s.", param="bitrate")
    return OutputSpec(FORMATS[name], rate, message.channels or 1, message.bitrate_kbps)


def audio_metadata(
    fmt: OutputFormat, sample_rate: int, channels: int, duration_seconds: float
) -> common_pb2.AudioMetadata:
    return common_pb2.AudioMetadata(
        encoding=ENCODING_BY_FORMAT[fmt.name],
        mime_type=fmt.mime_type,
        sample_rate_hertz=sample_rate,
        channels=channels,
        duration_ms=round(duration_seconds * 1000),
    )
