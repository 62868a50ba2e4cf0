"""`world-prosody`: speech-to-speech emotion as fixed WORLD prosody transforms, named for what it is.

No expressive speech-to-speech model (the documented openvoice and chatterbox) can be had
offline, and this is not one. Each emotion is a documented change of the speaker's own
delivery (`EMOTIONS`), made by WORLD analysis and resynthesis (`speechmesh/speakers/world.py`):
pitch level and range, loudness and its contrast between syllables, and spectral tilt; the
pace goes to the pipeline as `tempo`. The voice, the words and their timing stay the
speaker's. Listeners hear a livelier and brighter, or flatter and darker, reading of the
same speech: the acoustic direction of each emotion, not an actor's rendition of it.

Blocking, stateless and safe to call from several threads at once (WORLD keeps no state
and releases the GIL).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from speechmesh.common.audio.pcm import Pcm
from speechmesh.common.errors import InvalidArgument
from speechmesh.speakers import world
from speechmesh.speakers.world import FRAME_PERIOD_MS, WorldParameters

MODEL_ID = "world-prosody"


@dataclass(frozen=True)
class Prosody:
    """One emotion's change of delivery, relative to the speech it is applied to."""

    # F0 level shift in semitones (12 = an octave).
    semitones: float
    # Scale of each voiced frame's log-F0 distance from the speech's mean: > 1 livelier
    # intonation, < 1 flatter.
    f0_range: float
    # Change of the overall (RMS) level in dB.
    gain_db: float
    # Scale of voiced frames' level differences (dB) around their median: > 1 stressed
    # syllables stand out more, < 1 the delivery evens out.
    emphasis: float
    # Change of spectral slope in dB per octave, pivoting at 1 kHz: > 0 brighter (more
    # energy in the upper harmonics, as with raised vocal effort), < 0 darker.
    tilt_db_per_octave: float
    # Pace factor (1.1 = 10 % faster), applied by the pipeline with the caller's speed.
    tempo: float


EMOTIONS: dict[str, Prosody] = {
    "neutral": Prosody(semitones=0.0, f0_range=1.0, gain_db=0.0, emphasis=1.0, tilt_db_per_octave=0.0, tempo=1.0),
    "happy": Prosody(semitones=2.5, f0_range=1.3, gain_db=2.0, emphasis=1.1, tilt_db_per_octave=1.5, tempo=1.05),
    "sad": Prosody(semitones=-2.0, f0_range=0.6, gain_db=-3.0, emphasis=0.8, tilt_db_per_octave=-2.5, tempo=0.85),
    "angry": Prosody(semitones=1.5, f0_range=1.25, gain_db=4.0, emphasis=1.3, tilt_db_per_octave=3.0, tempo=1.05),
    "excited": Prosody(semitones=4.0, f0_range=1.5, gain_db=3.0, emphasis=1.2, tilt_db_per_octave=2.0, tempo=1.12),
}
"""The directions are the consistent findings on acted and natural emotional speech
(Murray and Arnott 1993, JASA 93(2); Banse and Scherer 1996, JPSP 70(3); Juslin and Laukka
2003, Psychological Bulletin 129(5); Scherer 2003, Speech Communication 40):

- happy: higher and more varied F0, somewhat louder, a little brighter, a little faster;
- angry ("hot" anger): louder with stronger accents and much more high-frequency energy
  (the steepest tilt change here), F0 higher and wider, slightly faster;
- excited (high-arousal joy, "elation"): the highest and widest F0, louder, brighter and
  the fastest;
- sad: lower, narrower ("monotonous") F0, quieter and more even, darker (less energy in
  the upper harmonics), slower;
- neutral: no change; the speech is returned as it is, not resynthesized.

The sizes are this service's choice, smaller than the contrasts between acted emotions
in those studies: larger F0 and tilt changes through a vocoder cost intelligibility and
make the voice sound processed rather than moved (tests/test_audio_voice.py measures what
each emotion does and that Whisper still hears the words). Anger's F0 rise is kept below
happiness's: without a shouting voice's quality a raised pitch reads as cheerful, so
loudness, accents and tilt carry anger."""

_SEMITONE = np.log(2) / 12
# Level differences between voiced frames are scaled only within +-this many dB of their
# median: beyond, a frame is a fade-in or a pause, not an accent.
_EMPHASIS_SPAN_DB = 12.0
# The emphasis gain is smoothed over this long, so it follows syllables, not pitch periods.
_EMPHASIS_SMOOTH_MS = 25.0
# Spectral tilt: the pivot, and below this frequency the gain stays flat (F0 region).
_TILT_PIVOT_HZ = 1000.0
_TILT_FLOOR_HZ = 125.0
_PEAK = 0.98
# The limiter looks this far around each 5 ms block for peaks to duck under _PEAK.
_LIMITER_BLOCKS = 2


