"""Music separation engines: the REPET-SIM + HPSS separator on a song whose parts are known,
and the Demucs engine's loading and separation code on tiny random networks.

The song is what REPET assumes: 8 s at 120 bpm (44.1 kHz stereo) of a one-bar loop -
chords panned left, a bass line, kick, snare and hi-hat panned apart - with a lead melody
that never repeats, panned left, and over it a centred voice: real speech from the tests'
Piper voice. What a stem holds of a part is the part's projection on it over its
projection on the mixture: shares that add up to one over the stems.

No registry reachable here ships Demucs weights: tiny randomly initialised HTDemucs
networks are saved in the layouts the engine reads and loaded through it, with the network
switched off. Their output is noise: only shapes, names and how sources become stems are
checked.
"""

from __future__ import annotations

import contextlib
import json
import socket
from collections.abc import Callable, Iterator
from pathlib import Path

import numpy as np
import pytest
from scipy import signal

from services.audio.engines.demucs import DemucsSeparator
from services.audio.engines.repet import DspSeparator
from speechmesh.common.audio.pcm import Pcm
from speechmesh.common.errors import ModelUnavailable

RATE = 44100
SECONDS = 8.0
BAR = 2.0  # 4/4 at 120 bpm
TEXT = (
    "The quick brown fox jumps over the lazy dog. Then it sings a little song about the summer rain, "
    "and the river runs along."
)
SOURCES = ("drums", "bass", "other", "vocals")
SIX_SOURCES = ("drums", "bass", "other", "vocals", "guitar", "piano")


# ---------------------------------------------------------------- the song


def _note(freq: float, seconds: float, harmonics: int, decay: float | None = None) -> np.ndarray:
    t = np.arange(int(seconds * RATE)) / RATE
    wave = sum(np.sin(2 * np.pi * freq * k * t) / k for k in range(1, harmonics + 1))
    envelope = np.minimum(1, t / 0.01) * np.minimum(1, (seconds - t) / 0.02)
    if decay:
        envelope = envelope * np.exp(-t / decay)
    return np.asarray(wave * envelope, np.float32)


def _place(track: np.ndarray, sound: np.ndarray, at: float) -> None:
    start = int(at * RATE)
    end = min(len(track), start + len(sound))
    track[start:end] += sound[: end - start]


def _bar(hits: list[tuple[np.ndarray, float]]) -> np.ndarray:
    bar = np.zeros(int(BAR * RATE), np.float32)
    for sound, at in hits:
        _place(bar, sound, at)
    return bar


def _loop(bar: np.ndarray) -> np.ndarray:
    return np.tile(bar, int(np.ceil(SECONDS / BAR)))[: int(SECONDS * RATE)]


def _pan(mono: np.ndarray, left: float, right: float) -> np.ndarray:
    return np.stack([mono * left, mono * right], axis=1).astype(np.float32)


def _drums(rng: np.random.Generator) -> dict[str, np.ndarray]:
    t = np.arange(int(0.3 * RATE)) / RATE
    kick = np.sin(2 * np.pi * (45 * t + 105 * 0.03 * (1 - np.exp(-t / 0.03)))) * np.exp(-t / 0.06)
    b, a = signal.butter(2, [1000, 5000], "bandpass", fs=RATE)
    snare = (1.5 * signal.lfilter(b, a, rng.standard_normal(len(t))) + 0.5 * np.sin(2 * np.pi * 200 * t)) * np.exp(
        -t / 0.08
    )
    b, a = signal.butter(4, 7000, "highpass", fs=RATE)
    hat = 0.5 * signal.lfilter(b, a, rng.standard_normal(len(t))) * np.exp(-t / 0.025)
    return {
        "kick": _pan(_loop(_bar([(kick, 0.0), (kick, 1.0)])), 0.7, 0.7),
        "snare": _pan(_loop(_bar([(snare, 0.5), (snare, 1.5)])), 0.5, 0.85),
        "hat": _pan(_loop(_bar([(hat, i * 0.25) for i in range(8)])), 0.3, 0.95),
    }


