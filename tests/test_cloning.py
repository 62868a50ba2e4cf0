"""WORLD-based voice adaptation (speechmesh/speakers/world.py): the signal processing on a made-up
vowel, then the real chain: Piper joe's speech moved toward Kokoro reference speakers,
judged by the d-vector embedder, by F0, and by Whisper tiny.en listening to the result."""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence

import numpy as np
import pytest

from speechmesh.common.audio.pcm import Pcm
from speechmesh.common.audio.resample import resample
from speechmesh.common.errors import InvalidArgument, InvalidAudio
from speechmesh.speakers import SAMPLE_RATE
from speechmesh.speakers import world as cloning
from speechmesh.speakers.dvector import DVectorEmbedder
from speechmesh.speakers.world import VoiceProfile, adapt, nearest_voice, profile, similarity
from tests.conftest import word_error_rate

# What joe says to be measured, and what he says to be adapted.
JOE_SAMPLE = (
    "On Saturday morning we walked to the market and bought fresh bread, cheese and a basket "
    "of ripe strawberries. Then we sat by the river until the sun went down."
)
TEXT = "Please call Stella and ask her to bring these things with her from the store."
# About 10 s from each reference speaker.
REFERENCE = (
    "The old lighthouse stood at the edge of the cliff for more than a century. Every night its keeper "
    "climbed the narrow stairs and lit the great lamp, so that ships could find their way home."
)


# ---------------------------------------------------------------- without models


class ConstantEmbedder:
    """Stands in for the d-vector model where only the WORLD side is under test."""

    def load(self) -> None:
        pass

    def embed(self, audio: np.ndarray) -> np.ndarray:
        return np.ones(4, np.float32) / 2

    def embed_many(self, clips: Sequence[np.ndarray]) -> np.ndarray:
        return np.stack([self.embed(clip) for clip in clips])


def vowel(f0: float, formants: Sequence[float], seconds: float, rate: int) -> Pcm:
    """A gliding pulse train through two-pole resonators: a crude but voiced 'aa'."""
    from scipy.signal import lfilter

    t = np.arange(round(seconds * rate)) / rate
    phase = np.cumsum(f0 * (1 + 0.1 * np.sin(2 * np.pi * 0.5 * t)) / rate)
    signal = (np.diff(np.floor(phase), prepend=0) > 0).astype(np.float64)
    for formant in formants:
        radius = np.exp(-np.pi * 100 / rate)
        signal = lfilter([1 - radius], [1, -2 * radius * np.cos(2 * np.pi * formant / rate), radius**2], signal)
    return Pcm((0.5 * signal / np.abs(signal).max()).astype(np.float32), rate)


def voiced_f0(pcm: Pcm, frames: np.ndarray | None = None) -> tuple[float, np.ndarray]:
    """F0 over the voiced frames (or the given ones): the geometric mean of the middle 80 %,
    since Harvest slips an octave up on a few frames of WORLD-resynthesized low voices
    while frame by frame the output follows the F0 it was given (median ratio 1.00); and
    the voiced mask."""
    f0, _ = cloning._f0(pcm.samples.astype(np.float64), pcm.sample_rate)
    mask = f0 > 0 if frames is None else frames[: len(f0)] & (f0[: len(frames)] > 0)
    log_f0 = np.sort(np.log(f0[mask]))
    cut = len(log_f0) // 10
    return float(np.exp(log_f0[cut : len(log_f0) - cut].mean())), f0 > 0


def test_similarity_is_cosine() -> None:
    assert similarity(np.array([1.0, 0.0]), np.array([3.0, 0.0])) == pytest.approx(1.0)
    assert similarity(np.array([1.0, 0.0]), np.array([0.0, 2.0])) == pytest.approx(0.0)
    assert similarity(np.array([1.0, 1.0]), np.array([-1.0, -1.0])) == pytest.approx(-1.0)


def test_nearest_voice_takes_the_most_similar_embedding() -> None:
    def at(vector: Sequence[float]) -> VoiceProfile:
        unit = np.asarray(vector, np.float32) / np.linalg.norm(vector)
        return VoiceProfile(unit, np.log(120), 0.2, np.zeros(513), np.array([500.0, 1500.0, 2500.0]), 3.0)

    voice, score = nearest_voice(at([1, 0.2, 0]), {"a": at([0, 1, 0]), "b": at([1, 0, 0]), "c": at([0, 0, 1])})

    assert voice == "b"
    assert score == pytest.approx(1 / np.sqrt(1.04), abs=1e-6)
    with pytest.raises(InvalidArgument):
        nearest_voice(at([1, 0, 0]), {})


