"""REPET-SIM + HPSS music separator: signal processing, no weights.

The separator any server can run when no trained separation model is installed, listed
under its own model id so that no client takes it for one. Vocals are what does not
repeat: each spectrogram frame's repeating background is the median of its `NEIGHBOURS`
most similar frames at least `REPEAT_SECONDS` away (REPET-SIM, Rafii & Pardo 2012, as in
librosa's vocal-separation example). For stereo, centre-panned vocals are absent from the
side signal, so a bin's vocal part is also bounded by its centred part, |mid| - |side|.
The accompaniment is split by median-filter HPSS (FitzGerald 2010): percussive -> drums,
the harmonic part below `BASS_BAND` -> bass, the rest -> other.

Every stem is a soft mask of the mixture's STFT, the same for every channel, and the masks
partition it (they sum to one in every bin), so the stems add up to the input; the last
stem is the input minus the others, which makes that exact. STFT: 44.1 kHz, Hann window of
4096 samples (93 ms, as librosa's examples use at 22.05 kHz; 10.8 Hz bins), hop 1024 (23 ms).
It works on music built from repeating bars (a loop, a groove); in a through-composed
piece the vocals stem gets whatever does not repeat, instruments included.
"""

from __future__ import annotations

from typing import Any

import numpy as np

MODEL_ID = "repet-hpss"
SAMPLE_RATE = 44100
N_FFT = 4096
HOP = 1024
FREQUENCIES = np.fft.rfftfreq(N_FFT, 1 / SAMPLE_RATE)
STEMS = {2: ("vocals", "accompaniment"), 4: ("vocals", "drums", "bass", "other")}
# Nearer frames are similar because a sung note is sustained, and their median would keep
# the voice in the background.
REPEAT_SECONDS = 2.0
NEIGHBOURS = 10
# A voice has next to no energy below 100 Hz, a kick drum and a bass most of theirs: all
# of it goes to the accompaniment (REPET's own high-pass).
VOCAL_FLOOR_HZ = 100.0
MASK_POWER = 2.0
HPSS_KERNEL = 31  # frames (0.72 s) for the harmonic filter, bins (334 Hz) for the percussive
# Harmonic content below the first edge is bass, above the second other, with a raised
# cosine between: a bass line's upper harmonics fade into the rest.
BASS_BAND = (150.0, 250.0)


