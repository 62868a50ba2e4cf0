"""Echo and reverberation removal: WPE (nara-wpe) for reverberation, a cepstral canceller for echoes.

Reverberation ("reverb"): weighted prediction error (WPE, Nakatani et al. 2010; nara-wpe's
`wpe_v8`, one frequency bin at a time) in the STFT domain. Each bin of every channel is
predicted from the bins of all channels `delay` to `delay + taps` frames earlier, and what
is predictable (the late reverberation, a delayed, decaying copy of the past) is subtracted.
It is linear and keeps the direct sound and the early reflections (the first `delay`
frames, 32-48 ms). Alone, on one channel, it takes out little (the tail after offsets drops
by 0.3-1.3 dB at intensity 1-2, 2 dB with 400 ms of taps), so from intensity 3 a
late-reverberation suppressor follows (Lebart et al.
2001): the tail still left is predicted from the output's own power `LATE_MS` earlier,
decayed at the room's rate, and subtracted from each bin's power (`oversubtraction` times,
gain floored at `floor_db`). The room's decay time (RT60) is measured from the audio: the
fastest free decays after offsets (`DECAY_*`; 0.60 s measured for a 0.6 s room, 0.21 s for
dry speech); where there are none (continuous sound) the suppressor does nothing. The STFT
is a Hann window of 64 ms (`FRAME_SECONDS`, rounded up to a fast FFT size: 512 samples at 8
kHz, 1024 at 16 kHz, 3072 at 48 kHz) with a hop of a quarter window (16 ms), so a setting
means the same time at every rate.

| intensity | WPE span (taps at 16 ms) | delay     | iterations | suppressor: oversubtraction, floor |
|-----------|--------------------------|-----------|------------|------------------------------------|
| 1         | 96 ms (6)                | 3 (48 ms) | 1          | off                                |
| 2         | 160 ms (10)              | 2 (32 ms) | 2          | off                                |
| 3         | 240 ms (15)              | 2 (32 ms) | 3          | 1.0, -10 dB                        |
| 4         | 320 ms (20)              | 2 (32 ms) | 3          | 1.5, -15 dB                        |
| 5         | 400 ms (25)              | 2 (32 ms) | 3          | 2.0, -20 dB                        |

Measured on Piper speech in a synthetic room (RT60 0.6 s, DRR 0 dB): SI-SDR against the dry
speech 0.5 dB -> 0.8 / 1.3 / 2.8 / 3.2 / 3.4 dB for intensity 1-5, and the energy in the
pauses after words, -27.6 dB under the speech -> -27.9 / -28.9 / -33.3 / -34.8 / -35.7 dB.
In an RT60 0.8 s room: 0.4 -> 0.8 (1) / 3.5 (3) / 4.1 (5) dB, tails -21.5 -> -29.5 dB (5).

Echo ("echo"): a discrete, delayed copy of the signal (a slap-back off a far wall, a delay
effect, a loop-back) `ECHO_LAGS` (50-800 ms) later, which WPE's taps do not reach. The real
cepstrum of the whole segment peaks at the echo's lag with about half its gain
(log|1 + g e^(-jwd)| = g cos(wd) - ...); where that peak passes the intensity's threshold
the echo is removed with the exact inverse of an echo, the recursive comb x[n] = y[n] -
g x[n - d], its gain the one that leaves the least energy (which also suits an echo duller
than its source). Each pass removes the strongest echo left, so a repeating (feedback) echo
or several reflections take several passes. The comb was chosen over WPE with taps at the
echo's lag by measurement, on speech with a 0.5 echo at 250 ms: the comb brings SI-SDR from
6 to 42 dB (to 22 dB when the echo is low-passed or its lag falls half-way between
samples), WPE from 6 to 6.5 dB. Measured (Piper speech): 0.5 at 250 ms, 0.3 at 120 ms and
0.7 at 400 ms all go to 41-47 dB at every intensity; what intensity changes is how faint
an echo is still found, as the table says (a 0.1 echo: kept by 1 and 2, removed from 3).

| intensity | smallest echo removed: cepstral peak (echo gain) | passes |
|-----------|--------------------------------------------------|--------|
| 1         | 0.10 (0.2)                                       | 1      |
| 2         | 0.07 (0.14)                                      | 1      |
| 3         | 0.05 (0.1)                                       | 2      |
| 4         | 0.04 (0.08)                                      | 2      |
| 5         | 0.03 (0.06)                                      | 3      |

Speech without echo peaks at 0.02 at most (Piper speech, dry and in rooms of RT60 0.3-1.2
s); a false detection would cost little, the least-energy gain then being ~0. "both"
removes echoes first (the comb and the room commute, and WPE then sees a plain room).

What it does NOT remove: noise (hum, hiss, babble: the denoiser's job); early reflections
and a small room's colouring (the first 32-48 ms are kept by design: they carry the voice,
and undoing them needs the room's response); the acoustic echo of a call's far end (a
speaker-phone's loudspeaker heard by its microphone), which needs the far-end signal this
API does not receive; an echo that changes within the segment (a moving source), or lags
under 50 ms (heard as colouring) or over 800 ms. Music with a bar-long repetition at an
echo-like lag can be mistaken for an echo.

Level: the output's loudest frames (the top `LEVEL_PERCENTILE`, where the direct sound
rules) are brought back to the input's level, so a segment does not get quieter because
its tail went away (measured at intensity 5: the loudest frames within 0.1 dB, the whole
0.8 dB quieter, which is the tails gone).

Cost (one BLAS thread, which `dereverb` sets: WPE's products are too small for more), CPU
seconds per 10 s of audio, reverb 1 / both 3 / both 5: 16 kHz mono 0.10 / 0.23 / 0.32; 48
kHz mono 0.26 / 0.61 / 0.80; 48 kHz stereo 0.34 / 1.1 / 1.9; echo alone 0.02-0.04. A 60 s
segment of 48 kHz stereo at both 5 takes 13 s and about 320 MB of arrays at the peak (the
STFT kept as complex64, one channel's float64 transform at a time, WPE one bin at a time);
the process's RSS rose from 320 to 520 MB.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import scipy.fft
import scipy.ndimage
import scipy.optimize
import scipy.signal

from speechmesh.common.errors import InvalidArgument

MODEL_ID = "wpe"
KINDS = ("echo", "reverb", "both")
RATES = (8000, 48000)  # the accepted range, inclusive
FRAME_SECONDS = 0.064
LATE_MS = 48.0  # where the suppressor's "late" reverberation starts (3 hops)
# Free decays after offsets: at least this long and this deep, measured on 10 ms frames.
DECAY_MIN_SECONDS = 0.12
DECAY_MIN_DB = 15.0
# The room's decay is the fastest a sound can die away in it; speech that fades slower
# gives longer decays, so the fast end of the measured ones is the room's.
DECAY_PERCENTILE = 25
RT60_RANGE = (0.2, 1.2)
ECHO_LAGS = (0.05, 0.8)  # seconds
MAX_ECHO_GAIN = 0.95  # the comb's inverse is stable below 1
LEVEL_PERCENTILE = 90


@dataclass(frozen=True)
class ReverbSettings:
    span_ms: float  # how far back WPE's prediction reaches
    delay: int  # frames kept before the prediction starts (early reflections)
    iterations: int
    oversubtraction: float  # 0: no suppressor
    floor_db: float


@dataclass(frozen=True)
class EchoSettings:
    min_peak: float  # cepstral peak an echo must reach to be removed
    passes: int


REVERB = {
    1: ReverbSettings(96, 3, 1, 0.0, 0.0),
    2: ReverbSettings(160, 2, 2, 0.0, 0.0),
    3: ReverbSettings(240, 2, 3, 1.0, -10.0),
    4: ReverbSettings(320, 2, 3, 1.5, -15.0),
    5: ReverbSettings(400, 2, 3, 2.0, -20.0),
}
ECHO = {
    1: EchoSettings(0.10, 1),
    2: EchoSettings(0.07, 1),
    3: EchoSettings(0.05, 2),
    4: EchoSettings(0.04, 2),
    5: EchoSettings(0.03, 3),
}


class WpeDereverberator:
    def __init__(self) -> None:
        self._wpe: Any = None

    def load(self) -> None:
        from nara_wpe.wpe import wpe_v8
        from threadpoolctl import threadpool_limits

        self._wpe = wpe_v8
        # WPE's products are small (taps x channels rows, one bin at a time): OpenBLAS's
        # threads cost more than they give (7x slower on 2 busy cores, measured). Set once
        # for the process: a per-call limit is process-wide too, and two overlapping calls
        # restoring each other's saved counts left the service on the wrong one.
        threadpool_limits(1, "blas")

    def warm_up(self) -> None:
        noise = np.random.default_rng(0).standard_normal((16000, 2)).astype(np.float32)
        self.dereverb(0.1 * noise, 16000, "both", 3)

    def dereverb(self, audio: np.ndarray, sample_rate: int, kind: str, intensity: int) -> np.ndarray:
        _check(sample_rate, kind, intensity)
        samples = np.asarray(audio, np.float32)
        if not samples.size:
            return samples.copy()
        planar = samples.reshape(len(samples), -1).T.astype(np.float64)  # (channels, frames)
        out = planar
        if kind in ("echo", "both"):
            out = _remove_echoes(out, sample_rate, ECHO[intensity])
        if kind in ("reverb", "both"):
            out = self._remove_reverb(out, sample_rate, REVERB[intensity])
        out = _match_level(planar, out, sample_rate)
        return out.T.reshape(samples.shape).astype(np.float32)

    def _remove_reverb(self, planar: np.ndarray, rate: int, settings: ReverbSettings) -> np.ndarray:
        size = scipy.fft.next_fast_len(round(FRAME_SECONDS * rate), real=True)
        hop = size // 4
        stft = scipy.signal.ShortTimeFFT(scipy.signal.windows.hann(size, sym=False), hop, rate)
        frames = planar.shape[1]
        padded = np.pad(planar, ((0, 0), (0, max(0, size - frames))))  # the STFT needs a window's worth
        # complex64 halves the largest array; WPE's per-bin solves are well conditioned in it.
        spectra = np.stack([stft.stft(channel).astype(np.complex64) for channel in padded], axis=1)  # (F, D, T)
        taps = max(1, round(settings.span_ms / 1000 * rate / hop))
        self._wpe(spectra, taps=taps, delay=settings.delay, iterations=settings.iterations, inplace=True)
        if settings.oversubtraction:
            rt60 = _decay_time(planar.mean(axis=0), rate)
            if rt60 is not None:
                spectra *= _late_gain(spectra, rt60, hop / rate, settings)[:, None, :]
        channels = [stft.istft(spectra[:, d].astype(np.complex128), k1=padded.shape[1]) for d in range(len(padded))]
        return np.stack(channels)[:, :frames]


def _check(sample_rate: int, kind: str, intensity: int) -> None:
    if not RATES[0] <= sample_rate <= RATES[1]:
        raise InvalidArgument(f"sample rate {sample_rate} Hz is outside {RATES[0]}-{RATES[1]} Hz", param="sample_rate")
    if kind not in KINDS:
        raise InvalidArgument(f"type must be one of {', '.join(KINDS)}", param="type")
    if intensity not in REVERB:
        raise InvalidArgument("intensity must be 1-5", param="intensity")


def _late_gain(spectra: np.ndarray, rt60: float, hop_seconds: float, settings: ReverbSettings) -> np.ndarray:
    """Spectral-subtraction gain (F, T) that takes out the tail still left: its power is the
    power `LATE_MS` earlier, decayed by 60 dB per `rt60` seconds."""
    power = np.mean(np.abs(spectra) ** 2, axis=1)
    # Smoothing over three hops keeps single-frame dips from turning into musical noise.
    power = scipy.ndimage.uniform_filter1d(power, 3, axis=-1)
    lag = max(1, round(LATE_MS / 1000 / hop_seconds))
    decay = np.exp(-2 * (3 * np.log(10) / rt60) * lag * hop_seconds)
    late = np.zeros_like(power)
    late[:, lag:] = decay * power[:, :-lag]
    gain = 1 - settings.oversubtraction * late / np.maximum(power, np.finfo(np.float32).tiny)
    return np.maximum(gain, 10 ** (settings.floor_db / 20)).astype(np.float32)


def _decay_time(mono: np.ndarray, rate: int) -> float | None:
    """The room's RT60 in seconds from the free decays after offsets, or None without any."""
    hop = rate // 100
    frames = len(mono) // hop
    if frames < 3:
        return None
    energy = np.mean(mono[: frames * hop].reshape(frames, hop) ** 2, axis=1)
    level = scipy.ndimage.uniform_filter1d(10 * np.log10(energy + 1e-12), 3)
    slopes = [slope for slope in _decay_slopes(level) if slope < 0]
    if not slopes:
        return None
    steepest = float(np.percentile(slopes, DECAY_PERCENTILE))  # dB per 10 ms frame
    return float(np.clip(-60 / (steepest * 100), *RT60_RANGE))


