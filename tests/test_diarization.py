"""Diarization: clustering logic on made-up embeddings, then the speaker embedders on a
three-voice dialog of TTS voices (Piper joe, Kokoro jf_alpha and jm_kumo) transcribed by
Whisper tiny.en, diarized with CAM++ (the default embedder; real voices are
tests/test_diarization_real.py's)."""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence

import numpy as np
import pytest

from services.stt.diarization import DiarizationSettings, Diarizer
from services.stt.recognizer import SAMPLE_RATE, Segment, Transcript, Word
from speechmesh.common.errors import InvalidArgument
from speechmesh.speakers import SpeakerEmbedder
from speechmesh.speakers.campplus import CamPlusEmbedder
from tests.conftest import TURNS, Dialog
from tests.fakes import ToneEmbedder

# The label each turn should get: voices are numbered in order of first appearance.
EXPECTED = [f"SPEAKER_{list(dict.fromkeys(voice for voice, _ in TURNS)).index(voice):02d}" for voice, _ in TURNS]


# ---------------------------------------------------------------- without models


def tone_dialog(turns: Sequence[tuple[int, int]], pause: float = 0.5) -> tuple[np.ndarray, Transcript]:
    """(speaker, words) turns of 0.4 s words as audio and a one-segment transcript."""
    words, parts, t = [], [], 0.0
    for speaker, count in turns:
        for _ in range(count):
            words.append(Word(f" w{len(words)}", t, t + 0.4, 1.0))
            parts.append(np.full(round(0.4 * SAMPLE_RATE), speaker, np.float32))
            t += 0.4
        parts.append(np.zeros(round(pause * SAMPLE_RATE), np.float32))
        t += pause
    text = "".join(word.text for word in words).strip()
    segment = Segment(0.0, words[-1].end, text, tuple(words))
    return np.concatenate(parts), Transcript(text, "en", 1.0, t, (segment,))


def test_speaker_changes_split_segments_and_labels_follow_first_appearance() -> None:
    audio, transcript = tone_dialog([(3, 6), (1, 5), (3, 4), (2, 7)])
    # Two clips a turn: a speaker of one clip is folded into another (clustering needs two).
    settings = DiarizationSettings(min_clip_seconds=0.8, max_clip_seconds=1.2)
    result = Diarizer(ToneEmbedder(), settings).diarize(audio, transcript)

    assert [segment.speaker for segment in result.segments] == ["SPEAKER_00", "SPEAKER_01", "SPEAKER_00", "SPEAKER_02"]
    assert [len(segment.words) for segment in result.segments] == [6, 5, 4, 7]
    for segment in result.segments:
        assert {word.speaker for word in segment.words} == {segment.speaker}
        assert segment.text == "".join(word.text for word in segment.words).strip()
        assert (segment.start, segment.end) == (segment.words[0].start, segment.words[-1].end)
    assert result.text == transcript.text


def test_speaker_count_bounds_are_honoured() -> None:
    audio, transcript = tone_dialog([(1, 6), (2, 5), (3, 6), (1, 5), (2, 6), (3, 5)])
    diarizer = Diarizer(ToneEmbedder(), DiarizationSettings())

    def count(**bounds: int) -> int:
        return len({word.speaker for word in diarizer.diarize(audio, transcript, **bounds).words})

    assert count() == 3
    assert count(max_speakers=2) == 2
    assert count(max_speakers=1) == 1
    assert count(min_speakers=4, max_speakers=4) == 4
    with pytest.raises(InvalidArgument):
        diarizer.diarize(audio, transcript, min_speakers=3, max_speakers=2)
    with pytest.raises(InvalidArgument):
        diarizer.diarize(audio, transcript, min_speakers=-1)


def test_a_speaker_with_too_little_speech_is_folded_into_another() -> None:
    audio, transcript = tone_dialog([(1, 8), (2, 3), (1, 8), (3, 8)])
    settings = DiarizationSettings(min_speaker_seconds=2.0, min_clip_seconds=0.8, max_clip_seconds=1.2)
    diarizer = Diarizer(ToneEmbedder(), settings)

    assert len({word.speaker for word in diarizer.diarize(audio, transcript).words}) == 2
    # Unless the caller says there are that many.
    assert len({word.speaker for word in diarizer.diarize(audio, transcript, min_speakers=3).words}) == 3


