"""Voice adaptation with the WORLD vocoder: the honest stand-in for zero-shot voice cloning.

This is NOT neural voice cloning. No zero-shot cloning or voice-conversion weights can be
had here, so a "clone" is made in two measured steps:

1. `nearest_voice` picks the built-in voice whose d-vector (speaker embedding) lies
   closest to the reference speaker's; the text is synthesized with that voice.
2. `adapt` moves that speech toward the reference by WORLD analysis/resynthesis
   (`pyworld`: Harvest F0, CheapTrick envelope, D4C aperiodicity):
   - pitch: log-F0 of voiced frames mapped from its own mean and spread to the reference's;
   - formants: the spectral envelope warped along the frequency axis by the ratio of the
     two speakers' median third formants (vocal-tract length normalisation after Eide and
     Gish, 1996), so all formants move up or down together;
   - timbre: what still differs between the warped source and the reference average
     envelope, smoothed and bounded, applied to every frame as a fixed filter.
   Aperiodicity, timing and the words are kept.

The result keeps the built-in voice's articulation and rhythm and takes on the reference's
pitch, formant scale and broad spectral colour: it sounds like a relative of the reference,
not like the reference. `VoiceProfile` is what is measured from a speaker once, so a
service profiles its built-in voices at start and each reference once. The audio service's
voice conversion runs the same `adapt` on recorded speech; `analyse` and `resynthesize`
are the plain WORLD steps, for its other prosody transforms.

Blocking and transport-free: the functions take and return `Pcm` and numpy arrays, and
stop between their stages (each a second or more of CPU on a long recording) once the
caller has gone (`speechmesh.common.cancel`).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np

from speechmesh.common.audio.pcm import Pcm
from speechmesh.common.audio.resample import resample
from speechmesh.common.cancel import checkpoint
from speechmesh.common.errors import InvalidArgument, InvalidAudio
from speechmesh.speakers import SAMPLE_RATE as PROFILE_RATE
from speechmesh.speakers import SpeakerEmbedder

# WORLD analysis: 5 ms frames, F0 searched from low male to high female and child voices.
FRAME_PERIOD_MS = 5.0
F0_FLOOR_HZ = 60.0
F0_CEIL_HZ = 600.0
# A reference needs this much voiced speech to measure a voice from, and voiced frames must
# be at least this share of its non-silent ones (noise: about 7 %; speech: 40-70 %).
MIN_VOICED_SECONDS = 2.0
_MIN_VOICED_SHARE = 0.12
# Formant scale factors beyond this range (the spread of adult and child vocal tracts and
# then some) are clipped: larger warps cost more intelligibility than they buy likeness.
_WARP_RANGE = (0.75, 1.5)
# The timbre filter: smoothed over this many hertz, bounded to +-this many dB, and levelled
# over the formant band.
_FILTER_SMOOTH_HZ = 300.0
_FILTER_LIMIT_DB = 12.0
_FILTER_BAND_HZ = (200.0, 5000.0)
# Speech with at least this much voicing is pitch-mapped from its own F0 statistics.
_OWN_STATS_SECONDS = 1.0
_PEAK = 0.98
# What a built-in voice is measured from when it is a source (cloning) or a target (voice
# conversion): about 13 s of varied English speech. Half as much left Piper's Joe 2.4-3.0 s
# of voiced frames, too close to MIN_VOICED_SECONDS for a stable profile.
PROFILE_TEXT = (
    "The rainbow is a division of white light into many beautiful colors. "
    "Please call Stella and ask her to bring these things with her. "
    "The birch canoe slid on the smooth planks, and the boy was there when the sun rose. "
    "We also need a small plastic snake and a big toy frog for the kids."
)


@dataclass(frozen=True, eq=False)
class WorldParameters:
    """One recording's WORLD decomposition on FRAME_PERIOD_MS frames."""

    # Hz per frame, 0 where unvoiced.
    f0: np.ndarray
    # CheapTrick power envelope and D4C aperiodicity, each (frames, fft_size // 2 + 1).
    spectrum: np.ndarray
    aperiodicity: np.ndarray
    sample_rate: int

    @property
    def fft_size(self) -> int:
        return 2 * (int(self.spectrum.shape[1]) - 1)