def _harmony() -> dict[str, np.ndarray]:
    chords = [
        (0.3 * _note(f, 1.0, 4), i * 1.0)
        for i, chord in enumerate([(261.6, 329.6, 392.0), (220, 261.6, 329.6)])
        for f in chord
    ]
    bass = [(_note(f, 0.5, 3, decay=0.4), beat * 0.5) for beat, f in enumerate([65.4, 65.4, 55.0, 55.0])]
    lead = np.zeros(int(SECONDS * RATE), np.float32)
    for i, f in enumerate([392.0, 440.0, 493.9, 587.3, 523.3, 440.0, 392.0, 349.2, 329.6, 293.7, 329.6, 392.0]):
        _place(lead, 0.25 * _note(f, 0.6, 5, decay=0.5), 0.3 + i * 0.63)
    return {
        "chords": _pan(_loop(_bar(chords)), 0.9, 0.4),
        "bass": _pan(_loop(_bar(bass)), 0.6, 0.8),
        "lead": _pan(lead, 1.0, 0.15),
    }


def _rms(x: np.ndarray) -> float:
    return float(np.sqrt(np.mean(np.square(x))))


@pytest.fixture(scope="module")
def song(speak: Callable[[str], Pcm]) -> dict[str, np.ndarray]:
    """Every part (frames, 2) and their sum, "mix": the voice as loud as the band."""
    speech = speak(TEXT)
    voice = np.zeros(int(SECONDS * RATE), np.float32)
    _place(voice, signal.resample_poly(speech.samples, RATE, speech.sample_rate).astype(np.float32), 0.5)
    parts = {**_drums(np.random.default_rng(0)), **_harmony()}
    parts["drums"] = parts["kick"] + parts["snare"] + parts["hat"]
    band = parts["drums"] + parts["bass"] + parts["chords"] + parts["lead"]
    parts["vocals"] = _pan(voice * _rms(band) / _rms(voice), 1.0, 1.0)
    parts["accompaniment"] = band
    parts["mix"] = band + parts["vocals"]
    scale = 0.9 / float(np.abs(parts["mix"]).max())
    return {name: part * scale for name, part in parts.items()}


def si_sdr(reference: np.ndarray, estimate: np.ndarray) -> float:
    reference, estimate = reference.astype(np.float64).ravel(), estimate.astype(np.float64).ravel()
    target = (estimate @ reference) / (reference @ reference) * reference
    return float(10 * np.log10((target @ target) / np.sum((estimate - target) ** 2)))


def share(stem: np.ndarray, part: np.ndarray, mix: np.ndarray) -> float:
    return float(np.sum(stem * part) / np.sum(mix * part))


# ---------------------------------------------------------------- REPET-SIM + HPSS


@pytest.fixture(scope="module")
def dsp() -> DspSeparator:
    separator = DspSeparator()
    separator.load()
    return separator


