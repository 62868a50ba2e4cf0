"""Long real speech through the STT service loses no sentence.

Recordings of people, not TTS: Asterisk's Canadian French telephone prompts (8 kHz, Debian's
asterisk-core-sounds-fr-wav; `make test` installs it) and LibriVox English
(pocketsphinx-testdata). The French input is the one faster-whisper's sequential decoder
dropped the first three sentences of (its beam search skipped them with a timestamp);
services/stt/engines/whisper_chunks.py says why the batched chunks keep them.
"""

from __future__ import annotations

import itertools
from collections.abc import AsyncIterator, Sequence
from pathlib import Path

import grpc
import numpy as np
import pytest

from speechmesh.common.audio.encode import encode_audio
from speechmesh.common.audio.formats import output_format
from speechmesh.common.audio.pcm import Pcm
from speechmesh.common.chunks import chunked
from speechmesh.v1 import stt_pb2, stt_pb2_grpc
from tests.conftest import librivox

pytestmark = pytest.mark.slow

ASTERISK_FR = Path("/usr/share/asterisk/sounds/fr_CA_f_June")
# What the speaker says in conf-adminmenu-menu8 (22.6 s) and conf-usermenu (17.5 s): the
# package's transcripts, with their typos ("appuyez" for "appuyer", "ce tte") mended.
ADMIN_MENU = (
    "Pour énumérer tous les usagers présents dans la conférence, veuillez appuyer sur 1.",
    "Pour éjecter tous les usagers réguliers, appuyez sur 2.",
    "Pour activer ou désactiver le mode sourdine de tous les usagers réguliers, appuyez sur 3.",
    "Pour enregistrer cette conférence, appuyez sur 4.",
    "Pour quitter ce menu et retourner à la conférence, appuyez sur 8.",
)
USER_MENU = (
    "Pour activer ou désactiver le mode sourdine, veuillez appuyer sur 1.",
    "Pour réduire ou augmenter le volume de la conférence, appuyez sur 4 ou 6.",
    "Pour réduire ou augmenter votre volume, appuyez sur 7 ou 9.",
    "Pour quitter, appuyez sur 8.",
)
# Whisper writes a spoken digit either way ("appuyez sur 2" or "sur deux").
DIGITS = {
    "fr": ("zéro", "un", "deux", "trois", "quatre", "cinq", "six", "sept", "huit", "neuf"),
    "en": ("zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine"),
}
# A sentence counts as heard when this share of its words is found, in order.
HEARD = 0.6


def asterisk(name: str) -> np.ndarray:
    """The prompt at 16 kHz as faster-whisper's own decoder resamples it (libav's default
    resampler): on these samples its sequential decoder drops sentences; on ours, by chance,
    it does not."""
    from faster_whisper.audio import decode_audio as library_decode

    samples: np.ndarray = library_decode(str(ASTERISK_FR / f"{name}.wav"))
    return samples


def silence(seconds: float) -> np.ndarray:
    return np.zeros(round(seconds * 16000), np.float32)


def normalized(text: str, language: str) -> list[str]:
    words = "".join(c.lower() if c.isalnum() else " " for c in text).split()
    return [DIGITS[language][int(word)] if len(word) == 1 and word.isdigit() else word for word in words]


def heard(sentences: Sequence[str], text: str, language: str) -> list[float]:
    """Per sentence, the share of its words in `text`, matched in order: one longest common
    subsequence over the whole text, so each word heard is credited once, in its place."""
    reference = [(i, word) for i, sentence in enumerate(sentences) for word in normalized(sentence, language)]
    hypothesis = normalized(text, language)
    table = np.zeros((len(reference) + 1, len(hypothesis) + 1), dtype=int)
    for a, (_, word) in enumerate(reference):
        for b, other in enumerate(hypothesis):
            table[a + 1, b + 1] = table[a, b] + 1 if word == other else max(table[a, b + 1], table[a + 1, b])
    found = [0] * len(sentences)
    a, b = len(reference), len(hypothesis)
    while a and b:
        if reference[a - 1][1] == hypothesis[b - 1]:
            found[reference[a - 1][0]] += 1
            a, b = a - 1, b - 1
        elif table[a - 1, b] >= table[a, b - 1]:
            a -= 1
        else:
            b -= 1
    return [found[i] / len(normalized(sentence, language)) for i, sentence in enumerate(sentences)]


async def recognize(channel: grpc.aio.Channel, audio: np.ndarray, **config) -> stt_pb2.RecognizeResponse:
    data = encode_audio(Pcm(audio, 16000), output_format("wav"))

    async def messages() -> AsyncIterator[stt_pb2.RecognizeRequest]:
        yield stt_pb2.RecognizeRequest(config=stt_pb2.RecognitionConfig(**config))
        for chunk in chunked(data):
            yield stt_pb2.RecognizeRequest(audio_content=chunk)

    return await stt_pb2_grpc.SpeechToTextStub(channel).Recognize(messages())


def test_sentences_are_matched_in_order() -> None:
    sentences = ("Pour quitter, appuyez sur 8.", "Pour éjecter, appuyez sur deux.")
    assert heard(sentences, "pour quitter appuyez sur huit. Pour éjecter appuyez sur 2", "fr") == [1.0, 1.0]
    # A sentence left out scores nothing, though most of its words are in the other one.
    assert heard(sentences, "pour éjecter appuyez sur 2", "fr") == [0.0, 1.0]
    assert heard(sentences, "", "fr") == [0.0, 0.0]


@pytest.mark.parametrize("vad", [True, False])
async def test_french_telephone_speech_keeps_every_sentence(stt_channel, vad: bool) -> None:
    # conf-adminmenu-menu8 (22.6 s, five sentences): the sequential decoder
    # (decoding=sequential) returned only its last two sentences, with VAD on; 43 s of it and
    # conf-usermenu 3 s apart, the same without VAD.
    prompt = asterisk("conf-adminmenu-menu8")
    audio = prompt if vad else np.concatenate([prompt, silence(3.0), asterisk("conf-usermenu")])
    reply = await recognize(stt_channel, audio, model="whisper", vad_filter=vad)
    coverage = heard(ADMIN_MENU + (() if vad else USER_MENU), reply.text, "fr")
    assert min(coverage) >= HEARD, (coverage, reply.text)
    assert reply.language == "fr"


async def test_english_reading_past_one_window_keeps_every_sentence(stt_channel) -> None:
    recordings = [librivox(clip) for clip in ("0870", "0880", "0890", "0920", "0930")]
    # 31 s: five sentences 1.5 s apart, past Whisper's 30 s window.
    audio = np.concatenate([part for r in recordings for part in (r.pcm.samples, silence(1.5))])
    reply = await recognize(stt_channel, audio, model="whisper", word_timestamps=True)
    coverage = heard([r.text for r in recordings], reply.text, "en")
    assert min(coverage) >= HEARD, (coverage, reply.text)
    words = [word for segment in reply.segments for word in segment.words]
    for before, after in itertools.pairwise(words):
        assert before.start_ms <= before.end_ms <= after.start_ms <= after.end_ms
    # The last sentence's words are placed where it is said, past the first window.
    assert 28_000 <= words[-1].end_ms <= len(audio) / 16
