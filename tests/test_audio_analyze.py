"""The key/tempo/meter analyser on songs the test composes (chords, bass, three drum
patterns: keys in both modes, 70-180 BPM, 3/4 and 4/4), on a song it did not compose (Festival singing
Daisy Bell from the score Debian ships with it), and on audio with no music to measure."""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest
from scipy.signal import butter, resample_poly, sosfilt

from services.audio.engines.key_tempo import SAMPLE_RATE, KeyTempoAnalyzer, camelot, compatible_keys
from speechmesh.common.audio.decode import decode_audio
from speechmesh.common.errors import InvalidAudio

RATE = SAMPLE_RATE
TONICS = ["C", "C#", "D", "D#", "E", "F", "F#", "G", "G#", "A", "A#", "B"]
DAISY = Path("/usr/share/doc/festival/examples/songs/daisy.xml")
# The Camelot wheel as DJ software prints it, written out rather than computed.
WHEEL = {
    "C Major": "8B", "G Major": "9B", "D Major": "10B", "A Major": "11B", "E Major": "12B", "B Major": "1B",
    "F# Major": "2B", "C# Major": "3B", "G# Major": "4B", "D# Major": "5B", "A# Major": "6B", "F Major": "7B",
    "A Minor": "8A", "E Minor": "9A", "B Minor": "10A", "F# Minor": "11A", "C# Minor": "12A", "G# Minor": "1A",
    "D# Minor": "2A", "A# Minor": "3A", "F Minor": "4A", "C Minor": "5A", "G Minor": "6A", "D Minor": "7A",
}  # fmt: skip


@pytest.fixture(scope="module")
def analyzer() -> KeyTempoAnalyzer:
    model = KeyTempoAnalyzer()
    model.load()
    model.warm_up()
    return model


def note(frequency: float, seconds: float, decay: float, partials: int = 6) -> np.ndarray:
    """A plucked harmonic tone: partials at 1/k, a 10 ms attack, exponential decay."""
    t = np.arange(int(seconds * RATE)) / RATE
    tone = sum(np.sin(2 * np.pi * frequency * k * t) / k for k in range(1, partials + 1))
    return tone * np.minimum(1, t / 0.01) * np.exp(-decay * t) * np.minimum(1, (seconds - t) / 0.02)


def place(track: np.ndarray, sound: np.ndarray, seconds: float) -> None:
    start = int(seconds * RATE)
    if start < len(track):
        end = min(len(track), start + len(sound))
        track[start:end] += sound[: end - start]


def song(tonic: str, scale: str, bpm: float, beats: int, drums: str, seconds: float = 16.0) -> np.ndarray:
    """I-IV-V-I (major) or i-iv-V-i (harmonic minor), a bar a chord, held; the chord's root
    in the bass on every beat, louder on the downbeat; and `drums`: "one" a kick on the
    downbeat and a hi-hat on every beat, "eighths" the same with softer hats between, "rock"
    a kick on 1 and 3, a snare on 2 and 4 and hats on every eighth."""
    root = TONICS.index(tonic)
    minor = scale == "Minor"
    chords = [(0, minor), (5, minor), (7, False), (0, minor)]  # (degree, minor third)
    beat = 60 / bpm
    track = np.zeros(int(seconds * RATE))
    for bar in range(int(seconds / (beats * beat)) + 1):
        start = bar * beats * beat
        degree, minor_chord = chords[bar % 4]
        for step in (0, 3 if minor_chord else 4, 7):
            place(track, 0.12 * note(261.63 * 2 ** (((root + degree + step) % 12) / 12), beats * beat, 1.0), start)
        for count in range(beats):
            bass = note(65.41 * 2 ** (((root + degree) % 12) / 12), beat, 4.0, partials=4)
            place(track, (0.35 if count == 0 else 0.2) * bass, start + count * beat)
    add_drums(track, beat, beats, drums)
    return (0.5 * track / np.abs(track).max()).astype(np.float32)


