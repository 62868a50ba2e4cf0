"""Codecs: every output format encodes whole and streamed, and decodes back intact."""

from __future__ import annotations

import numpy as np
import pytest

from speechmesh.common.audio.decode import decode_audio
from speechmesh.common.audio.encode import StreamEncoder, encode_audio
from speechmesh.common.audio.formats import FORMATS, output_format
from speechmesh.common.audio.pcm import Pcm
from speechmesh.common.errors import InvalidArgument, InvalidAudio

RATE = 22_050


def tone(seconds: float, rate: int = RATE) -> Pcm:
    t = np.arange(int(seconds * rate)) / rate
    return Pcm((0.5 * np.sin(2 * np.pi * 330 * t)).astype(np.float32), rate)


CONTAINER_FORMATS = [name for name in FORMATS if name != "pcm"]


@pytest.mark.parametrize("name", CONTAINER_FORMATS)
def test_whole_file_decodes_to_the_same_duration(name: str) -> None:
    fmt = FORMATS[name]
    data = encode_audio(tone(1.5), fmt)
    decoded = decode_audio(data, sample_rate=RATE)
    assert decoded.duration_seconds == pytest.approx(1.5, abs=0.08)
    assert np.sqrt(np.mean(decoded.samples**2)) > 0.1


@pytest.mark.parametrize("name", [n for n in CONTAINER_FORMATS if FORMATS[n].streamable])
def test_streamed_pieces_concatenate_into_one_valid_file(name: str) -> None:
    encoder = StreamEncoder(FORMATS[name], RATE, streaming=True)
    pieces = [encoder.feed(tone(0.7)) for _ in range(3)]
    pieces.append(encoder.finish())
    assert sum(1 for piece in pieces[:-1] if piece) >= 2, "bytes must leave before the end"
    decoded = decode_audio(b"".join(pieces), sample_rate=RATE)
    assert decoded.duration_seconds == pytest.approx(2.1, abs=0.1)


def test_output_rate_and_channels_are_honoured() -> None:
    data = encode_audio(tone(1.0), FORMATS["flac"], sample_rate=44_100, channels=2)
    decoded = decode_audio(data, mono=False)
    assert (decoded.sample_rate, decoded.channels) == (44_100, 2)


def test_raw_pcm_is_headerless_int16() -> None:
    data = encode_audio(tone(1.0), FORMATS["pcm"])
    assert len(data) == RATE * 2


def test_unknown_format_is_an_invalid_argument() -> None:
    with pytest.raises(InvalidArgument, match="aiff"):
        output_format("aiff")


@pytest.mark.parametrize(
    ("data", "message"),
    [(b"", "empty"), (b"this is plainly not audio" * 40, "not audio"), (b"RIFF\x00\x00", "not audio")],
)
def test_bad_input_is_invalid_audio(data: bytes, message: str) -> None:
    with pytest.raises(InvalidAudio, match=message):
        decode_audio(data)


@pytest.mark.parametrize("name", ["wav", "mp3", "flac", "aac", "m4a"])
def test_a_file_cut_short_is_refused(name: str) -> None:
    data = encode_audio(tone(2.0), FORMATS[name])
    assert decode_audio(data).duration_seconds >= 1.95
    with pytest.raises(InvalidAudio, match=r"truncated|cut short|not audio"):
        decode_audio(data[: len(data) // 2])


def test_a_streamed_wav_of_unknown_length_is_whole() -> None:
    encoder = StreamEncoder(FORMATS["wav"], 22050, streaming=True)
    data = encoder.feed(tone(1.0)) + encoder.finish()
    assert data[4:8] == b"\xff\xff\xff\xff"
    assert abs(decode_audio(data).duration_seconds - 1.0) < 0.01