def test_profile_measures_pitch_and_formants_of_a_vowel() -> None:
    measured = profile(vowel(120, (700, 1200, 2500), 3.0, 22050), ConstantEmbedder())

    assert measured.f0_hz == pytest.approx(120, rel=0.05)
    assert measured.voiced_seconds > 2.5
    np.testing.assert_allclose(measured.formants_hz, [700, 1200, 2500], rtol=0.1)


def test_adapt_maps_f0_and_scales_formants_at_any_strength() -> None:
    source = profile(vowel(120, (700, 1200, 2500), 3.0, 16000), ConstantEmbedder())
    # A speaker with a 20 % shorter vocal tract: formants and average envelope 1.2 times higher.
    grid = np.linspace(0, SAMPLE_RATE / 2, len(source.envelope))
    envelope = np.interp(grid / 1.2, grid, source.envelope)
    target = VoiceProfile(
        source.embedding, float(np.log(200)), source.log_f0_std, envelope, source.formants_hz * 1.2, 5
    )
    speech = vowel(120, (700, 1200, 2500), 2.0, 24000)

    full = adapt(speech, source, target)
    half = adapt(speech, source, target, strength=0.5)
    none = adapt(speech, source, target, strength=0.0)

    assert cloning.warp_factor(source, target) == pytest.approx(1.2)
    assert voiced_f0(full)[0] == pytest.approx(200, rel=0.05)
    assert voiced_f0(half)[0] == pytest.approx(np.sqrt(120 * 200), rel=0.05)
    assert voiced_f0(none)[0] == pytest.approx(120, rel=0.05)
    moved = profile(full, ConstantEmbedder())
    assert moved.formants_hz[2] == pytest.approx(2500 * 1.2, rel=0.08)
    for out in (full, half, none):
        assert out.sample_rate == 24000 and out.frames == speech.frames
    with pytest.raises(InvalidArgument):
        adapt(speech, source, target, strength=1.5)


@pytest.mark.parametrize(
    "samples",
    [
        np.zeros(16000 * 6, np.float32),
        (0.1 * np.random.default_rng(0).standard_normal(16000 * 4)).astype(np.float32),
        np.zeros(100, np.float32),
    ],
    ids=["silence", "white-noise", "too-short"],
)
def test_a_reference_without_voiced_speech_is_invalid_audio(samples: np.ndarray) -> None:
    with pytest.raises(InvalidAudio):
        profile(Pcm(samples, 16000), ConstantEmbedder())


def test_the_voiced_share_of_a_refused_reference_is_at_most_all_of_its_sound() -> None:
    # 1 s of vowel, then 0.8 s of one 50 dB quieter: Harvest voices both, but only the loud
    # one counts as sound (within 40 dB of the loudest frame); counted apart, the voiced
    # frames read as 181 % of the sounding ones.
    loud = vowel(120, (700, 1200, 2500), 1.0, 16000).samples
    quiet = 10 ** (-50 / 20) * vowel(150, (600, 1100, 2400), 0.8, 16000).samples

    with pytest.raises(InvalidAudio, match="of voiced speech") as refused:
        profile(Pcm(np.concatenate([loud, quiet]), 16000), ConstantEmbedder())

    share = re.search(r"\((\d+)% of its sound\)", str(refused.value))
    assert share is not None and 90 <= int(share[1]) <= 100, refused.value


# ---------------------------------------------------------------- real voices


@pytest.fixture(scope="module")
def joe(speak: Callable[[str], Pcm], embedder: DVectorEmbedder) -> tuple[VoiceProfile, Pcm]:
    """Piper joe, the built-in voice: his profile and his speech of TEXT (22.05 kHz)."""
    return profile(speak(JOE_SAMPLE), embedder), speak(TEXT)


@pytest.fixture(scope="module")
def references(voices, embedder: DVectorEmbedder) -> dict[str, tuple[np.ndarray, VoiceProfile]]:
    """Kokoro speakers as references: their 16 kHz speech of REFERENCE and its profile."""
    result = {}
    for voice in ("jf_alpha", "jf_nezumi", "jm_kumo"):
        audio = voices(voice, REFERENCE)
        result[voice] = audio, profile(Pcm(audio, SAMPLE_RATE), embedder)
    return result


@pytest.fixture(scope="module")
def adapted(joe, references) -> dict[str, Pcm]:
    source, speech = joe
    return {voice: adapt(speech, source, reference) for voice, (_, reference) in references.items()}


def embed(embedder: DVectorEmbedder, pcm: Pcm) -> np.ndarray:
    return embedder.embed(resample(pcm, SAMPLE_RATE).samples)


