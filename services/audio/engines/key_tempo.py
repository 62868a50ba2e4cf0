"""Key, tempo and meter of music: librosa features and textbook music-theory rules, no weights.

Key: the CQT chroma (tuning estimated, 36 bins an octave, hop 93 ms) averaged over the
excerpt and correlated with the 24 rotations of Temperley's (Kostka-Payne) key profiles;
the best correlation wins. Temperley's, not Krumhansl-Schmuckler's: on chord progressions
of harmonic tones (whose 5th partial is a major third) Krumhansl-Schmuckler picked the
parallel major for 4 of the 6 minor keys tried, and F major for Festival's Daisy Bell (in
B-flat); Temperley's got all of them.

Tempo: the onset envelope is the spectral flux of the log-mel spectrogram (hop 11.6 ms),
the bands over `HIGH_BAND_HZ` weighed `HIGH_BAND_WEIGHT` (after the log a hi-hat, noise
filling a third of the bands, weighs like a kick, and hats on eighths made the envelope
pulse at twice the beat). Its autocorrelation over the excerpt gives the dominant
periodicity: the tempo (50-220 BPM) whose first 4 multiples correlate best, times a prior,
log-normal, one octave wide, centred on `PRIOR_BPM`. Then the metrical-level correction a
plain tracker lacks (its autocorrelation is as high at every other beat as at every beat,
so it reports half or double tempo): of T/3, T/2, T, 2T and 3T, the one that repeats most
more than its subdivisions and than twice its period, 2 A(P) - max(A(P/2), A(P/3)) - A(2P)
(A: the autocorrelation's peak within 2 %), times the prior. A beat repeats more than
what divides it (off-beats are weaker or absent) and no less than every other beat. The
prior's centre was measured: 115 read rock beats at 170 as 85, 125-140 all the same. The
period is then refined on its first 8 multiples (to ~0.1 %), and librosa's
dynamic-programming beat tracker, run at that tempo, places the beats.

Meter: the onset strength at each beat (the accents). For 3 and 4 beats a bar and every
phase, the accent contrast is the mean accent on the would-be downbeats minus that on the
other beats, over the accents' spread; 3/4 when its best contrast beats 4/4's, otherwise
4/4 (also with fewer than `MIN_BARS` bars of beats to tell).

Measured on 144 synthetic songs (every key in both modes, 70-180 BPM, three drum patterns,
3/4 and 4/4, 12 and 16 s): key right 142 times (twice the subdominant, from a rock beat),
tempo within 2 % and meter right 142 times (twice a 3/4 over 150 BPM with eighths, read
one-in-a-bar at a third of the tempo).

Refused (InvalidAudio), never a made-up answer: audio under `MIN_SECONDS`; silence (RMS
under `SILENCE_DBFS`); no tonal content: a flat chroma (coefficient of variation under
`MIN_CHROMA_CONTRAST`) or one that fits no key (correlation under `MIN_KEY_CORRELATION`); no
steady beat: onsets weaker than `MIN_ONSET_DB` (the envelope's 99th percentile) or pulse
evidence (mean autocorrelation on the first 4 beats minus half-way between them) under
`MIN_PULSE_EVIDENCE`. Measured (contrast, correlation, onsets, evidence): the tests'
synthetic songs 0.47-0.62, 0.73-0.86, 3.0-5.3 dB, 0.24-0.70; one with white noise 10 dB
under it 0.35, 0.73, 1.2 dB, 0.37; Festival singing Daisy Bell (a voice alone) 0.25, 0.86,
5.5 dB, 0.12; white noise 0.01, 0.30, 0.7 dB, 0.02; Piper speech 0.08, 0.31, 7.0 dB, 0.08; a
click track 0.12, 0.34, 45 dB, 0.84; a held chord 1.53, 0.83, 0.3 dB, 0.17. A voice alone
passes with little to spare: rubato singing is refused, not guessed.

Only the middle `MAX_SECONDS` of longer audio is analysed (a song's key and tempo hold
through it; intros and outros are where they often do not): 10 minutes take 1.3-2.7 s and
230 MB at the peak, a 16 s song 0.1-0.2 s. Does not follow tempo or key changes (one
answer for the excerpt), tells only 3/4 from 4/4 (6/8 reads as either), and knows major
and minor only (a Dorian or Mixolydian tune reads as its nearest major or minor key).
`warm_up` takes 3 s when numba's on-disk cache of librosa's code is warm, 25 s when cold
(a fresh image: warm it once at build time, or keep NUMBA_CACHE_DIR on a volume).
"""

