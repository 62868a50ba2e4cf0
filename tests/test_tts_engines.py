"""Every TTS engine called directly (no gRPC): real speech, checked by listening to it.

Each engine loads once (Kokoro once a session, in conftest). A case synthesizes one sentence, checks the audio
(sample rate, plausible length, not silence, speed 2.0 shorter than 1.0) and transcribes
it back with Whisper: tiny.en for English, multilingual base for the rest. The word error
rate bounds sit above what was measured on this machine (2 CPU cores), noted per case.
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

import numpy as np
import pytest

from services.stt.weights import install_whisper_base
from services.tts.registry import ESPEAK_LANGUAGES, build_registry
from services.tts.settings import EspeakSettings, FestivalSettings, TtsSettings, XttsSettings
from services.tts.synthesizer import SynthesisOptions, Synthesizer
from speechmesh.common.audio.pcm import Pcm
from speechmesh.common.audio.resample import PcmStreamResampler
from speechmesh.common.errors import InvalidArgument, ModelUnavailable
from speechmesh.common.models import ModelState, Tier
from tests.conftest import word_error_rate

EN = "The quick brown fox jumps over the lazy dog near the river bank."
FR = "Il fait très beau aujourd'hui dans le sud de la France."
ES = "Buenos días, me llamo Carlos y vivo en Madrid con mi familia."
IT = "Buongiorno, mi chiamo Giulia e abito a Roma da molti anni."
DE = "Ich möchte einen Kaffee und ein Stück Kuchen bestellen."
JA = "今日はとても良い天気ですね。"

# (engine, voice, language, text, error-rate bound); the measured rate in the comment.
# Japanese is scored per character (it has no spaces), everything else per word. Over
# 2-4 more sentences each, Kokoro's non-English reading depends on the voice: French mean
# 0.21 (jf_nezumi), 0.41 (jm_kumo), 0.59 (jf_alpha); Italian 0.07 (jm_kumo, jf_nezumi),
# 0.41 (jf_alpha); Spanish 0.24 (jm_kumo, jf_nezumi), 0.42 (jf_alpha). eSpeak is robotic:
# Whisper base mishears its German/French/Spanish often (means 0.2-0.6 over 3 sentences).
CASES = [
    ("kokoro", "jf_alpha", "en", EN, 0.1),  # 0.00
    ("kokoro", "jm_kumo", "en", EN, 0.1),  # 0.00
    ("kokoro", "jf_nezumi", "fr", FR, 0.25),  # 0.00
    ("kokoro", "jf_alpha", "es", ES, 0.25),  # 0.00
    ("kokoro", "jm_kumo", "it", IT, 0.25),  # 0.00
    ("kokoro", "jf_alpha", "ja", JA, 0.2),  # 0.00
    ("espeak", "espeak-en-us-m", "en", EN, 0.45),  # 0.31 ("brown fox jumps over" misheard)
    ("espeak", "espeak-en-us-f", "en", EN, 0.4),  # 0.23
    ("espeak", "espeak-de-f", "de", DE, 0.45),  # 0.22
    ("espeak", "espeak-fr-fr-m", "fr", FR, 0.5),  # 0.33
    ("festival", "festival-us-slt", "en", EN, 0.15),  # 0.00
    ("festival", "festival-kal", "en", EN, 0.15),  # 0.00
]


def units(text: str, language: str) -> list[str]:
    """Words, or for Japanese the characters that carry sound."""
    if language == "ja":
        return [c for c in text if c.isalnum()]
    return text.split()


def error_rate(reference: str, hypothesis: str, language: str) -> float:
    return word_error_rate(" ".join(units(reference, language)), " ".join(units(hypothesis, language)))


def speak(engine: Synthesizer, voice: str, language: str, text: str, speed: float = 1.0) -> Pcm:
    blocks = list(engine.synthesize(text, SynthesisOptions(voice, language, speed)))
    assert blocks, "no audio"
    assert len({block.sample_rate for block in blocks}) == 1
    return Pcm(np.concatenate([block.samples for block in blocks]), blocks[0].sample_rate)


def listen(model, pcm: Pcm, language: str) -> str:
    resampler = PcmStreamResampler(pcm.sample_rate, 1, 16000)
    audio = np.concatenate([resampler.feed(pcm.to_int16().tobytes()), resampler.flush()])
    segments, _ = model.transcribe(audio, language=language, beam_size=1, vad_filter=False)
    return " ".join(segment.text for segment in segments)


@pytest.fixture(scope="module")
def whisper_base():
    from faster_whisper import WhisperModel

    path = install_whisper_base(Path("var/models"))  # what `make models` does; a no-op when done
    return WhisperModel(str(path), device="cpu", compute_type="int8", cpu_threads=2)


@pytest.fixture(scope="module")
def espeak():
    from services.tts.engines.espeak import EspeakSynthesizer

    engine = EspeakSynthesizer(EspeakSettings())
    engine.load()
    return engine


@pytest.fixture(scope="module")
def festival():
    from services.tts.engines.festival import FestivalSynthesizer

    engine = FestivalSynthesizer(FestivalSettings())
    engine.load()
    return engine


@pytest.mark.slow
@pytest.mark.parametrize(("name", "voice", "language", "text", "bound"), CASES, ids=[f"{c[1]}-{c[2]}" for c in CASES])
def test_engine_speaks_intelligibly(request, whisper, whisper_base, name, voice, language, text, bound) -> None:
    engine = request.getfixturevalue(name)
    card = next(card for card in engine.voices() if card.id == voice)
    assert card.speaks(language)

    started = time.perf_counter()
    speech = speak(engine, voice, language, text)
    rtf = (time.perf_counter() - started) / speech.duration_seconds
    assert speech.sample_rate == card.sample_rate
    assert speech.samples.dtype == np.float32 and speech.samples.ndim == 1
    count = len(units(text, language))
    assert 0.1 * count < speech.duration_seconds < 0.8 * count, f"{speech.duration_seconds:.2f} s for {count} units"
    assert np.sqrt(np.mean(speech.samples**2)) > 0.02 and np.abs(speech.samples).max() > 0.1, "silence"

    fast = speak(engine, voice, language, text, speed=2.0)
    assert fast.duration_seconds < 0.7 * speech.duration_seconds

    heard = listen(whisper if language == "en" else whisper_base, speech, language)
    rate = error_rate(text, heard, language)
    print(f"{voice} {language}: rtf {rtf:.3f}, error rate {rate:.2f}: {heard!r}")
    assert rate <= bound, heard


@pytest.mark.slow
def test_kokoro_voices_and_languages(kokoro) -> None:
    cards = {card.id: card for card in kokoro.voices()}
    assert list(cards) == ["jf_alpha", "jf_gongitsune", "jf_nezumi", "jf_tebukuro", "jm_kumo"]
    assert (cards["jm_kumo"].name, cards["jm_kumo"].gender, cards["jf_alpha"].gender) == ("Kumo", "male", "female")
    for card in cards.values():
        assert (card.language, card.languages, card.sample_rate) == ("ja", ("ja", "en", "fr", "it", "es"), 24000)
    with pytest.raises(InvalidArgument, match="not 'pt'"):
        speak(kokoro, "jf_alpha", "pt", "Bom dia.")
    # Several sentences at once come back whole, longer than one of them.
    two = speak(kokoro, "jf_gongitsune", "en", "Good morning. See you tomorrow at noon.")
    one = speak(kokoro, "jf_gongitsune", "en", "Good morning.")
    assert two.duration_seconds > one.duration_seconds + 1.0


@pytest.mark.slow
def test_piper_without_noise_says_a_text_the_same_way_every_time(piper) -> None:
    """The tests' voice (conftest.TEST_PIPER): with the voice's own noise scales every reading
    differs, and tests fed by `speak()` flaked; without, the settings reach Piper and a text
    is the same audio every time (so the test speech can be kept between runs)."""
    first, second = (speak(piper, "en_US-joe-medium", "en", EN) for _ in range(2))
    assert first.duration_seconds > 2.0
    assert np.array_equal(first.samples, second.samples)


@pytest.mark.slow
def test_espeak_voices(espeak) -> None:
    cards = {card.id: card for card in espeak.voices()}
    for voice, language, locale, gender in [
        ("espeak-en-us-m", "en", "en-US", "male"),
        ("espeak-en-us-f", "en", "en-US", "female"),
        ("espeak-de-f", "de", "de", "female"),
        ("espeak-fr-fr-m", "fr", "fr-FR", "male"),
        ("espeak-cmn-f", "zh", "zh", "female"),
    ]:
        assert (cards[voice].language, cards[voice].locale, cards[voice].gender) == (language, locale, gender)
    assert len(cards) == 2 * len({card.locale for card in cards.values()}), "a male and a female voice per locale"
    assert {card.language for card in cards.values()} == set(ESPEAK_LANGUAGES), "the registry's card says the same"
    assert not any(voice.startswith(("espeak-piqd", "espeak-qya", "espeak-cmn-latn")) for voice in cards)
    # A language's default (first) voice is its main region.
    assert next(card.id for card in cards.values() if card.language == "en") == "espeak-en-us-m"
    # The text goes on stdin: a leading dash is read, not taken for an option.
    assert speak(espeak, "espeak-en-us-f", "en", "--help me").duration_seconds > 0.3
    male, female = (speak(espeak, f"espeak-fr-fr-{g}", "fr", "Bonjour.") for g in "mf")
    assert not np.array_equal(male.samples, female.samples), "the variant reaches espeak"


@pytest.mark.slow
def test_festival_voices_and_odd_text(festival) -> None:
    cards = {card.id: card for card in festival.voices()}
    assert {v: (c.gender, c.language) for v, c in cards.items()} == {
        "festival-us-slt": ("female", "en"),
        "festival-kal": ("male", "en"),
    }
    # Punctuation alone crashes the diphone voice inside Festival; it is silence instead.
    assert list(festival.synthesize("...", SynthesisOptions("festival-kal", "en", 1.0))) == []
    typographic = "It\u2019s a \u201ccaf\u00e9\u201d \u2014 42\u2026"  # curly quotes, accent, dash, ellipsis
    assert speak(festival, "festival-kal", "en", typographic).duration_seconds > 1.0


def test_xtts_is_unavailable_without_its_folder_or_package(tmp_path: Path, monkeypatch) -> None:
    from services.tts.engines.xtts import FILES, XttsSynthesizer

    with pytest.raises(ModelUnavailable, match="xtts-v2"):
        XttsSynthesizer(tmp_path, XttsSettings()).load()
    folder = tmp_path / "xtts-v2"
    folder.mkdir()
    for name in FILES:
        (folder / name).write_bytes(b"")  # the files exist; the package to read them does not
    # As on a server without coqui-tts, even when another test has imported it already.
    for name in [module for module in sys.modules if module.split(".")[0] == "TTS"] + ["TTS"]:
        monkeypatch.setitem(sys.modules, name, None)
    with pytest.raises(ModelUnavailable, match="coqui-tts"):
        XttsSynthesizer(tmp_path, XttsSettings()).load()


def test_registry_lists_every_model_before_loading(tmp_path: Path) -> None:
    registry = build_registry(TtsSettings(models_dir=tmp_path))
    cards = {card.id: card for card in registry.models()}
    assert {model: card.tier for model, card in cards.items()} == {
        "piper": Tier.FREE,
        "kokoro": Tier.STANDARD,
        "espeak": Tier.FREE,
        "festival": Tier.FREE,
        "xtts": Tier.PREMIUM,
        "vits": Tier.FREE,
        "melotts": Tier.FREE,
        "cosyvoice2": Tier.STANDARD,
        "tortoise": Tier.PREMIUM,
        "chatterbox": Tier.PREMIUM,
        "gpt-sovits": Tier.PREMIUM,
    }
    assert registry.default_model == "piper"
    assert cards["kokoro"].languages == ("en", "ja", "fr", "it", "es")
    assert not cards["xtts"].supports_cloning and "en" in cards["xtts"].languages
    for model in ("piper", "kokoro", "espeak", "festival", "xtts"):
        assert cards[model].state is ModelState.LOADING
    assert all(cards[m].state is ModelState.UNAVAILABLE for m in ("vits", "melotts", "tortoise", "gpt-sovits"))


@pytest.mark.slow
def test_registry_loads_the_engines_and_says_why_xtts_is_missing(tmp_path: Path) -> None:
    registry = build_registry(TtsSettings(models_dir=tmp_path, piper={"threads": 2}, kokoro={"threads": 2}))
    registry.load()
    cards = {card.id: card for card in registry.models()}
    for model in ("piper", "kokoro", "espeak", "festival"):
        assert cards[model].state is ModelState.READY, cards[model].unavailable_reason
    assert cards["xtts"].state is ModelState.UNAVAILABLE
    assert "xtts-v2" in cards["xtts"].unavailable_reason and str(tmp_path) not in cards["xtts"].unavailable_reason
    assert "No package" in cards["chatterbox"].unavailable_reason
    assert sorted(registry.engines()) == ["espeak", "festival", "kokoro", "piper"]