@pytest.mark.slow
@pytest.mark.parametrize("voice", ["jf_alpha", "jf_nezumi", "jm_kumo"])
def test_adapted_speech_is_closer_to_the_reference_speaker(voice, embedder, joe, references, adapted) -> None:
    source, speech = joe
    reference = references[voice][1]

    before = similarity(embed(embedder, speech), reference.embedding)
    resynthesized = similarity(embed(embedder, adapt(speech, source, reference, strength=0.0)), reference.embedding)
    after = similarity(embed(embedder, adapted[voice]), reference.embedding)

    # Measured, d-vector cosine to the reference (joe as synthesized / WORLD resynthesis
    # alone / adapted): jf_alpha 0.02 / 0.09 / 0.56, jf_nezumi 0.12 / 0.16 / 0.59,
    # jm_kumo 0.30 / 0.48 / 0.51 (a male reference: the vocoder alone does most of it).
    assert after - before >= 0.15, (before, resynthesized, after)
    assert after >= 0.4, (before, resynthesized, after)
    if voice.startswith("jf_"):
        assert after - resynthesized >= 0.25, (before, resynthesized, after)


@pytest.mark.slow
@pytest.mark.parametrize("voice", ["jf_alpha", "jf_nezumi", "jm_kumo"])
def test_adapted_pitch_moves_to_the_reference(voice, joe, references, adapted) -> None:
    _, speech = joe
    reference = references[voice][1]
    joe_hz, speaking = voiced_f0(speech)

    # Over the frames where joe's speech is voiced: unvoiced ones stay noise.
    adapted_hz, _ = voiced_f0(adapted[voice], speaking)

    # Measured over 40 runs for jm_kumo (100 Hz): 97-120 Hz, 106.5 on average. adapt() sets
    # the reference's mean, but 15-40 % of joe's voiced frames, mostly the lowest, read as
    # unvoiced in the output, so what is left reads high.
    assert adapted_hz == pytest.approx(reference.f0_hz, rel=0.25), (joe_hz, adapted_hz, reference.f0_hz)
    # Piper with its noise varied joe's pitch from run to run (110-156 Hz on this text): near
    # a male reference (jm_kumo, 100 Hz), "closer than joe" was within the noise. The tests'
    # voice (conftest.TEST_PIPER) reads it at 134 Hz, so the check runs for all three.
    if abs(np.log(joe_hz / reference.f0_hz)) > np.log(1.25):
        assert abs(np.log(adapted_hz / reference.f0_hz)) < abs(np.log(joe_hz / reference.f0_hz))


@pytest.mark.slow
@pytest.mark.parametrize("voice", ["jf_alpha", "jm_kumo"])
def test_adapted_speech_is_still_intelligible(voice, whisper, adapted) -> None:
    pcm = adapted[voice]
    segments, _ = whisper.transcribe(resample(pcm, 16000).samples, language="en", beam_size=1, vad_filter=False)
    heard = " ".join(segment.text for segment in segments)

    assert word_error_rate(TEXT, heard) <= 0.35, heard


@pytest.mark.slow
def test_adapted_speech_keeps_length_and_rate_without_clipping(joe, adapted) -> None:
    _, speech = joe
    for pcm in adapted.values():
        assert pcm.sample_rate == speech.sample_rate == 22050
        assert pcm.frames == speech.frames
        assert pcm.samples.dtype == np.float32
        assert np.all(np.isfinite(pcm.samples))
        assert 0.05 < np.max(np.abs(pcm.samples)) <= 0.98


@pytest.mark.slow
def test_nearest_voice_finds_the_speaker_of_other_audio(joe, references, embedder) -> None:
    """Candidates are measured from each speaker's first half of speech, the references
    from the second half: different words, same voices."""
    halves = {voice: np.array_split(audio, 2) for voice, (audio, _) in references.items()}
    candidates = {voice: profile(Pcm(first, SAMPLE_RATE), embedder) for voice, (first, _) in halves.items()}
    candidates["joe"] = joe[0]

    for voice, (_, second) in halves.items():
        chosen, score = nearest_voice(profile(Pcm(second, SAMPLE_RATE), embedder), candidates)
        assert chosen == voice
        assert score > 0.8


def test_world_adapt_without_a_base_voice_says_why(speak: Callable[[str], Pcm]) -> None:
    from services.tts.registry import build_engines
    from services.tts.settings import TtsSettings
    from speechmesh.common.errors import ModelUnavailable
    from speechmesh.speakers.world import PROFILE_TEXT

    engines = build_engines(TtsSettings(engines=["espeak"], clone_base_models=["piper"]))
    engines.load()
    _, cloner = engines.cloner("")
    # 13 s: two sentences of Piper's varying speech held 1.8-3 s of voiced frames, too near
    # the 2 s floor for the reference to pass every time.
    reference = speak(PROFILE_TEXT)
    with pytest.raises(ModelUnavailable, match="piper"):
        cloner.clone(reference, "Hello there.", "en", 1.0)
