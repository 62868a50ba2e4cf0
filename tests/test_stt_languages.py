"""No lost turns, and each in its own language: POST /v1/stt/ on dialogs of real people
(Asterisk's prompts read by Allison in English, Carlo in Italian, June in French; 8 kHz
telephone WAV and 16 kHz G.722) through the gateway and the real STT service.

Before per-chunk languages and the coverage pass (services/stt/engines/whisper_chunks.py),
Whisper base detected one language for a chunk of both people and left one to five of six
turns of such dialogs without a word."""

from __future__ import annotations

import pytest

from tests.conftest import word_error_rate
from tests.real_speech import Dialog, dialog

pytestmark = pytest.mark.slow


async def _transcribed(client, talk: Dialog, **fields: str) -> dict:
    reply = await client.post(
        "/v1/stt/",
        files={"file": ("call.wav", talk.wav(), "audio/wav")},
        data={"model": "whisper", "timestamps": "true", **fields},
    )
    assert reply.status_code == 200, reply.text
    return reply.json()


def _turn_words(body: dict, start: float, end: float) -> list[dict]:
    return [word for word in body["words"] if start - 0.1 <= (word["start"] + word["end"]) / 2 <= end + 0.1]


def _turn_segments(body: dict, start: float, end: float) -> list[dict]:
    return [segment for segment in body["segments"] if start <= (segment["start"] + segment["end"]) / 2 <= end]


@pytest.mark.parametrize(
    ("voices", "band"),
    [(("allison", "carlo") * 3, "narrow"), (("carlo", "allison") * 3, "wide"), (("allison", "june") * 3, "narrow")],
    ids=["en+it-8kHz", "it+en-16kHz", "en+fr-8kHz"],
)
async def test_every_turn_has_its_words_in_its_own_language(client, voices, band) -> None:
    talk = dialog(voices, band)
    body = await _transcribed(client, talk)
    for turn in talk.turns:
        heard = " ".join(word["word"] for word in _turn_words(body, turn.start, turn.end))
        assert heard.strip(), f"no words for {turn.speaker}'s turn: {turn.text!r}"
        # Whisper base on a telephone line: most words right, in the turn's language.
        assert word_error_rate(turn.text, heard) <= 0.5, (turn.language, turn.text, heard)
        languages = {segment["language"] for segment in _turn_segments(body, turn.start, turn.end)}
        assert languages == {turn.language}, (turn.text, languages)
    assert body["language"] in {turn.language for turn in talk.turns}


async def test_a_given_language_is_kept_for_every_segment(client) -> None:
    body = await _transcribed(client, dialog(("allison", "carlo") * 2, "wide"), language="en")
    assert body["language"] == "en"
    assert {segment["language"] for segment in body["segments"]} == {"en"}


async def test_one_language_stays_one_language(client) -> None:
    talk = dialog(("carlo",) * 4, "narrow")
    body = await _transcribed(client, talk)
    assert body["language"] == "it"
    assert {segment["language"] for segment in body["segments"]} == {"it"}
    assert word_error_rate(" ".join(turn.text for turn in talk.turns), body["text"]) <= 0.35