@dataclass(frozen=True, eq=False)
class VoiceProfile:
    """What `nearest_voice` and `adapt` need to know of one speaker, measured once."""

    # Unit-length d-vector of the speaker's speech.
    embedding: np.ndarray
    # Mean and standard deviation of ln(F0 / Hz) over voiced frames.
    log_f0_mean: float
    log_f0_std: float
    # Mean natural-log power spectral envelope of voiced frames on the CheapTrick grid of
    # PROFILE_RATE audio: bin k at k * PROFILE_RATE / (2 * (len - 1)) Hz, up to 8 kHz.
    envelope: np.ndarray
    # Median F1, F2, F3 of voiced frames in Hz.
    formants_hz: np.ndarray
    voiced_seconds: float

    @property
    def f0_hz(self) -> float:
        """The speaker's typical (geometric-mean) F0 in Hz."""
        return float(np.exp(self.log_f0_mean))


def profile(pcm: Pcm, embedder: SpeakerEmbedder) -> VoiceProfile:
    """Measure the speaker of `pcm` (any rate; channels are averaged). Raises InvalidAudio
    when it holds too little voiced speech; 10-20 s of one person speaking is plenty."""
    import pyworld

    mono = pcm.mono()
    if mono.size < pcm.sample_rate // 10 or not np.all(np.isfinite(mono)):
        raise InvalidAudio("the reference audio is empty, shorter than 0.1 s or not finite")
    samples = resample(Pcm(mono, pcm.sample_rate), PROFILE_RATE).samples
    x = samples.astype(np.float64)
    checkpoint()
    f0, times = _f0(x, PROFILE_RATE)
    checkpoint()
    voiced = f0 > 0
    voiced_seconds = float(voiced.sum()) * FRAME_PERIOD_MS / 1000
    # Voiced frames are counted among the sounding ones: Harvest also voices stretches too
    # quiet to count as sound (a soft vowel, a hum under the noise), and counted apart from
    # them the share read over 100 %.
    sounding = _sounding(x, len(f0))
    share = np.sum(voiced & sounding) / max(int(sounding.sum()), 1)
    if voiced_seconds < MIN_VOICED_SECONDS or share < _MIN_VOICED_SHARE:
        raise InvalidAudio(
            f"the reference holds {voiced_seconds:.1f} s of voiced speech ({share:.0%} of its sound); a voice is "
            f"measured from at least {MIN_VOICED_SECONDS:.0f} s making up at least {_MIN_VOICED_SHARE:.0%}: "
            "send 10-20 s of one person speaking"
        )
    spectrum = pyworld.cheaptrick(x, f0, times, PROFILE_RATE, f0_floor=F0_FLOOR_HZ)
    checkpoint()
    log_f0 = np.log(f0[voiced])
    return VoiceProfile(
        embedding=embedder.embed(samples),
        log_f0_mean=float(log_f0.mean()),
        log_f0_std=float(log_f0.std()),
        envelope=np.log(spectrum[voiced] + 1e-16).mean(axis=0),
        formants_hz=_formants(samples, times[voiced]),
        voiced_seconds=voiced_seconds,
    )


def similarity(a: np.ndarray, b: np.ndarray) -> float:
    """Cosine similarity of two embeddings."""
    a, b = np.asarray(a, np.float64).ravel(), np.asarray(b, np.float64).ravel()
    return float(a @ b / (np.linalg.norm(a) * np.linalg.norm(b) + 1e-12))


def nearest_voice(reference: VoiceProfile, candidates: Mapping[str, VoiceProfile]) -> tuple[str, float]:
    """The candidate whose embedding is closest to the reference's, and that similarity."""
    if not candidates:
        raise InvalidArgument("there is no voice to choose from")
    scores = {voice: similarity(reference.embedding, candidate.embedding) for voice, candidate in candidates.items()}
    best = max(scores, key=scores.__getitem__)
    return best, scores[best]


def warp_factor(source: VoiceProfile, target: VoiceProfile) -> float:
    """The frequency-axis scale (> 1 moves formants up) from source to target: the ratio of
    their median F3, which depends mostly on vocal-tract length and little on the vowel
    (F1 and F2 of high voices are also pulled toward harmonics)."""
    return float(np.clip(target.formants_hz[2] / source.formants_hz[2], *_WARP_RANGE))


