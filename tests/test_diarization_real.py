"""Diarization of real people (tests/real_speech.py): Asterisk prompts by Allison (woman, en),
June (woman, fr) and Carlo (man, it) in alternating 3-5 s turns, at 8 kHz (telephone WAV)
and 16 kHz (G.722), transcribed once by the session's STT service (Whisper base, languages
detected: tiny.en lost or misplaced the French and Italian turns), diarized here and scored
with pyannote.metrics. bench/diarization_real.py runs the whole set."""

from __future__ import annotations

import pytest
import pytest_asyncio

from services.stt.diarization import DiarizationSettings, Diarizer
from services.stt.recognizer import Segment, Transcript, Word
from speechmesh.speakers.dvector import DVectorEmbedder
from speechmesh.v1 import stt_pb2
from tests import real_speech
from tests.real_speech import Band, Dialog
from tests.test_diarization import assert_segments_are_one_speaker
from tests.test_stt_grpc import recognize

pytestmark = pytest.mark.slow

TWO_WOMEN = ("allison", "june") * 3
THREE = real_speech.DIALOGS["allison+june+carlo"]


# The dialogs the tests diarize, each transcribed once.
CASES: tuple[tuple[tuple[str, ...], Band], ...] = (
    (TWO_WOMEN, "narrow"),
    (THREE, "narrow"),
    (THREE, "wide"),
    (("allison",) * 4, "narrow"),
)


def _transcript(reply: stt_pb2.RecognizeResponse) -> Transcript:
    segments = tuple(
        Segment(
            segment.start_ms / 1000,
            segment.end_ms / 1000,
            segment.text,
            tuple(Word(f" {w.word}", w.start_ms / 1000, w.end_ms / 1000, w.probability) for w in segment.words),
        )
        for segment in reply.segments
    )
    return Transcript(reply.text, reply.language, reply.language_probability, reply.duration_ms / 1000, segments)


@pytest_asyncio.fixture(scope="module")
async def transcribed(stt_channel) -> dict[tuple[tuple[str, ...], Band], tuple[Dialog, Transcript]]:
    cases = {}
    for voices, band in CASES:
        dialog = real_speech.dialog(voices, band)
        reply = await recognize(stt_channel, dialog.wav(), word_timestamps=True)
        cases[voices, band] = (dialog, _transcript(reply))
    return cases


def diarize(embedder: DVectorEmbedder, dialog: Dialog, transcript: Transcript, **bounds: int) -> Transcript:
    return Diarizer(embedder, DiarizationSettings()).diarize(dialog.audio(), transcript, **bounds)


def spans(result: Transcript) -> list[tuple[float, float, str]]:
    return [(segment.start, segment.end, segment.speaker) for segment in result.segments]


def test_two_women_on_the_phone_are_two_speakers_turn_by_turn(embedder: DVectorEmbedder, transcribed) -> None:
    dialog, transcript = transcribed[TWO_WOMEN, "narrow"]

    result = diarize(embedder, dialog, transcript)

    score = real_speech.score(dialog, spans(result))
    assert score.speakers == 2, score
    assert score.der <= 0.10, score
    assert_segments_are_one_speaker(result)


@pytest.mark.parametrize("band", ["narrow", "wide"])
def test_three_real_speakers_are_found_as_three(embedder: DVectorEmbedder, transcribed, band: Band) -> None:
    dialog, transcript = transcribed[THREE, band]

    result = diarize(embedder, dialog, transcript)

    score = real_speech.score(dialog, spans(result))
    assert score.speakers == 3, score
    assert score.der <= 0.10, score


def test_speaker_count_bounds_are_honoured_exactly(embedder: DVectorEmbedder, transcribed) -> None:
    dialog, transcript = transcribed[THREE, "narrow"]

    def count(**bounds: int) -> int:
        return len({word.speaker for word in diarize(embedder, dialog, transcript, **bounds).words})

    assert count(max_speakers=2) == 2
    assert count(max_speakers=1) == 1
    assert count(min_speakers=4) == 4
    assert count(min_speakers=5, max_speakers=5) == 5
    # Where the embeddings say one speaker, a caller's two are still two.
    alone, alone_transcript = transcribed[("allison",) * 4, "narrow"]
    assert len({word.speaker for word in diarize(embedder, alone, alone_transcript).words}) == 1
    assert len({word.speaker for word in diarize(embedder, alone, alone_transcript, min_speakers=2).words}) == 2