def _decay_slopes(level: np.ndarray) -> list[float]:
    """Least-squares slopes (dB a frame) of the runs where `level` keeps falling, long and
    deep enough, above the floor 70 dB under the loudest frame (below it is noise)."""
    floor = level.max() - 70
    step = np.diff(level)
    min_frames = round(DECAY_MIN_SECONDS * 100)
    slopes = []
    start = 0
    while start < len(step):
        if step[start] >= 0:
            start += 1
            continue
        end = start
        # A rise under 0.5 dB is measurement noise, not the next sound.
        while end < len(step) and step[end] < 0.5:
            end += 1
        run = level[start : end + 1]
        if end - start >= min_frames and run[0] - run[-1] >= DECAY_MIN_DB and run[-1] > floor:
            slopes.append(float(np.polyfit(np.arange(len(run)), run, 1)[0]))
        start = end + 1
    return slopes


def _remove_echoes(planar: np.ndarray, rate: int, settings: EchoSettings) -> np.ndarray:
    out = planar
    for _ in range(settings.passes):
        lag = _echo_lag(out.mean(axis=0), rate, settings.min_peak)
        if lag is None:
            break
        gain = _echo_gain(out.mean(axis=0), lag)
        out = np.stack([_inverse_comb(channel, lag, gain) for channel in out])
    return out