def test_a_short_turn_merged_into_a_clip_goes_to_its_own_speaker() -> None:
    # Speaker 2's two-word answer (0.8 s) is too short to cluster: it joins speaker 1's clip,
    # then, embedded alone, moves to speaker 2.
    audio, transcript = tone_dialog([(1, 6), (2, 2), (1, 6), (2, 12)])

    moved = Diarizer(ToneEmbedder(), DiarizationSettings()).diarize(audio, transcript)
    kept = Diarizer(ToneEmbedder(), DiarizationSettings(short_turn_seconds=0)).diarize(audio, transcript)

    first, second = "SPEAKER_00", "SPEAKER_01"
    assert [word.speaker for word in moved.words] == [first] * 6 + [second] * 2 + [first] * 6 + [second] * 12
    assert [word.speaker for word in kept.words][6:8] == [first] * 2


def test_one_word_flip_inside_continuous_speech_is_smoothed() -> None:
    # Speaker 2's two lone words are two clips: a speaker to clustering, not to smoothing.
    audio, transcript = tone_dialog([(1, 4), (2, 1), (1, 4), (2, 1), (1, 4)], pause=0.0)
    settings = DiarizationSettings(max_clip_seconds=0.4, min_clip_seconds=0, min_speaker_seconds=0)

    smoothed = Diarizer(ToneEmbedder(), settings).diarize(audio, transcript)
    raw = Diarizer(ToneEmbedder(), settings.model_copy(update={"smooth": False})).diarize(audio, transcript)

    assert {word.speaker for word in smoothed.words} == {"SPEAKER_00"}
    assert [word.speaker for word in raw.words][3:6] == ["SPEAKER_00", "SPEAKER_01", "SPEAKER_00"]


def test_transcript_without_words_is_returned_unchanged() -> None:
    embedder = ToneEmbedder()
    transcript = Transcript("hello", "en", 1.0, 1.0, (Segment(0.0, 1.0, "hello"),))

    result = Diarizer(embedder, DiarizationSettings()).diarize(np.zeros(SAMPLE_RATE, np.float32), transcript)

    assert result == transcript
    assert embedder.calls == 0


def test_a_single_clip_is_one_speaker_without_embedding() -> None:
    embedder = ToneEmbedder()
    audio, transcript = tone_dialog([(1, 3)])

    result = Diarizer(embedder, DiarizationSettings()).diarize(audio, transcript)

    assert {word.speaker for word in result.words} == {"SPEAKER_00"}
    assert embedder.calls == 0


# ---------------------------------------------------------------- with real models


def recognize(whisper, audio: np.ndarray) -> Transcript:
    segments, info = whisper.transcribe(audio, language="en", word_timestamps=True, vad_filter=True)
    converted = tuple(
        Segment(
            start=segment.start,
            end=segment.end,
            text=segment.text.strip(),
            words=tuple(Word(word.word, word.start, word.end, word.probability) for word in segment.words or ()),
        )
        for segment in segments
    )
    text = " ".join(segment.text for segment in converted)
    return Transcript(text, info.language, info.language_probability, info.duration, converted)


@pytest.fixture(scope="module")
def transcript(whisper, dialog: Dialog) -> Transcript:
    return recognize(whisper, dialog.audio)


def turn_of(word: Word, spans: Sequence[tuple[float, float]]) -> int:
    """The turn whose audio holds the word's middle, or the nearest one."""
    middle = (word.start + word.end) / 2
    return min(range(len(spans)), key=lambda i: max(spans[i][0] - middle, middle - spans[i][1], 0))


def turn_speakers(result: Transcript, spans: Sequence[tuple[float, float]]) -> list[Counter[str]]:
    counts: list[Counter[str]] = [Counter() for _ in spans]
    for word in result.words:
        counts[turn_of(word, spans)][word.speaker] += 1
    return counts


def assert_segments_are_one_speaker(result: Transcript) -> None:
    for segment in result.segments:
        assert segment.speaker
        assert {word.speaker for word in segment.words} == {segment.speaker}
        assert segment.text == "".join(word.text for word in segment.words).strip()


