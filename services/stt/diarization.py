"""Speaker diarization: who spoke each word of a transcript.

Whisper's word timestamps already say where speech is, so no separate VAD or
segmentation model is needed: the words are grouped into clips of a few seconds (cut at
pauses, where turns change), each clip is embedded, and spectral clustering of the clips'
embeddings decides how many voices there are (the largest eigengap of the recording's own
affinity matrix) and which clip is whose. Words take their clip's speaker; short pieces of
speech merged into a clip are then embedded alone and move to a speaker they are clearly
closer to (quick exchanges); Whisper segments are split wherever the speaker changes.

Why not a distance threshold alone: on telephone speech the d-vector model puts every voice
close together (two real women 0.08-0.17 apart, one woman's clips up to 0.34 apart at
8 kHz), while synthetic voices lie 0.6-0.84 apart; a threshold tuned on one fails on the
other. The eigengap looks at how the recording's clips group, not at absolute distances, and
the embedder is CAM++ (speechmesh/speakers/campplus.py), which puts different real women
0.42-0.87 apart and one voice's clips within 0.24 (figures: docs/performance.md,
"Diarization on real speech"; bench/diarization_real.py).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

import numpy as np
from pydantic import BaseModel, Field

from services.stt.recognizer import SAMPLE_RATE, Segment, Transcript, Word
from speechmesh.common.cancel import checkpoint
from speechmesh.common.errors import InvalidArgument
from speechmesh.speakers import SpeakerEmbedder

# Clips embedded per call: enough to fill the embedder's batches of 64 windows (a clip of
# 1-2.5 s makes one to four), few enough that a cancelled call stops within a second.
_EMBED_BATCH_CLIPS = 32
# Clips clustered by the eigendecompositions at most (about 12 of them per recording, one per
# pruning percentile tried): an hour has some 1,500 clips, reduced to this many groups first.
_SPECTRAL_SIZE = 400
# The cosine distance below which two groups' centroids are one speaker, per embedder,
# measured on the real dialogs (bench/diarization_real.py; docs/performance.md). CAM++: one
# voice's clips split in two lie at most 0.24 apart, different women at least 0.42 (pyannote's
# call; June and the Russian woman 0.48), so 0.3. d-vector: one voice split in two 0.10-0.12
# (eigengap groups), two women at 8 kHz 0.16-0.17, but pyannote's two women 0.08-0.09, below
# one woman's own spread: there no distance works.
_SAME_SPEAKER_DISTANCE = {"campplus": 0.3, "dvector": 0.14}


class DiarizationSettings(BaseModel):
    """Defaults measured on real speech (bench/diarization_real.py: Asterisk prompts by three
    women and a man in dialogs at 8 kHz and 16 kHz, and pyannote's two-woman phone call) and
    kept passing on the synthetic dialogs of tests/test_diarization.py (Whisper word
    timestamps, 0.1-0.8 s between turns)."""

    embedder: Literal["campplus", "dvector"] = "campplus"
    """The speaker embedder (speechmesh/speakers/): CAM++ tells real voices apart where the
    d-vector does not (pyannote's two women on the phone 0.43 against 0.08 apart; three women
    at 16 kHz found as three, not two); the d-vector is kept for comparison
    (bench/diarization_real.py) and is what voice cloning and conversion measure with."""

    max_speakers: int = Field(default=8, ge=1, le=32)
    """The most speakers the eigengap may find when the request sets no `max_speakers`."""

    p_percentile_min: float = Field(default=0.4, gt=0, lt=1)
    """Affinity pruning searched from this percentile of each row up to 0.95 (spectralcluster's
    auto-tune, as in its Turn-to-Diarize configuration): each clip keeps its closest
    neighbours, and the percentile that gives the clearest eigengap is used. With it, every
    real dialog of two and three speakers (8 and 16 kHz, 1.5-3 s clips) got its count and
    100% of its clips right; the ICASSP 2018 recipe (row-max thresholding, Gaussian blur)
    missed the count on 4 of 7 dialogs."""

    same_speaker_distance: float | None = Field(default=None, gt=0, lt=2)
    """Speakers whose (duration-weighted) centroids lie closer than this cosine distance are
    one: the eigengap always finds at least two groups, so this decides one speaker against
    several. None: the value measured for the embedder (_SAME_SPEAKER_DISTANCE)."""

    pause_seconds: float = Field(default=0.15, ge=0)
    """A silence between two words at least this long starts a new clip (so does a new
    Whisper segment): turns change at pauses, so clips rarely straddle two speakers."""

    max_clip_seconds: float = Field(default=3.0, gt=0)
    """Speech without such a pause is cut into clips of at most this length, which bounds
    how much of a turn taken without a pause goes to the previous speaker. Clips of 1.5-3 s
    separated the real voices best: at 8 kHz one woman's 1-2.5 s clips spread up to 0.38
    apart, 1.5-3 s ones 0.27 (two women: 0.29 median either way)."""

    min_clip_seconds: float = Field(default=1.5, ge=0)
    """Shorter clips are merged into the neighbour across the weaker boundary: below about
    0.8 s the model sees one padded window, and short clips of one voice scatter. 1.0 s
    labelled 92% of a two-woman 8 kHz dialog's clips right, 1.5 s all of them."""

    min_speaker_seconds: float = Field(default=2.0, ge=0)
    """A speaker with less speech than this in total is folded into the nearest other
    speaker; a stray clip otherwise becomes a speaker of its own."""

    short_turn_seconds: float = Field(default=0.4, ge=0)
    """Pieces of speech between pauses from this long up to `min_clip_seconds` (0 = none) are
    also embedded alone once the clips are clustered, and move to the speaker they are clearly
    closer to: a quick "Hello?" or "Neither did I." of the other person would otherwise go to
    the clip it was merged into."""

    short_turn_margin: float = Field(default=0.1, ge=0, le=2)
    """How much closer (cosine similarity to the speakers' centroids) a short piece must be to
    another speaker than to its clip's to move there."""

    smooth: bool = True
    """Give a lone word the speaker of both its neighbours when no pause separates them."""


@dataclass
class _Clip:
    first: int  # index of its first word
    last: int  # index of its last word, inclusive
    start: float
    end: float
    opens_segment: bool  # its first word starts a Whisper segment

    @property
    def seconds(self) -> float:
        return self.end - self.start


class Diarizer:
    def __init__(self, embedder: SpeakerEmbedder, settings: DiarizationSettings) -> None:
        self._embedder = embedder
        self._settings = settings

    def diarize(
        self, audio: np.ndarray, transcript: Transcript, min_speakers: int = 0, max_speakers: int = 0
    ) -> Transcript:
        """A copy of `transcript` (of `audio`, float32 mono at SAMPLE_RATE) with a speaker
        on every word and segment, segments split where the speaker changes.

        `min_speakers`/`max_speakers` bound the number of speakers (0 = no bound); equal
        values force that number. Speakers are SPEAKER_00, SPEAKER_01, ... in order of
        first appearance.
        """
        if min_speakers < 0 or max_speakers < 0:
            raise InvalidArgument("min_speakers and max_speakers must not be negative.", param="min_speakers")
        if max_speakers and min_speakers > max_speakers:
            raise InvalidArgument("min_speakers must not exceed max_speakers.", param="min_speakers")
        words = transcript.words
        if not words:
            return transcript
        pieces = self._pieces(transcript.segments)
        clips = _merge_short(list(pieces), self._settings.min_clip_seconds)
        word_labels = [0] * len(words)
        if len(clips) > 1 and max_speakers != 1:
            vectors = self._embed(audio, clips)
            seconds = np.array([clip.seconds for clip in clips])
            labels = _cluster(vectors, seconds, self._settings, min_speakers, max_speakers)
            for clip, label in zip(clips, labels, strict=True):
                word_labels[clip.first : clip.last + 1] = [int(label)] * (clip.last - clip.first + 1)
            if len(np.unique(labels)) > 1:
                centroids = {int(label): _centroid(vectors, seconds, labels == label) for label in np.unique(labels)}
                word_labels = _kept(self._short_turns(audio, pieces, word_labels, centroids), word_labels, min_speakers)
        if self._settings.smooth:
            word_labels = _kept(_smooth(words, word_labels, self._settings.pause_seconds), word_labels, min_speakers)
        return _relabel(transcript, _names(word_labels))

    def _short_turns(
        self, audio: np.ndarray, pieces: Sequence[_Clip], word_labels: list[int], centroids: dict[int, np.ndarray]
    ) -> list[int]:
        """Word labels with each short piece of speech (between pauses, merged into a longer
        clip to be clustered) given the speaker it is clearly closest to on its own: a "Hello?"
        or "Neither did I." of the other person inside a quick exchange."""
        settings = self._settings
        short = [piece for piece in pieces if settings.short_turn_seconds <= piece.seconds < settings.min_clip_seconds]
        if not short or not settings.short_turn_seconds:
            return word_labels
        relabelled = list(word_labels)
        speakers = list(centroids)
        matrix = np.array([centroids[speaker] for speaker in speakers])
        for piece, vector in zip(short, self._embed(audio, short), strict=True):
            similarity = matrix @ vector
            current = speakers.index(word_labels[piece.first])  # a piece lies within one clip
            best = int(np.argmax(similarity))
            if best != current and similarity[best] - similarity[current] >= settings.short_turn_margin:
                relabelled[piece.first : piece.last + 1] = [speakers[best]] * (piece.last - piece.first + 1)
        return relabelled

    def _embed(self, audio: np.ndarray, clips: Sequence[_Clip]) -> np.ndarray:
        """One embedding per clip, in batches with a cancellation checkpoint between them
        (an hour of speech has some 1,500 clips)."""
        batches = []
        for start in range(0, len(clips), _EMBED_BATCH_CLIPS):
            checkpoint()
            batches.append(
                self._embedder.embed_many([_cut(audio, clip) for clip in clips[start : start + _EMBED_BATCH_CLIPS]])
            )
        return np.concatenate(batches)

    def _pieces(self, segments: Sequence[Segment]) -> list[_Clip]:
        """Runs of consecutive words, cut where a Whisper segment starts, at pauses and at
        the maximum clip length."""
        settings = self._settings
        clips: list[_Clip] = []
        index = 0
        for segment in segments:
            for n, word in enumerate(segment.words):
                clip = clips[-1] if clips else None
                if (
                    clip is None
                    or n == 0
                    or word.start - clip.end >= settings.pause_seconds
                    or word.end - clip.start > settings.max_clip_seconds
                ):
                    clips.append(_Clip(index, index, word.start, word.end, opens_segment=n == 0))
                else:
                    clip.last, clip.end = index, max(clip.end, word.end)
                index += 1
        return clips


def _kept(labels: list[int], before: list[int], min_speakers: int) -> list[int]:
    """`labels`, unless relabelling them lost a speaker the caller's minimum needs."""
    return labels if len(set(labels)) >= min(min_speakers, len(set(before))) else before


def _merge_short(clips: list[_Clip], min_seconds: float) -> list[_Clip]:
    """Merges the shortest clip into a neighbour until none is shorter than `min_seconds`."""
    while len(clips) > 1:
        shortest = min(range(len(clips)), key=lambda i: clips[i].seconds)
        if clips[shortest].seconds >= min_seconds:
            break
        # Across the weaker boundary: turns tend to change where Whisper starts a segment,
        # and otherwise at the longer pause.
        left = shortest - 1 if _boundary(clips, shortest) <= _boundary(clips, shortest + 1) else shortest
        a, b = clips[left], clips.pop(left + 1)
        clips[left] = _Clip(a.first, b.last, a.start, max(a.end, b.end), a.opens_segment)
    return clips


def _boundary(clips: Sequence[_Clip], i: int) -> tuple[bool, float]:
    """How strongly clip `i` is cut from clip `i - 1`; the ends of the list cannot be crossed."""
    if i <= 0 or i >= len(clips):
        return (True, np.inf)
    return (clips[i].opens_segment, clips[i].start - clips[i - 1].end)


def _cut(audio: np.ndarray, clip: _Clip) -> np.ndarray:
    return audio[max(0, round(clip.start * SAMPLE_RATE)) : max(0, round(clip.end * SAMPLE_RATE))]


def _cluster(
    vectors: np.ndarray, seconds: np.ndarray, settings: DiarizationSettings, min_speakers: int, max_speakers: int
) -> np.ndarray:
    """A speaker index per clip (0-based, any order): at least `min_speakers` and at most
    `max_speakers` of them (0 = unbounded), as far as there are clips to label."""
    vectors = vectors.astype(np.float64)
    floor = min(max(min_speakers, 1), len(vectors))
    ceiling = max(min(max_speakers or settings.max_speakers, len(vectors)), floor)
    if ceiling == 1:
        return np.zeros(len(vectors), dtype=int)
    labels = _spectral(vectors, settings, max(floor, 2), ceiling)
    if len(np.unique(labels)) < floor:  # k-means may leave a group empty
        labels = _agglomerative(vectors, floor)
    # A group of one clip is not a speaker the clustering can vouch for: its distance to the
    # others is one clip's, which for one voice reaches 0.24-0.27 (Piper's joe, Allison at
    # 16 kHz), against 0.10-0.16 between centroids of that voice's clips.
    while len(np.unique(labels)) > floor:
        present, sizes = np.unique(labels, return_counts=True)
        if sizes.min() > 1:
            break
        lone = int(np.flatnonzero(labels == present[sizes.argmin()])[0])
        others = [label for label in present if label != labels[lone]]
        labels[lone] = max(
            others, key=lambda label: float(vectors[lone] @ _centroid(vectors, seconds, labels == label))
        )
    # One speaker, or two groups of one speaker's clips: the eigengap cannot tell.
    while len(np.unique(labels)) > floor:
        present = np.unique(labels)
        centroids = np.array([_centroid(vectors, seconds, labels == label) for label in present])
        distance = 1 - centroids @ centroids.T
        np.fill_diagonal(distance, np.inf)
        a, b = np.unravel_index(np.argmin(distance), distance.shape)
        if distance[a, b] >= (settings.same_speaker_distance or _SAME_SPEAKER_DISTANCE[settings.embedder]):
            break
        labels[labels == present[b]] = present[a]
    # Fold speakers with too little speech into their nearest neighbour, smallest first,
    # never going below the count asked for.
    while True:
        present = np.unique(labels)
        totals = np.array([seconds[labels == label].sum() for label in present])
        if len(present) <= floor or totals.min() >= settings.min_speaker_seconds:
            return labels
        small = present[totals.argmin()]
        centroids_by_label = {
            label: _centroid(vectors, seconds, labels == label) for label in present if label != small
        }
        for i in np.flatnonzero(labels == small):
            labels[i] = max(centroids_by_label, key=lambda label: float(vectors[i] @ centroids_by_label[label]))


def _spectral(vectors: np.ndarray, settings: DiarizationSettings, low: int, high: int) -> np.ndarray:
    """`low`..`high` groups by spectralcluster (Turn-to-Diarize's recipe without its
    constraints): row-wise percentile pruning of the cosine affinity, binarised and
    symmetrised, the graph-cut Laplacian's largest eigengap, k-means on the normalised
    spectral embeddings; the pruning percentile auto-tuned per recording (NME, as NeMo does).
    Long recordings are first reduced to `_SPECTRAL_SIZE` groups by agglomerative clustering
    (its multi-stage mode), which bounds the eigendecompositions to that size."""
    if len(vectors) <= low + 1:  # too few clips for an eigengap to choose from
        return _agglomerative(vectors, low)
    # At least two clips a speaker for the eigengap to find: with 5 clips of one woman it
    # found 4 groups, whose one-clip centroids lie as far apart as her clips do (0.1-0.27).
    high = max(low, min(high, len(vectors) // 2))
    from spectralcluster import (  # type: ignore[import-untyped]  # no stubs or py.typed
        AutoTune,
        LaplacianType,
        RefinementName,
        RefinementOptions,
        SpectralClusterer,
        SymmetrizeType,
        ThresholdType,
    )

    clusterer = SpectralClusterer(
        min_clusters=low,
        max_clusters=high,
        refinement_options=RefinementOptions(
            thresholding_soft_multiplier=0.01,
            thresholding_type=ThresholdType.Percentile,
            thresholding_with_binarization=True,
            thresholding_preserve_diagonal=True,
            symmetrize_type=SymmetrizeType.Average,
            refinement_sequence=[RefinementName.RowWiseThreshold, RefinementName.Symmetrize],
        ),
        autotune=AutoTune(
            p_percentile_min=settings.p_percentile_min, p_percentile_max=0.95, init_search_step=0.05, search_level=1
        ),
        laplacian_type=LaplacianType.GraphCut,
        row_wise_renorm=True,
        custom_dist="cosine",
        max_spectral_size=_SPECTRAL_SIZE if len(vectors) > _SPECTRAL_SIZE else None,
    )
    return np.asarray(clusterer.predict(vectors), dtype=int)


def _agglomerative(vectors: np.ndarray, count: int) -> np.ndarray:
    """Exactly `count` groups (average linkage on cosine distance); cut_tree, not fcluster's
    maxclust, yields exactly that many even where merges tie."""
    from scipy.cluster.hierarchy import cut_tree, linkage

    if count >= len(vectors):
        return np.arange(len(vectors))
    if count <= 1:
        return np.zeros(len(vectors), dtype=int)
    return np.asarray(cut_tree(linkage(vectors, method="average", metric="cosine"), n_clusters=[count])[:, 0], int)


def _centroid(vectors: np.ndarray, seconds: np.ndarray, members: np.ndarray) -> np.ndarray:
    mean = (vectors[members] * seconds[members, None]).sum(axis=0)
    return mean / (np.linalg.norm(mean) + 1e-12)


def _smooth(words: Sequence[Word], labels: list[int], pause: float) -> list[int]:
    """Undoes one-word flips inside continuous speech, where no turn can change."""
    smoothed = list(labels)
    for i in range(1, len(words) - 1):
        if (
            labels[i - 1] == labels[i + 1] != labels[i]
            and words[i].start - words[i - 1].end < pause
            and words[i + 1].start - words[i].end < pause
        ):
            smoothed[i] = labels[i - 1]
    return smoothed


def _names(labels: Sequence[int]) -> list[str]:
    """SPEAKER_00, SPEAKER_01, ... numbered in order of first appearance."""
    order: dict[int, str] = {}
    for label in labels:
        order.setdefault(label, f"SPEAKER_{len(order):02d}")
    return [order[label] for label in labels]


def _relabel(transcript: Transcript, speakers: Sequence[str]) -> Transcript:
    """The transcript with each word's speaker set and segments split at speaker changes."""
    segments: list[Segment] = []
    labelled: list[Word] = []
    spoken = iter(speakers)
    for segment in transcript.segments:
        runs: list[list[Word]] = []
        for word in segment.words:
            word = dataclasses.replace(word, speaker=next(spoken))
            labelled.append(word)
            if runs and runs[-1][-1].speaker == word.speaker:
                runs[-1].append(word)
            else:
                runs.append([word])
        if not runs:  # a segment without word timings: kept whole, marked later
            segments.append(segment)
        segments.extend(
            dataclasses.replace(
                segment,
                start=run[0].start,
                end=run[-1].end,
                text="".join(word.text for word in run).strip(),
                words=tuple(run),
                speaker=run[0].speaker,
                # Decoder statistics stay; token ids belong to the whole segment only.
                tokens=segment.tokens if len(runs) == 1 else (),
            )
            for run in runs
        )
    segments = [segment if segment.words else _nearest_speaker(segment, labelled) for segment in segments]
    return dataclasses.replace(transcript, segments=tuple(segments))


def _nearest_speaker(segment: Segment, words: Sequence[Word]) -> Segment:
    middle = (segment.start + segment.end) / 2
    nearest = min(words, key=lambda word: abs((word.start + word.end) / 2 - middle))
    return dataclasses.replace(segment, speaker=nearest.speaker)