def adapt(
    pcm: Pcm, source: VoiceProfile, target: VoiceProfile, strength: float = 1.0, *, pitch_from_source: bool = False
) -> Pcm:
    """`pcm`, speech by the voice `source` was measured from, moved toward `target`; mono
    out at the same rate and length. `strength` 0 is plain WORLD resynthesis, 1 the full
    measured change (pitch, formant warp and filter are interpolated in between).

    Pitch is mapped from this speech's own log-F0 mean and spread, which suits a sentence
    synthesized apart from the speech its voice was profiled on. `pitch_from_source` maps
    it from `source`'s instead: every segment of one recording then gets the same mapping,
    and a segment spoken higher than the rest stays higher."""
    if not 0.0 <= strength <= 1.0:
        raise InvalidArgument(f"strength must be within [0, 1], not {strength}", param="strength")
    rate = pcm.sample_rate
    x = pcm.mono().astype(np.float64)
    if not analysable(x.size, rate):
        return Pcm(x.astype(np.float32), rate)
    parameters = analyse(x, rate)
    f0 = parameters.f0.copy()

    # Pitch: log F0 standardised by this speech's own statistics (the source voice's when
    # asked to, or when it has too little voicing to measure), rescaled to the target's.
    voiced = f0 > 0
    log_f0 = np.log(f0[voiced])
    if not pitch_from_source and log_f0.size * FRAME_PERIOD_MS / 1000 >= _OWN_STATS_SECONDS:
        own_mean, own_std = float(log_f0.mean()), max(float(log_f0.std()), 1e-3)
    else:
        own_mean, own_std = source.log_f0_mean, max(source.log_f0_std, 1e-3)
    mean = own_mean + strength * (target.log_f0_mean - own_mean)
    std = own_std * (target.log_f0_std / own_std) ** strength
    f0[voiced] = np.exp((log_f0 - own_mean) / own_std * std + mean)

    # Envelope: formants scaled, then the remaining average difference filtered away.
    alpha = warp_factor(source, target) ** strength
    freqs = np.arange(parameters.spectrum.shape[1]) * rate / parameters.fft_size
    log_spectrum = _warp(np.log(parameters.spectrum + 1e-16), alpha)
    log_spectrum += strength * _timbre_filter(source, target, alpha, freqs)

    out = resynthesize(WorldParameters(f0, np.exp(log_spectrum), parameters.aperiodicity, rate), x.size)
    # The input's loudness, and no sample beyond _PEAK.
    out *= np.sqrt(np.mean(x**2) / (np.mean(out**2) + 1e-20))
    peak = float(np.max(np.abs(out)))
    if peak > _PEAK:
        out *= _PEAK / peak
    return Pcm(out.astype(np.float32), rate)


def analysable(samples: int, rate: int) -> bool:
    """Whether a recording this long holds the few frames WORLD needs to analyse it."""
    return samples >= rate * FRAME_PERIOD_MS / 1000 * 4


def analyse(x: np.ndarray, rate: int) -> WorldParameters:
    """WORLD's decomposition of float64 mono `x` (at least `analysable`): Harvest F0,
    CheapTrick envelope, D4C aperiodicity, with a cancellation checkpoint between them."""
    import pyworld

    checkpoint()
    f0, times = _f0(x, rate)
    checkpoint()
    fft_size = pyworld.get_cheaptrick_fft_size(rate, F0_FLOOR_HZ)
    spectrum = pyworld.cheaptrick(x, f0, times, rate, f0_floor=F0_FLOOR_HZ, fft_size=fft_size)
    checkpoint()
    aperiodicity = pyworld.d4c(x, f0, times, rate, fft_size=fft_size)
    checkpoint()
    return WorldParameters(f0, spectrum, aperiodicity, rate)


def resynthesize(parameters: WorldParameters, samples: int) -> np.ndarray:
    """The float64 waveform of `parameters`, cut or padded to `samples` (WORLD's output
    ends on a frame boundary), at the level WORLD gives it: callers set the loudness."""
    import pyworld

    out = pyworld.synthesize(
        np.ascontiguousarray(parameters.f0),
        np.ascontiguousarray(parameters.spectrum),
        np.ascontiguousarray(parameters.aperiodicity),
        parameters.sample_rate,
        FRAME_PERIOD_MS,
    )
    return np.pad(out, (0, max(0, samples - out.size)))[:samples]


def _f0(x: np.ndarray, rate: int) -> tuple[np.ndarray, np.ndarray]:
    """F0 per frame (0 = unvoiced) and the frame times, by Harvest: slower than DIO (RTF
    about 0.2 against 0.01 on 2 cores) but its voicing keeps fricatives noisy and its F0
    has no octave errors on Piper joe; with DIO, Whisper lost words of the adapted speech
    (WER 0.04-0.08 -> 0.23-0.38 on one sentence)."""
    import pyworld

    return pyworld.harvest(x, rate, f0_floor=F0_FLOOR_HZ, f0_ceil=F0_CEIL_HZ, frame_period=FRAME_PERIOD_MS)