@pytest.fixture(scope="module")
def two_stems(dsp: DspSeparator, song: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    return dsp.separate(song["mix"], 2)


@pytest.fixture(scope="module")
def four_stems(dsp: DspSeparator, song: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    return dsp.separate(song["mix"], 4)


@pytest.fixture(scope="module")
def mono_stems(dsp: DspSeparator, song: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    return dsp.separate(song["mix"].mean(axis=1), 2)


@pytest.mark.slow
def test_vocals_stem_is_closer_to_the_voice_than_the_mix(song, two_stems) -> None:
    # Measured: the mix scores -0.06 dB as the voice and as the band; the stems 8.9 and 8.6 dB.
    for name in ("vocals", "accompaniment"):
        gain = si_sdr(song[name], two_stems[name]) - si_sdr(song[name], song["mix"])
        assert gain > 6.0, f"{name}: SI-SDR only {gain:.1f} dB above the mix's"


@pytest.mark.slow
def test_stems_add_up_to_the_mix(song, two_stems, four_stems, mono_stems) -> None:
    mix = song["mix"]
    for stems, names, shape in (
        (two_stems, ["vocals", "accompaniment"], mix.shape),
        (four_stems, ["vocals", "drums", "bass", "other"], mix.shape),
        (mono_stems, ["vocals", "accompaniment"], mix.shape[:1]),
    ):
        assert list(stems) == names
        assert all(stem.shape == shape and stem.dtype == np.float32 for stem in stems.values())
        np.testing.assert_allclose(sum(stems.values()), mix if len(shape) == 2 else mix.mean(axis=1), atol=1e-5)


@pytest.mark.slow
def test_four_stems_split_the_band_into_drums_bass_and_other(song, two_stems, four_stems) -> None:
    np.testing.assert_array_equal(four_stems["vocals"], two_stems["vocals"])
    # Measured: drums 0.70 in the drums stem (the kick's low tail is harmonic to HPSS: 0.18
    # in bass), bass 0.87 in bass, chords 0.82 in other.
    shares = {
        name: share(four_stems[stem], song[name], song["mix"])
        for name, stem in (("drums", "drums"), ("bass", "bass"), ("chords", "other"))
    }
    assert shares["drums"] > 0.6 and shares["bass"] > 0.75 and shares["chords"] > 0.7, shares


@pytest.mark.slow
def test_mono_input_is_separated_without_the_centre(song, two_stems, mono_stems) -> None:
    mono = {name: part.mean(axis=1) for name, part in song.items()}
    # Measured: 8.4 dB above the mix's.
    assert si_sdr(mono["vocals"], mono_stems["vocals"]) - si_sdr(mono["vocals"], mono["mix"]) > 6.0
    # The lead, panned left, does not repeat: only the stereo centre keeps it out of the vocals
    # (measured: 0.23 of it there in stereo, 0.47 in mono).
    stereo_lead = share(two_stems["vocals"], song["lead"], song["mix"])
    assert stereo_lead < share(mono_stems["vocals"], mono["lead"], mono["mix"]) - 0.15


@pytest.mark.parametrize("frames", [1000, 22050])
def test_short_or_silent_input_keeps_its_shape(dsp: DspSeparator, frames: int) -> None:
    noise = 0.1 * np.random.default_rng(1).standard_normal((frames, 1)).astype(np.float32)
    for audio in (noise, np.zeros_like(noise)):
        stems = dsp.separate(audio, 4)
        assert all(stem.shape == (frames, 1) and np.isfinite(stem).all() for stem in stems.values())
        np.testing.assert_allclose(sum(stems.values()), audio, atol=1e-6)


def test_percussive_mask_is_librosas_hpss(dsp: DspSeparator) -> None:
    import librosa

    magnitude = np.abs(np.random.default_rng(2).standard_normal((300, 80))).astype(np.float32)
    _, expected = librosa.decompose.hpss(magnitude, mask=True)
    np.testing.assert_allclose(dsp._percussive_mask(magnitude), expected, atol=1e-6)


def test_recurrence_is_librosas_nearest_neighbours() -> None:
    import librosa

    from services.audio.engines.repet import _recurrence

    features = np.abs(np.random.default_rng(3).standard_normal((200, 300))).astype(np.float32)
    expected = librosa.segment.recurrence_matrix(
        features, k=10, width=20, metric="cosine", sparse=True, mode="distance"
    )
    np.testing.assert_array_equal(_recurrence(features, 20, 10).toarray() != 0, expected.toarray() != 0)


# ---------------------------------------------------------------- Demucs


def _tiny_htdemucs(sources: tuple[str, ...]):
    import torch
    from demucs.htdemucs import HTDemucs

    torch.manual_seed(0)
    # 2 s segments: the 3 s test input is cut and cross-faded as a long input would be.
    return HTDemucs(sources=list(sources), channels=4, dconv_comp=4, t_layers=1, t_heads=1, segment=2).eval()


def save_release(folder: Path, name: str, sources: tuple[str, ...]) -> None:
    """As demucs's release: `<name>.yaml` naming a checkpoint saved `<sig>-<sha256[:8]>.th`."""
    from demucs.states import get_state, save_with_checksum

    model = _tiny_htdemucs(sources)
    args, kwargs = model._init_args_kwargs
    package = {"klass": type(model), "args": args, "kwargs": kwargs, "state": get_state(model, None, half=True)}
    save_with_checksum(package, folder / "0123abcd.th")
    (folder / f"{name}.yaml").write_text("models: ['0123abcd']\n")


def save_single(folder: Path, name: str, sources: tuple[str, ...]) -> None:
    """One release checkpoint renamed `<name>.th`."""
    import torch
    from demucs.states import get_state

    model = _tiny_htdemucs(sources)
    args, kwargs = model._init_args_kwargs
    torch.save(
        {"klass": type(model), "args": args, "kwargs": kwargs, "state": get_state(model, None)}, folder / f"{name}.th"
    )


def save_huggingface(folder: Path, name: str, sources: tuple[str, ...]) -> None:
    """As the model's HuggingFace repository (demucs's tools/export_hf.py)."""
    from safetensors.torch import save_file

    model = _tiny_htdemucs(sources)
    args, kwargs = model._init_args_kwargs
    metadata = {"klass": "demucs.htdemucs.HTDemucs", "args": json.dumps(args), "kwargs": json.dumps(kwargs)}
    save_file(
        {key: value.contiguous() for key, value in model.state_dict().items()},
        folder / "4567cdef.safetensors",
        metadata,
    )
    (folder / f"{name}.yaml").write_text("models: ['4567cdef']\n")


@contextlib.contextmanager
def offline() -> Iterator[None]:
    """Any connection fails the test: the engine must never download."""

    def refuse(*args: object, **kwargs: object) -> None:
        raise AssertionError("the Demucs engine tried to reach the network")

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(socket.socket, "connect", refuse)
        patch.setattr(socket, "create_connection", refuse)
        yield


def load_demucs(folder: Path) -> DemucsSeparator:
    engine = DemucsSeparator(folder, threads=1)
    with offline():
        engine.load()
    return engine


@pytest.fixture(scope="module")
def demucs(tmp_path_factory: pytest.TempPathFactory) -> DemucsSeparator:
    """htdemucs as released, htdemucs_6s as on HuggingFace."""
    folder = tmp_path_factory.mktemp("demucs")
    save_release(folder, "htdemucs", SOURCES)
    save_huggingface(folder, "htdemucs_6s", SIX_SOURCES)
    return load_demucs(folder)


@pytest.fixture(scope="module")
def demucs_stems(demucs: DemucsSeparator, song: dict[str, np.ndarray]) -> dict[int, dict[str, np.ndarray]]:
    with offline():
        return {count: demucs.separate(song["mix"][: 3 * RATE], count) for count in demucs.stem_counts}


@pytest.mark.slow
def test_demucs_makes_every_count_from_its_models(demucs: DemucsSeparator, demucs_stems) -> None:
    assert demucs.stem_counts == (2, 4, 5, 6) and demucs.sample_rate == RATE
    assert {count: list(stems) for count, stems in demucs_stems.items()} == {
        2: ["vocals", "accompaniment"],
        4: ["vocals", "drums", "bass", "other"],
        5: ["vocals", "drums", "bass", "piano", "other"],
        6: ["vocals", "drums", "bass", "guitar", "piano", "other"],
    }
    for stems in demucs_stems.values():
        assert all(stem.shape == (3 * RATE, 2) and stem.dtype == np.float32 for stem in stems.values())
        assert all(np.isfinite(stem).all() for stem in stems.values())


@pytest.mark.slow
def test_demucs_sums_the_sources_a_count_does_not_name(demucs_stems) -> None:
    two, four, five, six = (demucs_stems[count] for count in (2, 4, 5, 6))
    np.testing.assert_allclose(two["vocals"], four["vocals"], atol=1e-6)
    np.testing.assert_allclose(two["accompaniment"], four["drums"] + four["bass"] + four["other"], atol=1e-5)
    for name in ("vocals", "drums", "bass", "piano"):
        np.testing.assert_allclose(five[name], six[name], atol=1e-6)
    np.testing.assert_allclose(five["other"], six["other"] + six["guitar"], atol=1e-5)


@pytest.mark.slow
def test_demucs_reads_a_single_checkpoint_and_separates_mono(tmp_path: Path, song) -> None:
    save_single(tmp_path, "htdemucs", SOURCES)
    engine = load_demucs(tmp_path)
    assert engine.stem_counts == (2, 4)
    mono = song["mix"][: 2 * RATE].mean(axis=1)
    with offline():
        stems = engine.separate(mono, 4)
    assert list(stems) == ["vocals", "drums", "bass", "other"]
    assert all(stem.shape == mono.shape and np.isfinite(stem).all() for stem in stems.values())


def test_demucs_without_weights_is_unavailable_and_says_what_to_install(tmp_path: Path) -> None:
    with pytest.raises(ModelUnavailable) as raised:
        DemucsSeparator(tmp_path / "demucs").load()
    assert "htdemucs" in raised.value.message and "docs/deploy.md" in raised.value.message
    assert str(tmp_path) not in raised.value.message and str(tmp_path) in raised.value.detail


def test_demucs_with_a_missing_checkpoint_is_unavailable(tmp_path: Path) -> None:
    (tmp_path / "htdemucs.yaml").write_text("models: ['955717e8']\n")
    with pytest.raises(ModelUnavailable, match="cannot read the Demucs weights") as raised:
        load_demucs(tmp_path)
    assert "955717e8" in raised.value.detail
