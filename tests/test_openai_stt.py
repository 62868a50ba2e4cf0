"""The official `openai` SDK, unchanged, pointed at the gateway: transcriptions in every
response format, word and segment timestamps, translations, and its error types."""

from __future__ import annotations

import re

import openai
import pytest

from speechmesh.common.audio.encode import encode_audio
from speechmesh.common.audio.formats import FORMATS
from speechmesh.common.audio.pcm import Pcm
from tests.conftest import word_error_rate, words

pytestmark = pytest.mark.slow

SENTENCE = "A small boat drifted slowly across the quiet lake at dawn."


@pytest.fixture(scope="module")
def speech(speak) -> bytes:
    return encode_audio(speak(SENTENCE), FORMATS["mp3"])


@pytest.fixture
async def sdk(gateway):
    async with openai.AsyncOpenAI(
        base_url=f"{gateway.base_url}/v1", api_key=await gateway.key(), max_retries=0
    ) as client:
        yield client


async def test_json_is_the_default(sdk, speech):
    result = await sdk.audio.transcriptions.create(model="whisper-1", file=("speech.mp3", speech))
    assert word_error_rate(SENTENCE, result.text) <= 0.25, result.text


async def test_verbose_json_with_words_and_segments(sdk, speech):
    result = await sdk.audio.transcriptions.create(
        model="whisper-1",
        file=("speech.mp3", speech),
        response_format="verbose_json",
        timestamp_granularities=["word", "segment"],
        language="en",
        temperature=0.0,
    )
    assert result.language == "english" and result.duration > 3
    assert word_error_rate(SENTENCE, " ".join(word.word for word in result.words)) <= 0.25
    assert all(word.start <= word.end <= result.duration + 0.02 for word in result.words)
    segment = result.segments[0]
    assert segment.id == 0 and segment.tokens and segment.avg_logprob < 0 and 0 <= segment.no_speech_prob <= 1


async def test_verbose_json_has_no_words_unless_asked(sdk, speech):
    result = await sdk.audio.transcriptions.create(
        model="whisper-1", file=("speech.mp3", speech), response_format="verbose_json"
    )
    assert result.segments and not getattr(result, "words", None)


@pytest.mark.parametrize("response_format", ["text", "srt", "vtt"])
async def test_text_formats(sdk, speech, response_format):
    result = await sdk.audio.transcriptions.create(
        model="whisper-1", file=("speech.mp3", speech), response_format=response_format
    )
    assert isinstance(result, str)
    cue = r"\d\d:\d\d:\d\d[,.]\d\d\d --> \d\d:\d\d:\d\d[,.]\d\d\d"
    if response_format == "srt":
        assert re.match(rf"1\n{cue.replace('[,.]', ',')}\n", result)
    elif response_format == "vtt":
        assert result.startswith("WEBVTT\n") and re.search(cue.replace("[,.]", r"\."), result)
    text = re.sub(rf"WEBVTT|^\d+$|{cue}", " ", result, flags=re.MULTILINE)
    assert word_error_rate(SENTENCE, text) <= 0.25


async def test_prompt_and_any_server_model_id(sdk, speech):
    result = await sdk.audio.transcriptions.create(
        model="faster-whisper", file=("speech.mp3", speech), prompt="A sentence about a boat on a lake."
    )
    assert word_error_rate(SENTENCE, result.text) <= 0.25


# SDK 3 marks audio.translations deprecated; clients still call it, so it must work.
@pytest.mark.filterwarnings("ignore::DeprecationWarning")
async def test_translation_of_english_stays_english(sdk, speech):
    result = await sdk.audio.translations.create(model="whisper-1", file=("speech.mp3", speech))
    assert word_error_rate(SENTENCE, result.text) <= 0.35


@pytest.mark.filterwarnings("ignore::DeprecationWarning")
async def test_translation_of_spanish_speech_into_english(sdk, voices):
    spanish = "El tren sale de la estación a las ocho de la mañana todos los días."
    speech = encode_audio(Pcm(voices("jf_alpha", spanish, lang="es"), 16000), FORMATS["mp3"])
    result = await sdk.audio.translations.create(
        model="whisper-1", file=("tren.mp3", speech), response_format="verbose_json"
    )
    assert result.language == "spanish"
    english = set(words(result.text))
    assert {"train", "station", "morning"} <= english, result.text
    transcribed = await sdk.audio.transcriptions.create(model="whisper-1", file=("tren.mp3", speech))
    assert "estación" in transcribed.text.lower()


async def test_errors_arrive_as_sdk_exceptions(sdk, speech, gateway):
    with pytest.raises(openai.NotFoundError):
        await sdk.audio.transcriptions.create(model="gpt-99-transcribe", file=("speech.mp3", speech))
    with pytest.raises(openai.BadRequestError, match="not audio"):
        await sdk.audio.transcriptions.create(model="whisper-1", file=("notes.txt", b"just some text" * 50))
    with pytest.raises(openai.BadRequestError, match="response_format"):
        await sdk.audio.transcriptions.create(
            model="whisper-1",
            file=("speech.mp3", speech),
            response_format="docx",  # type: ignore[arg-type]
        )
    async with openai.AsyncOpenAI(base_url=f"{gateway.base_url}/v1", api_key="sk-tts-wrong", max_retries=0) as bad:
        with pytest.raises(openai.AuthenticationError):
            await bad.audio.transcriptions.create(model="whisper-1", file=("speech.mp3", speech))