def _echo_lag(mono: np.ndarray, rate: int, min_peak: float) -> int | None:
    """The lag in samples of the strongest echo, from the real cepstrum of the whole
    segment, or None if its peak is under `min_peak` or the segment is too short."""
    low, high = (round(seconds * rate) for seconds in ECHO_LAGS)
    high = min(high, len(mono) // 4)  # an echo must repeat enough of the segment to be measured
    if high <= low:
        return None
    size = scipy.fft.next_fast_len(2 * len(mono), real=True)  # no wrap-around of the echo
    magnitude = np.abs(scipy.fft.rfft(mono, size))
    if not magnitude.any():
        return None
    cepstrum = scipy.fft.irfft(np.log(magnitude + 1e-9 * magnitude.max()), size)
    lag = low + int(np.argmax(cepstrum[low:high]))
    return lag if cepstrum[lag] >= min_peak else None


def _echo_gain(mono: np.ndarray, lag: int) -> float:
    """The comb gain that leaves the least energy: the echo's gain (the dry signal is
    uncorrelated with itself `lag` later), or its average over frequency if filtered."""
    result = scipy.optimize.minimize_scalar(
        lambda gain: float(np.sum(_inverse_comb(mono, lag, gain) ** 2)),
        bounds=(0.0, MAX_ECHO_GAIN),
        method="bounded",
        options={"xatol": 1e-3},
    )
    return float(result.x)


def _inverse_comb(signal: np.ndarray, lag: int, gain: float) -> np.ndarray:
    """x[n] = y[n] - gain * x[n - lag], a block of `lag` samples at a time (each block
    depends only on the one before it), so it runs at numpy speed for any lag."""
    out = signal.copy()
    for start in range(lag, len(out), lag):
        end = min(start + lag, len(out))
        out[start:end] -= gain * out[start - lag : end - lag]
    return out


def _match_level(before: np.ndarray, after: np.ndarray, rate: int) -> np.ndarray:
    """`after` scaled so its loudest frames, where the direct sound dominates, are as loud
    as the input's (removing a tail would otherwise make the segment quieter)."""
    hop = max(1, rate // 50)
    frames = before.shape[1] // hop
    if frames == 0:
        return after
    loud_in = np.mean(before[:, : frames * hop].reshape(len(before), frames, hop) ** 2, axis=(0, 2))
    loud_out = np.mean(after[:, : frames * hop].reshape(len(after), frames, hop) ** 2, axis=(0, 2))
    top = loud_in >= np.percentile(loud_in, LEVEL_PERCENTILE)
    if loud_out[top].sum() <= 0:
        return after
    return after * float(np.clip(np.sqrt(loud_in[top].sum() / loud_out[top].sum()), 0.5, 2.0))