from __future__ import annotations

from typing import Any

import numpy as np

from services.audio.processors import Analysis
from speechmesh.common.errors import InvalidAudio

MODEL_ID = "key-tempo"
SAMPLE_RATE = 22050
MIN_SECONDS = 6.0
MAX_SECONDS = 180.0
SILENCE_DBFS = -60.0
MIN_KEY_CORRELATION = 0.6
MIN_CHROMA_CONTRAST = 0.2
MIN_PULSE_EVIDENCE = 0.08
# The onset envelope's 99th percentile (the weighted mean rise of the log-mel bands in a
# frame, dB): a held chord's partials beat against each other, a steady pulse with no onsets.
MIN_ONSET_DB = 0.8
MIN_BARS = 2
ONSET_HOP = 256
N_MELS = 128
HIGH_BAND_HZ = 4000.0
HIGH_BAND_WEIGHT = 0.3
# The tempo levels tried around the dominant periodicity: octaves, and thirds for triple meter.
METRICAL_LEVELS = np.array([1 / 3, 1 / 2, 1, 2, 3])
CHROMA_HOP = 2048
TEMPO_RANGE = (50.0, 220.0)
TEMPO_STEP = 0.25  # BPM; the refinement takes it further
PRIOR_BPM = 125.0
PRIOR_OCTAVES = 1.0
EVIDENCE_BEATS = 4
REFINE_MULTIPLES = 8

TONICS = ("C", "C#", "D", "D#", "E", "F", "F#", "G", "G#", "A", "A#", "B")
# Temperley (1999/2001), the Kostka-Payne corpus: tonic first.
MAJOR_PROFILE = np.array([0.748, 0.060, 0.488, 0.082, 0.670, 0.460, 0.096, 0.715, 0.104, 0.366, 0.057, 0.400])
MINOR_PROFILE = np.array([0.712, 0.084, 0.474, 0.618, 0.049, 0.460, 0.105, 0.747, 0.404, 0.067, 0.133, 0.330])