def add_drums(track: np.ndarray, beat: float, beats: int, style: str) -> None:
    rng = np.random.default_rng(0)
    t = np.arange(int(0.15 * RATE)) / RATE
    kick = np.sin(2 * np.pi * (50 + 100 * np.exp(-30 * t)) * t) * np.exp(-25 * t)
    snare = sosfilt(butter(2, [1000, 5000], "bandpass", fs=RATE, output="sos"), rng.standard_normal(len(t)))
    hat = sosfilt(butter(4, 7000, "highpass", fs=RATE, output="sos"), rng.standard_normal(len(t))) * np.exp(-80 * t)
    hits = {
        "one": [(0, kick, 0.9)] + [(count, hat, 0.3) for count in range(beats)],
        "eighths": [(0, kick, 0.9)] + [(count / 2, hat, 0.3 if count % 2 == 0 else 0.15) for count in range(2 * beats)],
        "rock": [(count, kick if count % 2 == 0 else snare * np.exp(-30 * t), 0.9 if count % 2 == 0 else 0.5)
                 for count in range(beats)] + [(count / 2, hat, 0.2) for count in range(2 * beats)],
    }[style]  # fmt: skip
    for bar in range(int(len(track) / RATE / (beats * beat)) + 1):
        for count, sound, level in hits:
            place(track, level * sound, (bar * beats + count) * beat)


SONGS = [
    ("C", "Major", 128, 4, "one"),
    ("A", "Minor", 95, 4, "eighths"),
    ("F#", "Major", 174, 4, "eighths"),
    ("D", "Minor", 70, 3, "one"),
    ("G#", "Minor", 180, 3, "one"),
    ("E", "Major", 100, 3, "eighths"),
    ("D#", "Minor", 140, 4, "one"),
    ("A#", "Major", 72, 4, "eighths"),
    ("G", "Major", 120, 4, "rock"),
    ("E", "Minor", 150, 4, "rock"),
    ("F", "Major", 76, 4, "rock"),
]


@pytest.mark.slow
@pytest.mark.parametrize(("tonic", "scale", "bpm", "beats", "drums"), SONGS)
def test_synthetic_songs(
    analyzer: KeyTempoAnalyzer, tonic: str, scale: str, bpm: float, beats: int, drums: str
) -> None:
    result = analyzer.analyze(song(tonic, scale, bpm, beats, drums), RATE)
    assert (result.key, result.scale, result.time_signature) == (tonic, scale, f"{beats}/4")
    assert result.bpm == pytest.approx(bpm, rel=0.02)
    assert result.camelot == WHEEL[f"{tonic} {scale}"]


@pytest.mark.slow
def test_other_rates_are_resampled(analyzer: KeyTempoAnalyzer) -> None:
    audio = resample_poly(song("B", "Minor", 110, 4, "rock"), 2, 1).astype(np.float32)  # 44.1 kHz
    result = analyzer.analyze(audio, 2 * RATE)
    assert (result.key, result.scale, result.time_signature) == ("B", "Minor", "4/4")
    assert result.bpm == pytest.approx(110, rel=0.02)


def daisy_score() -> tuple[set[str], str, float, float]:
    """From Festival's Daisy Bell score: its pitch classes, last note, beats and tempo.
    Festival's singing mode plays BPM / 50 beats a second (singing-mode.scm), so the
    score's BPM="80" sings at 96 beats a minute."""
    score = DAISY.read_text()
    notes = [name for group in re.findall(r'NOTE="([^"]+)"', score) for name in group.split(",")]
    flat_to_sharp = {"Bb": "A#", "Eb": "D#", "Ab": "G#", "Db": "C#", "Gb": "F#"}
    classes = [flat_to_sharp.get(name[:-1], name[:-1]) for name in notes]
    beats = sum(float(b) for group in re.findall(r'BEATS="([^"]+)"', score) for b in group.split(","))
    (bpm,) = re.findall(r'BPM="([0-9.]+)"', score)
    return set(classes), classes[-1], beats, float(bpm) * 60 / 50