class WorldRestyler:
    def load(self) -> None:
        import pyworld  # noqa: F401 - fail at load, not at the first request, when WORLD is missing

    def warm_up(self) -> None:
        """Nothing: WORLD loads no model and has nothing to warm."""

    def tempo(self, emotion: str) -> float:
        return _prosody(emotion).tempo

    def restyle(self, speech: Pcm, emotion: str) -> Pcm:
        prosody = _prosody(emotion)
        rate = speech.sample_rate
        mono = speech.mono()
        if emotion == "neutral" or not world.analysable(mono.size, rate):
            return Pcm(mono, rate)
        x = mono.astype(np.float64)
        parameters = world.analyse(x, rate)
        f0 = _intonation(parameters.f0, prosody)
        spectrum = parameters.spectrum * _emphasis_gain(parameters, prosody.emphasis)[:, None]
        spectrum *= _tilt_gain(parameters, prosody.tilt_db_per_octave)[None, :]
        out = world.resynthesize(WorldParameters(f0, spectrum, parameters.aperiodicity, rate), x.size)
        target = np.sqrt(np.mean(x**2)) * 10 ** (prosody.gain_db / 20)
        out *= target / (np.sqrt(np.mean(out**2)) + 1e-20)
        return Pcm(_limit(out, rate).astype(np.float32), rate)


def _prosody(emotion: str) -> Prosody:
    if emotion not in EMOTIONS:
        raise InvalidArgument(f"emotion must be one of {', '.join(EMOTIONS)}, not '{emotion}'", param="emotion")
    return EMOTIONS[emotion]


def _intonation(f0: np.ndarray, prosody: Prosody) -> np.ndarray:
    """F0 shifted by `semitones` and its log-F0 spread around this speech's mean scaled
    by `f0_range`, kept within the range WORLD's analysis searches."""
    voiced = f0 > 0
    if not voiced.any():
        return f0
    log_f0 = np.log(f0[voiced])
    mean = float(log_f0.mean())
    moved = mean + prosody.semitones * _SEMITONE + (log_f0 - mean) * prosody.f0_range
    out = f0.copy()
    out[voiced] = np.clip(np.exp(moved), world.F0_FLOOR_HZ, world.F0_CEIL_HZ)
    return out


def _emphasis_gain(parameters: WorldParameters, emphasis: float) -> np.ndarray:
    """Per-frame power gain scaling voiced frames' level distance from their median by
    `emphasis`, smoothed; unvoiced frames and silence are left as they are."""
    voiced = parameters.f0 > 0
    if emphasis == 1.0 or not voiced.any():
        return np.ones(len(voiced))
    level_db = 10 * np.log10(parameters.spectrum.mean(axis=1) + 1e-20)
    distance = np.clip(level_db - np.median(level_db[voiced]), -_EMPHASIS_SPAN_DB, _EMPHASIS_SPAN_DB)
    gain_db = np.where(voiced, (emphasis - 1) * distance, 0.0)
    width = max(1, round(_EMPHASIS_SMOOTH_MS / FRAME_PERIOD_MS))
    window = np.hanning(2 * width + 1)
    smooth = np.convolve(np.pad(gain_db, width, mode="edge"), window / window.sum(), mode="valid")
    return np.asarray(10 ** (smooth / 10))


def _tilt_gain(parameters: WorldParameters, db_per_octave: float) -> np.ndarray:
    """Power gain per spectrum bin: `db_per_octave` times the octaves from the pivot."""
    freqs = np.arange(parameters.spectrum.shape[1]) * parameters.sample_rate / parameters.fft_size
    octaves = np.log2(np.maximum(freqs, _TILT_FLOOR_HZ) / _TILT_PIVOT_HZ)
    return np.asarray(10 ** (db_per_octave * octaves / 10))


def _limit(out: np.ndarray, rate: int) -> np.ndarray:
    """`out` with its peaks ducked under _PEAK by a gain that follows 5 ms blocks: each
    block's gain is the least its neighbourhood needs, interpolated between block centres,
    so the level raised by an emotion survives where a whole-signal scale would undo it."""
    hop = round(rate * FRAME_PERIOD_MS / 1000)
    blocks = -(-out.size // hop)
    peaks = np.abs(np.pad(out, (0, blocks * hop - out.size))).reshape(blocks, hop).max(axis=1)
    needed = np.minimum(1.0, _PEAK / np.maximum(peaks, 1e-20))
    padded = np.pad(needed, _LIMITER_BLOCKS, mode="edge")
    gain = np.lib.stride_tricks.sliding_window_view(padded, 2 * _LIMITER_BLOCKS + 1).min(axis=1)
    centres = np.arange(blocks) * hop + hop / 2
    return np.asarray(out * np.interp(np.arange(out.size), centres, gain))