class KeyTempoAnalyzer:
    def __init__(self) -> None:
        self.sample_rate = SAMPLE_RATE
        self._librosa: Any = None

    def load(self) -> None:
        import librosa

        self._librosa = librosa

    def warm_up(self) -> None:
        """One analysis of a short synthetic song: compiles librosa's numba code (the
        beat tracker, the CQT's helpers), which would otherwise slow the first request."""
        self.analyze(_warm_up_song(), SAMPLE_RATE)

    def analyze(self, audio: np.ndarray, sample_rate: int) -> Analysis:
        samples = self._excerpt(np.asarray(audio, np.float32).reshape(-1), sample_rate)
        tonic, scale = self._key(samples)
        bpm, beats, onsets = self._tempo(samples)
        return Analysis(
            key=TONICS[tonic],
            scale=scale,
            bpm=round(bpm, 1),
            time_signature=_meter(onsets, beats),
            camelot=camelot(tonic, scale),
            compatible_keys=compatible_keys(tonic, scale),
        )

    def _excerpt(self, samples: np.ndarray, rate: int) -> np.ndarray:
        seconds = len(samples) / rate
        if seconds < MIN_SECONDS:
            raise InvalidAudio(
                f"The audio lasts {seconds:.1f} s; key and tempo need at least {MIN_SECONDS:g} s of music."
            )
        if seconds > MAX_SECONDS:
            start = int((seconds - MAX_SECONDS) / 2 * rate)
            samples = samples[start : start + int(MAX_SECONDS * rate)]
        if rate != SAMPLE_RATE:
            samples = self._librosa.resample(samples, orig_sr=rate, target_sr=SAMPLE_RATE)
        level = 10 * np.log10(float(np.mean(samples.astype(np.float64) ** 2)) + 1e-20)
        if level < SILENCE_DBFS:
            raise InvalidAudio(f"The audio is silent ({level:.0f} dBFS): there is no music to analyse.")
        return samples

    def _key(self, samples: np.ndarray) -> tuple[int, str]:
        chroma = self._librosa.feature.chroma_cqt(y=samples, sr=SAMPLE_RATE, hop_length=CHROMA_HOP).mean(axis=1)
        contrast = float(chroma.std() / max(float(chroma.mean()), 1e-12))
        if contrast < MIN_CHROMA_CONTRAST:
            raise InvalidAudio(
                "No key could be measured: all pitch classes sound about as loud, as in noise, speech or drums "
                f"(chroma contrast {contrast:.2f}; music has at least {MIN_CHROMA_CONTRAST:g})."
            )
        correlation, tonic, scale = max(
            (float(np.corrcoef(chroma, np.roll(profile, tonic))[0, 1]), tonic, scale)
            for scale, profile in (("Major", MAJOR_PROFILE), ("Minor", MINOR_PROFILE))
            for tonic in range(12)
        )
        if correlation < MIN_KEY_CORRELATION:
            raise InvalidAudio(
                "No key could be measured: the pitches fit no major or minor key "
                f"(key-profile correlation {correlation:.2f}; music has at least {MIN_KEY_CORRELATION:g})."
            )
        return tonic, scale

    def _tempo(self, samples: np.ndarray) -> tuple[float, np.ndarray, np.ndarray]:
        """BPM, the beats' frames and the onset envelope they index."""
        onsets = self._onset_envelope(samples)
        correlation = _autocorrelation(onsets)
        frames_per_minute = 60 * SAMPLE_RATE / ONSET_HOP
        tempos = np.arange(TEMPO_RANGE[0], TEMPO_RANGE[1] + TEMPO_STEP / 2, TEMPO_STEP)
        dominant = tempos[int(np.argmax(_comb(correlation, frames_per_minute / tempos) * _prior(tempos)))]
        levels = [level for level in dominant * METRICAL_LEVELS if TEMPO_RANGE[0] <= level <= TEMPO_RANGE[1]]
        tempo = max(levels, key=lambda level: _beat_score(correlation, frames_per_minute / level) * _prior(level))
        period = _refine_period(correlation, frames_per_minute / tempo)
        salience = float(np.percentile(onsets, 99))
        evidence = _pulse_evidence(correlation, period)
        if salience < MIN_ONSET_DB or evidence < MIN_PULSE_EVIDENCE:
            raise InvalidAudio(
                f"No tempo could be measured: the audio has no steady beat (onset salience {salience:.1f} dB, "
                f"pulse evidence {evidence:.2f}; music has at least {MIN_ONSET_DB:g} dB and {MIN_PULSE_EVIDENCE:g})."
            )
        bpm = frames_per_minute / period
        _, beats = self._librosa.beat.beat_track(
            onset_envelope=onsets, sr=SAMPLE_RATE, hop_length=ONSET_HOP, bpm=bpm, tightness=400
        )
        return float(bpm), np.asarray(beats, int), onsets

    def _onset_envelope(self, samples: np.ndarray) -> np.ndarray:
        """Spectral flux of the log-mel spectrogram, the bands over `HIGH_BAND_HZ` weighed
        `HIGH_BAND_WEIGHT`: after the log a hi-hat (noise filling a third of the bands)
        weighs like a kick, and with hats on eighths the envelope pulses at twice the beat."""
        librosa = self._librosa
        mel = librosa.power_to_db(
            librosa.feature.melspectrogram(y=samples, sr=SAMPLE_RATE, hop_length=ONSET_HOP, n_mels=N_MELS)
        )
        centres = librosa.mel_frequencies(n_mels=N_MELS + 2, fmax=SAMPLE_RATE / 2)[1:-1]  # the filters' own
        weights = np.where(centres > HIGH_BAND_HZ, HIGH_BAND_WEIGHT, 1.0)[:, None]
        onsets: np.ndarray = librosa.onset.onset_strength(S=mel * weights, sr=SAMPLE_RATE, hop_length=ONSET_HOP)
        return onsets


def camelot(tonic: int, scale: str) -> str:
    """The Camelot wheel's code: C Major 8B, A Minor 8A; a step clockwise is a fifth up."""
    major_tonic = tonic if scale == "Major" else (tonic + 3) % 12  # a minor key's relative major
    return f"{(7 * major_tonic + 7) % 12 + 1}{'B' if scale == 'Major' else 'A'}"


def compatible_keys(tonic: int, scale: str) -> tuple[str, ...]:
    """The key, its neighbours on the wheel (a fifth up, a fifth down) and its relative
    key, in that order: C Major -> C Major, G Major, F Major, A Minor."""
    relative = ((tonic + 9) % 12, "Minor") if scale == "Major" else ((tonic + 3) % 12, "Major")
    keys = [(tonic, scale), ((tonic + 7) % 12, scale), ((tonic + 5) % 12, scale), relative]
    return tuple(f"{TONICS[key]} {mode}" for key, mode in keys)