@pytest.mark.slow
@pytest.mark.parametrize(("model", "dimensions"), [("embedder", 256), ("campplus", 192)])
def test_embedder_gives_unit_vectors_closer_for_one_voice(
    request: pytest.FixtureRequest, model: str, dimensions: int, dialog: Dialog
) -> None:
    embedder: SpeakerEmbedder = request.getfixturevalue(model)
    clips = [dialog.audio[round(start * SAMPLE_RATE) : round(end * SAMPLE_RATE)] for start, end in dialog.spans]

    vectors = embedder.embed_many(clips)

    assert vectors.shape == (len(TURNS), dimensions)
    assert vectors.dtype == np.float32
    np.testing.assert_allclose(np.linalg.norm(vectors, axis=1), 1.0, atol=1e-5)
    # One clip alone against the batch: the d-vector's int8 activations are quantised per
    # batch, so close, not equal.
    assert float(embedder.embed(clips[0]) @ vectors[0]) > 0.99
    distance = 1 - vectors @ vectors.T
    same = [distance[i, j] for i in range(len(TURNS)) for j in range(i) if TURNS[i][0] == TURNS[j][0]]
    different = [distance[i, j] for i in range(len(TURNS)) for j in range(i) if TURNS[i][0] != TURNS[j][0]]
    assert max(same) < min(different)


@pytest.mark.slow
def test_three_voice_dialog_gets_three_speakers_turn_by_turn(
    campplus: CamPlusEmbedder, dialog: Dialog, transcript: Transcript
) -> None:
    result = Diarizer(campplus, DiarizationSettings()).diarize(dialog.audio, transcript)

    counts = turn_speakers(result, dialog.spans)
    majority = [count.most_common(1)[0][0] for count in counts]
    for turn, count in enumerate(counts):
        assert sum(count.values()) - count[majority[turn]] <= 1, f"turn {turn}: {count}"
    assert majority == EXPECTED
    assert list(dict.fromkeys(word.speaker for word in result.words)) == ["SPEAKER_00", "SPEAKER_01", "SPEAKER_02"]
    assert_segments_are_one_speaker(result)
    assert [word.text for word in result.words] == [word.text for word in transcript.words]


@pytest.mark.slow
def test_turns_inside_one_whisper_segment_are_split(
    campplus: CamPlusEmbedder, dialog: Dialog, transcript: Transcript
) -> None:
    words = tuple(transcript.words)
    merged = Transcript(transcript.text, "en", 1.0, transcript.duration, (Segment(0.0, words[-1].end, "", words),))

    result = Diarizer(campplus, DiarizationSettings()).diarize(dialog.audio, merged)

    assert_segments_are_one_speaker(result)
    # A stray word at a turn boundary would add a one-word segment; the turns must be there.
    assert [segment.speaker for segment in result.segments if len(segment.words) > 1] == EXPECTED


@pytest.mark.slow
def test_speaker_count_bounds_on_the_dialog(campplus: CamPlusEmbedder, dialog: Dialog, transcript: Transcript) -> None:
    diarizer = Diarizer(campplus, DiarizationSettings())

    two = diarizer.diarize(dialog.audio, transcript, max_speakers=2)
    forced = diarizer.diarize(dialog.audio, transcript, min_speakers=3, max_speakers=3)

    assert len({word.speaker for word in two.words}) == 2
    assert_segments_are_one_speaker(two)
    assert len({word.speaker for word in forced.words}) == 3


@pytest.mark.slow
def test_one_voice_is_one_speaker(campplus: CamPlusEmbedder, voices, whisper) -> None:
    text = (
        "The weather service expects heavy rain tonight, so the outdoor concert moves to the town hall. "
        "Doors open at seven, and tickets bought online remain valid. "
        "Please bring an umbrella, because parking is a short walk away from the entrance."
    )
    audio = voices("joe", text)
    transcript = recognize(whisper, audio)

    result = Diarizer(campplus, DiarizationSettings()).diarize(audio, transcript)

    assert len(result.words) > 20
    assert {word.speaker for word in result.words} == {"SPEAKER_00"}
    assert {segment.speaker for segment in result.segments} == {"SPEAKER_00"}