def _sounding(x: np.ndarray, frames: int) -> np.ndarray:
    """Per analysis frame of PROFILE_RATE audio: whether its 5 ms, centred where WORLD's
    frame is, are within 40 dB of the loudest frame's."""
    hop = round(PROFILE_RATE * FRAME_PERIOD_MS / 1000)
    centred = np.pad(x, (hop // 2, frames * hop))[: frames * hop]
    power = np.mean(centred.reshape(frames, hop) ** 2, axis=1)
    return np.asarray(power > 1e-4 * power.max())


def _formants(samples: np.ndarray, times: np.ndarray) -> np.ndarray:
    """Median F1-F3 over 25 ms frames centred at `times` (s) of PROFILE_RATE speech:
    autocorrelation LPC of order 12 at 10 kHz; a formant is a pole above 200 Hz with a
    bandwidth under 400 Hz."""
    rate, order, size = 10000, 12, 250
    x = resample(Pcm(samples, PROFILE_RATE), rate).samples.astype(np.float64)
    x = np.pad(np.append(x[0], x[1:] - 0.97 * x[:-1]), size // 2)  # pre-emphasis
    starts = np.clip(np.round(times * rate).astype(np.int64), 0, len(x) - size)
    frames = x[starts[:, None] + np.arange(size)] * np.hamming(size)
    energy = np.sqrt(np.mean(frames**2, axis=1))
    frames = frames[energy > 0.01 * energy.max()]
    companion = np.zeros((len(frames), order, order))
    companion[:, 0, :] = -_lpc(frames, order)[:, 1:]
    companion[:, np.arange(1, order), np.arange(order - 1)] = 1
    roots = np.linalg.eigvals(companion)
    freqs = np.angle(roots) * rate / (2 * np.pi)
    bandwidths = -np.log(np.abs(roots) + 1e-12) * rate / np.pi
    lowest = np.sort(np.where((freqs > 200) & (bandwidths < 400), freqs, np.inf), axis=1)[:, :3]
    lowest = lowest[np.all(np.isfinite(lowest), axis=1)]
    if len(lowest) == 0:
        raise InvalidAudio("no formants could be measured in the reference")
    return np.asarray(np.median(lowest, axis=0))


def _lpc(frames: np.ndarray, order: int) -> np.ndarray:
    """Autocorrelation-method LPC of each row by Levinson-Durbin: rows [1, a1, .., a_order]."""
    n = frames.shape[1]
    r = np.stack([np.sum(frames[:, : n - k] * frames[:, k:], axis=1) for k in range(order + 1)], axis=1)
    r[:, 0] = r[:, 0] * (1 + 1e-9) + 1e-12  # white-noise floor keeps the recursion stable
    a = np.zeros((len(frames), order + 1))
    a[:, 0] = 1
    error = r[:, 0].copy()
    for i in range(1, order + 1):
        k = -np.sum(a[:, :i] * r[:, i:0:-1], axis=1) / error
        a[:, 1 : i + 1] += k[:, None] * a[:, i - 1 :: -1]
        error *= 1 - k**2
    return a


def _warp(log_spectrum: np.ndarray, alpha: float) -> np.ndarray:
    """Every frame's envelope read at f / alpha (linear interpolation between bins)."""
    bins = log_spectrum.shape[1]
    position = np.clip(np.arange(bins) / alpha, 0, bins - 1)
    low = np.minimum(position.astype(np.int64), bins - 2)
    weight = position - low
    return np.asarray(log_spectrum[:, low] * (1 - weight) + log_spectrum[:, low + 1] * weight)


def _timbre_filter(source: VoiceProfile, target: VoiceProfile, alpha: float, freqs: np.ndarray) -> np.ndarray:
    """Log-power gain at `freqs`: the target's average envelope less the warped source's,
    smoothed, levelled over the formant band and bounded; faded to 0 above the profiles'
    8 kHz band, where nothing was measured."""
    grid = np.arange(len(source.envelope)) * PROFILE_RATE / (2 * (len(source.envelope) - 1))
    difference = target.envelope - np.interp(grid / alpha, grid, source.envelope)
    width = max(1, round(_FILTER_SMOOTH_HZ / grid[1]))
    window = np.hanning(2 * width + 1)
    smooth = np.convolve(np.pad(difference, width, mode="edge"), window / window.sum(), mode="valid")
    band = (grid >= _FILTER_BAND_HZ[0]) & (grid <= _FILTER_BAND_HZ[1])
    limit = _FILTER_LIMIT_DB * np.log(10) / 10
    gain = np.interp(freqs, grid, np.clip(smooth - smooth[band].mean(), -limit, limit))
    top = grid[-1]
    return np.asarray(gain * np.clip((top - freqs) / (0.1 * top), 0, 1))