def _autocorrelation(envelope: np.ndarray) -> np.ndarray:
    centred = envelope.astype(np.float64) - envelope.mean()
    spectrum = np.fft.rfft(centred, 2 * len(centred))
    correlation = np.fft.irfft(np.abs(spectrum) ** 2)[: len(centred)]
    return correlation / max(float(correlation[0]), 1e-12)


def _prior(tempo: Any) -> Any:
    return np.exp(-0.5 * (np.log2(tempo / PRIOR_BPM) / PRIOR_OCTAVES) ** 2)


def _comb(correlation: np.ndarray, periods: np.ndarray, offset: float = 0.0) -> np.ndarray:
    """Mean autocorrelation at the first `EVIDENCE_BEATS` multiples of each period
    (less `offset` periods)."""
    lags = np.arange(len(correlation))
    beats = (np.arange(1, EVIDENCE_BEATS + 1)[:, None] - offset) * periods
    comb: np.ndarray = np.interp(beats, lags, correlation, right=0.0).mean(axis=0)
    return comb


def _beat_score(correlation: np.ndarray, period: float) -> float:
    """How much more the audio repeats at `period` than at its subdivisions (half or
    third) and at twice it: a beat repeats more than what divides it (off-beats are weaker
    or absent) and no less than every other beat, which halves the tempo for no gain."""
    subdivision = max(_peak(correlation, period / 2), _peak(correlation, period / 3))
    return 2 * _peak(correlation, period) - subdivision - _peak(correlation, 2 * period)


def _peak(correlation: np.ndarray, lag: float) -> float:
    """The autocorrelation's highest value within 2 % of `lag`: played time is not exact."""
    low, high = int(np.floor(lag * 0.98)), int(np.ceil(lag * 1.02))
    return float(correlation[low : high + 1].max()) if high < len(correlation) else 0.0


def _pulse_evidence(correlation: np.ndarray, period: float) -> float:
    """Mean autocorrelation on the first beats minus halfway between them: high for a
    steady beat, ~0 for noise, speech or a held chord."""
    periods = np.array([period])
    return float(_comb(correlation, periods)[0] - _comb(correlation, periods, offset=0.5)[0])


def _refine_period(correlation: np.ndarray, period: float) -> float:
    """The period within 3 % of `period` whose first multiples correlate best: the k-th
    multiple pins the period k times finer than the frame grid."""
    multiples = [k for k in range(1, REFINE_MULTIPLES + 1) if k * period * 1.03 < len(correlation) - 1]
    candidates = np.linspace(0.97 * period, 1.03 * period, 241)
    lags = np.arange(len(correlation))
    score = sum(np.interp(k * candidates, lags, correlation) for k in multiples)
    return float(candidates[int(np.argmax(score))])


def _meter(onsets: np.ndarray, beats: np.ndarray) -> str:
    # The strongest onset within a frame of each beat: the tracker may land a frame off.
    accents = np.array([onsets[max(0, beat - 1) : beat + 2].max() for beat in beats])
    if len(accents) < MIN_BARS * 4:
        return "4/4"
    contrast = {length: _downbeat_contrast(accents, length) for length in (3, 4)}
    return "3/4" if contrast[3] > contrast[4] else "4/4"


def _downbeat_contrast(accents: np.ndarray, length: int) -> float:
    spread = max(float(accents.std()), 1e-12)
    best = -np.inf
    for phase in range(length):
        downbeat = np.zeros(len(accents), bool)
        downbeat[phase::length] = True
        best = max(best, (float(accents[downbeat].mean()) - float(accents[~downbeat].mean())) / spread)
    return best


def _warm_up_song(seconds: float = 8.0, bpm: float = 120.0) -> np.ndarray:
    """C major chords with a kick on every beat: passes every check, so all code runs."""
    t = np.arange(int(seconds * SAMPLE_RATE)) / SAMPLE_RATE
    chord = sum(np.sin(2 * np.pi * 261.63 * 2 ** (step / 12) * t) for step in (0, 4, 7))
    beat = (t * bpm / 60) % 1
    kick = np.sin(2 * np.pi * 60 * t) * np.exp(-beat * 20)
    return (0.1 * chord + 0.5 * kick).astype(np.float32)