class DspSeparator:
    sample_rate = SAMPLE_RATE
    stem_counts = tuple(STEMS)

    def __init__(self) -> None:
        self._librosa: Any = None

    def load(self) -> None:
        import librosa

        self._librosa = librosa

    def warm_up(self) -> None:
        # The first call compiles librosa's numba kernels: a second or two.
        noise = np.random.default_rng(0).standard_normal((5 * SAMPLE_RATE, 2)).astype(np.float32)
        self.separate(0.1 * noise, 4)

    def separate(self, audio: np.ndarray, stems: int) -> dict[str, np.ndarray]:
        samples = np.asarray(audio, np.float32)
        planar = samples.reshape(len(samples), -1).T  # (channels, frames)
        # librosa warns about input shorter than its window; zeros after it change nothing.
        padded = np.pad(planar, ((0, 0), (0, max(0, N_FFT - len(samples)))))
        spectra = self._librosa.stft(padded, n_fft=N_FFT, hop_length=HOP)
        names = STEMS[stems]
        masks = self._masks(spectra, stems)
        out = {
            name: self._masked(spectra, mask, padded.shape[1])[:, : len(samples)]
            for name, mask in zip(names[:-1], masks, strict=True)
        }
        out[names[-1]] = planar - sum(out.values(), np.zeros_like(planar))
        return {name: stem.T.reshape(samples.shape) for name, stem in out.items()}

    def _masks(self, spectra: np.ndarray, stems: int) -> list[np.ndarray]:
        """The masks of every stem but the last, which is the rest."""
        mid = np.abs(spectra.mean(axis=0))
        side = np.abs(spectra[0] - spectra[1]) / 2 if len(spectra) == 2 else None
        vocals = self._vocal_mask(mid, side)
        if stems == 2:
            return [vocals]
        accompaniment = 1.0 - vocals
        percussive = self._percussive_mask(mid * accompaniment)
        low = _low_pass(FREQUENCIES)[:, None]
        return [vocals, accompaniment * percussive, accompaniment * (1.0 - percussive) * low]

    def _vocal_mask(self, mid: np.ndarray, side: np.ndarray | None) -> np.ndarray:
        vocal = mid - np.minimum(mid, self._repeating(mid))
        if side is not None:
            vocal = np.minimum(vocal, np.maximum(mid - side, 0.0))
        vocal[FREQUENCIES < VOCAL_FLOOR_HZ] = 0.0
        mask: np.ndarray = self._librosa.util.softmask(vocal, mid - vocal, power=MASK_POWER)
        return mask

    def _repeating(self, magnitude: np.ndarray) -> np.ndarray:
        """Each frame's repeating part: the median of its nearest neighbours."""
        frames = magnitude.shape[1]  # at least 5: separate() pads input to one window
        # librosa's rule (width < (frames - 1) / 2): a short segment takes nearer neighbours.
        width = min(int(REPEAT_SECONDS * SAMPLE_RATE / HOP), (frames - 1) // 2 - 1)
        rec = _recurrence(np.sqrt(magnitude), width, min(NEIGHBOURS, frames - 2 * width + 1))
        repeating: np.ndarray = self._librosa.decompose.nn_filter(magnitude, rec=rec, aggregate=np.median)
        return repeating

    def _percussive_mask(self, magnitude: np.ndarray) -> np.ndarray:
        """librosa.decompose.hpss(magnitude, mask=True)'s percussive mask, its median
        filters run a row at a time: scipy's 1-D median filter is ten times faster."""
        harmonic = _median_rows(magnitude, HPSS_KERNEL)
        percussive = _median_rows(magnitude.T, HPSS_KERNEL).T
        mask: np.ndarray = self._librosa.util.softmask(percussive, harmonic, power=MASK_POWER, split_zeros=True)
        return mask

    def _masked(self, spectra: np.ndarray, mask: np.ndarray, frames: int) -> np.ndarray:
        stem: np.ndarray = self._librosa.istft(spectra * mask, n_fft=N_FFT, hop_length=HOP, length=frames)
        return stem.astype(np.float32)


def _recurrence(features: np.ndarray, width: int, k: int) -> Any:
    """The recurrence matrix nn_filter takes: column i marks frame i's k most similar
    frames by cosine at least `width` frames away, as librosa.segment.recurrence_matrix
    builds it with mode="distance" (with its default mode it keeps the first k candidates
    in time order, not the nearest). Built from one matrix product: librosa's sparse edits,
    row by row, take seconds on a minute of audio. The features are compressed magnitudes:
    on raw ones the loudest bins (voice, bass) alone decide which frames look alike, and
    drum hits find no repeat."""
    import scipy.sparse

    frames = features.shape[1]
    unit = features / np.maximum(np.linalg.norm(features, axis=0), 1e-12)
    similarity = unit.T @ unit
    index = np.arange(frames, dtype=np.int32)
    lag = np.abs(index[:, None] - index[None, :])
    similarity[lag < width] = -np.inf
    nearest = np.argpartition(-similarity, k - 1, axis=1)[:, :k]
    rows = scipy.sparse.csr_matrix(
        (np.ones(nearest.size, np.float32), nearest.ravel(), np.arange(0, nearest.size + 1, k)),
        shape=(frames, frames),
    )
    return rows.T


def _median_rows(magnitude: np.ndarray, size: int) -> np.ndarray:
    import scipy.ndimage

    return np.stack([scipy.ndimage.median_filter(row, size=size, mode="reflect") for row in magnitude])


def _low_pass(frequencies: np.ndarray) -> np.ndarray:
    low, high = BASS_BAND
    position = np.clip((frequencies - low) / (high - low), 0.0, 1.0)
    return (0.5 + 0.5 * np.cos(np.pi * position)).astype(np.float32)
