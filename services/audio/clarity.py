"""The clarity chain of `enhance`: speech made clean-sounding, even in level and safe to encode.

In order, on float32 mono (frames,) or multichannel (frames, channels) audio at 8-48 kHz:

1. High-pass: a 6th-order Butterworth at `HIGH_PASS_HZ`, run forward and backward (zero
   phase, so it neither shifts nor reshapes the speech): rumble, handling noise and 50/60 Hz
   mains hum go (-49 dB at 50 Hz, -30 dB at 60 Hz), speech above 120 Hz is untouched.
2. Presence: `PRESENCE_DB` more around `PRESENCE_HZ` (a peaking EQ whose half-gain points are
   2 and 5 kHz), where consonants carry intelligibility.
3. Loudness: one gain to `TARGET_LUFS` integrated (ITU-R BS.1770-4, measured by pyloudnorm),
   the usual target for spoken-word streams and podcasts. Audio shorter than the meter's
   0.4 s gating block, and audio with no block above its -70 LUFS absolute gate (silence),
   get no loudness gain: there is no loudness to measure.
4. True-peak limit: peaks above `CEILING_DBTP`, measured on the signal oversampled
   `OVERSAMPLING` times (as BS.1770-4's true-peak meter does), are turned down by a
   look-ahead limiter: its gain falls over `LOOKAHEAD_SECONDS` before a peak and recovers
   with `RELEASE_SECONDS`, so one loud syllable is tamed without turning the whole
   recording down. Limiting lowers the loudness, so steps 3 and 4 are repeated with a
   corrected gain until the result is within `LEVELING_TOLERANCE_LU` of the target.

Meant for whole recordings: loudness is one gain for all of it, so running it on the
pipeline's segments would level each segment apart.
"""

from __future__ import annotations

import numpy as np
import pyloudnorm
from scipy import signal
from scipy.ndimage import maximum_filter1d, uniform_filter1d

TARGET_LUFS = -16.0
CEILING_DBTP = -1.0
HIGH_PASS_HZ = 80.0
HIGH_PASS_ORDER = 6
PRESENCE_HZ = 3150.0
PRESENCE_DB = 3.0
# RBJ bandwidth 1.32 octaves: the boost is at half its dB from 2 to 5 kHz.
PRESENCE_Q = 1.05
OVERSAMPLING = 4
LOOKAHEAD_SECONDS = 0.005
RELEASE_SECONDS = 0.1
# Loudness is searched for until this close to the target, in at most this many passes.
LEVELING_TOLERANCE_LU = 0.1
LEVELING_PASSES = 4
# pyloudnorm's gating block: shorter audio has no integrated loudness.
LOUDNESS_BLOCK_SECONDS = 0.4
# Interpolation filter taps per oversampling phase: the Kaiser-windowed sinc (beta 5) that
# scipy's resample_poly designs for 4x.
_TAPS_PER_PHASE = 20


def clarify(audio: np.ndarray, sample_rate: int) -> np.ndarray:
    """The clarity chain (module docstring) on `audio`: same shape, float32."""
    samples = np.asarray(audio, np.float32)
    if samples.shape[0] == 0:
        return samples.copy()
    # Channels as rows: every step below runs along contiguous time.
    rows = np.ascontiguousarray(samples.reshape(samples.shape[0], -1).T, np.float64)
    filtered = _equalise(rows, sample_rate)
    return _level(filtered, sample_rate).T.reshape(samples.shape).astype(np.float32)


def true_peak(audio: np.ndarray) -> float:
    """The highest absolute sample value of `audio` ((frames,) or (frames, channels))
    oversampled `OVERSAMPLING` times, all channels together (linear; 1.0 is 0 dBTP)."""
    samples = np.asarray(audio, np.float64)
    if samples.shape[0] == 0:
        return 0.0
    return float(_peak_envelope(samples.reshape(samples.shape[0], -1).T).max())


def _equalise(rows: np.ndarray, sample_rate: int) -> np.ndarray:
    high_pass = signal.butter(HIGH_PASS_ORDER, HIGH_PASS_HZ, "highpass", fs=sample_rate, output="sos")
    # Forward and backward doubles each filter's dB: the presence section is designed at half.
    sections = np.vstack([high_pass, _peaking(PRESENCE_HZ, PRESENCE_DB / 2, PRESENCE_Q, sample_rate)])
    padding = min(3 * (2 * len(sections) + 1), rows.shape[1] - 1)
    return signal.sosfiltfilt(sections, rows, axis=-1, padlen=padding)


def _peaking(frequency: float, gain_db: float, q: float, sample_rate: int) -> np.ndarray:
    """One second-order section: the peaking EQ of R. Bristow-Johnson's Audio EQ Cookbook."""
    amplitude = 10 ** (gain_db / 40)
    w0 = 2 * np.pi * frequency / sample_rate
    alpha = np.sin(w0) / (2 * q)
    b = [1 + alpha * amplitude, -2 * np.cos(w0), 1 - alpha * amplitude]
    a = [1 + alpha / amplitude, -2 * np.cos(w0), 1 - alpha / amplitude]
    return np.concatenate([b, a])[None, :] / a[0]


