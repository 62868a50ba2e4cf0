"""The output formats speechmesh can encode, and how FFmpeg is told to make each one.

Names are the API's format names. Two facts about PyAV's bundled FFmpeg shape this
table: it has no libvorbis, so Ogg Vorbis uses FFmpeg's native encoder, which is marked
experimental and only encodes stereo (mono is duplicated); and Opus only runs at 48 kHz.
"""

from __future__ import annotations

from dataclasses import dataclass

from speechmesh.common.errors import InvalidArgument


@dataclass(frozen=True)
class OutputFormat:
    name: str
    container: str
    codec: str
    mime_type: str
    streamable: bool
    lossy: bool
    fixed_rate: int | None = None
    fixed_channels: int | None = None
    codec_options: tuple[tuple[str, str], ...] = ()
    default_bitrate_kbps: int | None = None


FORMATS: dict[str, OutputFormat] = {
    fmt.name: fmt
    for fmt in (
        OutputFormat("mp3", "mp3", "libmp3lame", "audio/mpeg", True, True, default_bitrate_kbps=128),
        OutputFormat("wav", "wav", "pcm_s16le", "audio/wav", True, False),
        OutputFormat("flac", "flac", "flac", "audio/flac", True, False),
        OutputFormat(
            "ogg",
            "ogg",
            "vorbis",
            "audio/ogg",
            True,
            True,
            fixed_channels=2,
            codec_options=(("strict", "-2"),),
            default_bitrate_kbps=96,
        ),
        OutputFormat("opus", "ogg", "libopus", "audio/ogg", True, True, fixed_rate=48_000, default_bitrate_kbps=64),
        OutputFormat("aac", "adts", "aac", "audio/aac", True, True, default_bitrate_kbps=128),
        OutputFormat("m4a", "ipod", "aac", "audio/mp4", False, True, default_bitrate_kbps=128),
        OutputFormat("pcm", "s16le", "pcm_s16le", "audio/pcm", True, False),
    )
}


def output_format(name: str) -> OutputFormat:
    try:
        return FORMATS[name]
    except KeyError:
        known = ", ".join(sorted(FORMATS))
        raise InvalidArgument(f"Unknown audio format '{name}'; use one of: {known}.", param="format") from None


@dataclass(frozen=True)
class OutputSpec:
    """A validated request for output audio: format plus optional overrides (0 = keep)."""

    format: OutputFormat
    sample_rate: int = 0
    channels: int = 1
    bitrate_kbps: int = 0