@pytest.mark.slow
@pytest.mark.skipif(not DAISY.is_file() or not shutil.which("text2wave"), reason="Festival's example songs absent")
def test_a_song_it_did_not_compose(analyzer: KeyTempoAnalyzer, tmp_path: Path) -> None:
    """Festival (a Debian package, a dependency of the TTS service) sings Daisy Bell from
    the score it ships: a voice alone, no chords, no drums. The score's notes are the seven
    of B-flat (A#) major and end on its tonic, so the key is A# Major; its tempo is 96."""
    classes, last, beats, bpm = daisy_score()
    assert classes == {"A#", "C", "D", "D#", "F", "G", "A"} and last == "A#"
    wav = tmp_path / "daisy.wav"
    subprocess.run(["text2wave", "-mode", "singing", str(DAISY), "-o", str(wav)], check=True, timeout=60)
    pcm = decode_audio(wav.read_bytes(), sample_rate=RATE)  # as the pipeline hands it over
    assert len(pcm.samples) / pcm.sample_rate == pytest.approx(beats * 60 / bpm, rel=0.01)  # it sings in time
    result = analyzer.analyze(pcm.samples, pcm.sample_rate)
    assert (result.key, result.scale) == ("A#", "Major")
    assert result.bpm == pytest.approx(bpm, rel=0.02)


def click_track() -> np.ndarray:
    clicks = np.zeros(10 * RATE, np.float32)
    clicks[:: RATE // 2] = 0.8
    return clicks


def held_chord() -> np.ndarray:
    """C major, held for 10 s: tonal, and its partials beat slowly, but nothing starts."""
    t = np.arange(10 * RATE) / RATE
    return (0.05 * sum(np.sin(2 * np.pi * f * k * t) / k for f in (261.63, 329.63, 392.0) for k in range(1, 5))).astype(
        np.float32
    )


@pytest.mark.slow
@pytest.mark.parametrize(
    ("name", "audio", "reason"),
    [
        ("silence", np.zeros(10 * RATE, np.float32), "silent"),
        ("near silence", 1e-4 * np.random.default_rng(0).standard_normal(10 * RATE).astype(np.float32), "silent"),
        ("white noise", 0.1 * np.random.default_rng(1).standard_normal(10 * RATE).astype(np.float32), "No key"),
        ("a click track", click_track(), "No key"),
        ("a held chord", held_chord(), "No tempo"),
        ("3 s of a song", song("C", "Major", 120, 4, "one")[: 3 * RATE], "at least 6 s"),
    ],
)
def test_no_music_no_answer(analyzer: KeyTempoAnalyzer, name: str, audio: np.ndarray, reason: str) -> None:
    with pytest.raises(InvalidAudio, match=reason):
        analyzer.analyze(audio, RATE)


def test_camelot_codes_and_compatible_keys() -> None:
    for name, code in WHEEL.items():
        tonic, scale = name.split()
        assert camelot(TONICS.index(tonic), scale) == code
    assert compatible_keys(0, "Major") == ("C Major", "G Major", "F Major", "A Minor")  # the seed page's example
    assert compatible_keys(9, "Minor") == ("A Minor", "E Minor", "D Minor", "C Major")
    for name in WHEEL:
        tonic, scale = name.split()
        same, up, down, relative = compatible_keys(TONICS.index(tonic), scale)
        number, letter = int(WHEEL[same][:-1]), WHEEL[same][-1]
        assert (WHEEL[up], WHEEL[down]) == (f"{number % 12 + 1}{letter}", f"{(number - 2) % 12 + 1}{letter}")
        assert WHEEL[relative] == f"{number}{'A' if letter == 'B' else 'B'}"