def _level(rows: np.ndarray, sample_rate: int) -> np.ndarray:
    """`rows` at `TARGET_LUFS` under the true-peak ceiling. Limiting takes back part of any
    gain (half of it, on speech with a high crest factor), so the gain is searched for:
    secant steps on (gain, loudness after limiting), the first assuming no limiting."""
    ceiling = 10 ** (CEILING_DBTP / 20)
    measured = _loudness(rows, sample_rate)
    if not np.isfinite(measured):
        return _limit(rows, sample_rate, ceiling)
    gain_db, slope = TARGET_LUFS - measured, 1.0
    previous: tuple[float, float] | None = None
    for _ in range(LEVELING_PASSES):
        leveled = _limit(rows * 10 ** (gain_db / 20), sample_rate, ceiling)
        loudness = _loudness(leveled, sample_rate)
        if abs(TARGET_LUFS - loudness) <= LEVELING_TOLERANCE_LU:
            break
        if previous is not None and gain_db != previous[0]:
            slope = float(np.clip((loudness - previous[1]) / (gain_db - previous[0]), 0.1, 1.0))
        previous = gain_db, loudness
        gain_db += (TARGET_LUFS - loudness) / slope
    return leveled


def _loudness(rows: np.ndarray, sample_rate: int) -> float:
    """Integrated loudness in LUFS; -inf when there is none to measure."""
    if rows.shape[1] <= LOUDNESS_BLOCK_SECONDS * sample_rate:
        return -np.inf
    # pyloudnorm weighs at most 5 channels (ITU's 5.0 layout); more are measured as their mean.
    measured = rows.T if rows.shape[0] <= 5 else rows.mean(axis=0)
    with np.errstate(divide="ignore"):  # silent blocks are -inf, and gated out
        return float(pyloudnorm.Meter(sample_rate).integrated_loudness(measured))


def _limit(rows: np.ndarray, sample_rate: int, ceiling: float) -> np.ndarray:
    """`rows` (channels, frames) with one gain curve (all channels alike, to keep the stereo
    image) that keeps the oversampled peak at or under `ceiling`."""
    envelope = _peak_envelope(rows)
    needed_db = 20 * np.log10(np.maximum(envelope, ceiling) / ceiling)
    if not needed_db.any():
        return rows
    released = _release(needed_db, RELEASE_SECONDS * sample_rate)
    # A forward maximum then a backward mean over the look-ahead: every sample's reduction
    # is a mean of maxima over windows that all contain it, so it is never less than the
    # reduction that sample needs, and it ramps in over the look-ahead instead of jumping.
    window = max(1, round(LOOKAHEAD_SECONDS * sample_rate))
    held = maximum_filter1d(released, window, mode="nearest", origin=-(window // 2))
    reduction_db = uniform_filter1d(held, window, mode="nearest", origin=(window - 1) // 2)
    limited = rows * 10 ** (-reduction_db / 20)
    # The gain moved at the base rate, so what lies between samples may still poke over by
    # hundredths of a dB: trim the whole by that much.
    return limited * min(1.0, ceiling / _peak_envelope(limited).max())


def _release(needed_db: np.ndarray, time_constant: float) -> np.ndarray:
    """`needed_db` held and decaying exponentially (in dB) with `time_constant` samples:
    out[n] = max(needed[n], out[n - 1] * exp(-1 / time_constant)), without a Python loop,
    as the running maximum of log(needed[k]) + k / tc, less n / tc."""
    index = np.arange(needed_db.size) / time_constant
    with np.errstate(divide="ignore"):  # log(0) = -inf: samples that need nothing
        logs = np.log(needed_db)
    return np.exp(np.maximum.accumulate(logs + index) - index)


def _peak_envelope(rows: np.ndarray) -> np.ndarray:
    """Per frame, the largest absolute value over all channels (rows) of the signal
    oversampled `OVERSAMPLING` times between that frame and the next (polyphase FIR)."""
    taps = OVERSAMPLING * _TAPS_PER_PHASE + 1
    interpolator = signal.firwin(taps, 1 / OVERSAMPLING, window=("kaiser", 5.0)) * OVERSAMPLING
    # Phase p of the interpolated signal at frame n sits at n + p / OVERSAMPLING once the
    # filter's delay (_TAPS_PER_PHASE / 2 frames) is taken out; phase 0 is the frame itself.
    delay = _TAPS_PER_PHASE // 2
    frames = rows.shape[1]
    envelope = np.abs(rows).max(axis=0)
    for row in rows:
        for phase in range(1, OVERSAMPLING):
            between = np.convolve(row, interpolator[phase::OVERSAMPLING])[delay : delay + frames]
            np.maximum(envelope, np.abs(between), out=envelope)
    return envelope
