"""Speaker diarization: who spoke each word of a transcript.

Whisper's word timestamps already say where speech is, so no separate VAD or
segmentation model is needed: the words are grouped into clips of a few seconds (cut at
pauses, where turns change), each clip is embedded, and agglomerative clustering on
cosine distance decides how many voices there are and which clip is whose. Words take
their clip's speaker, and Whisper segments are split wherever the speaker changes.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from pydantic import BaseModel, Field

from services.stt.recognizer import SAMPLE_RATE, Segment, Transcript, Word
from speechmesh.common.cancel import checkpoint
from speechmesh.common.errors import InvalidArgument
from speechmesh.speakers import SpeakerEmbedder

# Clips embedded per call: enough to fill the embedder's batches of 64 windows (a clip of
# 1-2.5 s makes one to four), few enough that a cancelled call stops within a second.
_EMBED_BATCH_CLIPS = 32


class DiarizationSettings(BaseModel):
    """Defaults tuned with the d-vector embedder on Whisper tiny.en word timestamps, over five
    synthetic dialogs of 3-4 voices with 0.1-0.7 s between turns (tests/test_diarization.py)."""

    threshold: float = Field(default=0.5, gt=0, lt=2)
    """Average-linkage cosine distance at which clustering stops merging: groups of clips
    further apart are different speakers. Clips of one voice joined at 0.16-0.3, different
    voices at 0.6-0.84; 0.45-0.55 gave the same answers, 0.4 split voices in two."""

    pause_seconds: float = Field(default=0.15, ge=0)
    """A silence between two words at least this long starts a new clip (so does a new
    Whisper segment): turns change at pauses, so clips rarely straddle two speakers."""

    max_clip_seconds: float = Field(default=2.5, gt=0)
    """Speech without such a pause is cut into clips of at most this length, which bounds
    how much of a turn taken without a pause goes to the previous speaker."""

    min_clip_seconds: float = Field(default=1.0, ge=0)
    """Shorter clips are merged into the neighbour across the weaker boundary: below about
    0.8 s the model sees one padded window, and one voice's 1 s clips already lie up to 0.6
    apart. Longer minimums merged more clips across turns and did worse."""

    min_speaker_seconds: float = Field(default=2.0, ge=0)
    """A speaker with less speech than this in total is folded into the nearest other
    speaker; a stray clip otherwise becomes a speaker of its own."""

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
        clips = self._clips(transcript.segments)
        labels = np.zeros(len(clips), dtype=int)
        if len(clips) > 1 and max_speakers != 1:
            vectors = self._embed(audio, clips)
            seconds = np.array([clip.seconds for clip in clips])
            labels = _cluster(vectors, seconds, self._settings, min_speakers, max_speakers)
        word_labels = [0] * len(words)
        for clip, label in zip(clips, labels, strict=True):
            word_labels[clip.first : clip.last + 1] = [int(label)] * (clip.last - clip.first + 1)
        if self._settings.smooth:
            word_labels = _smooth(words, word_labels, self._settings.pause_seconds)
        return _relabel(transcript, _names(word_labels))

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

    def _clips(self, segments: Sequence[Segment]) -> list[_Clip]:
        """Clips of consecutive words, cut where a Whisper segment starts, at pauses and at
        the maximum length; short ones merged into a neighbour."""
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
        return _merge_short(clips, settings.min_clip_seconds)


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
    """A speaker index per clip (0-based, any order)."""
    from scipy.cluster.hierarchy import cut_tree, fcluster, linkage

    # float64: scipy's cosine distances of float32 unit vectors can come out a hair below 0.
    tree = linkage(vectors.astype(np.float64), method="average", metric="cosine")
    labels: np.ndarray = fcluster(tree, t=settings.threshold, criterion="distance") - 1
    found = labels.max() + 1
    floor = min(max(min_speakers, 1), len(vectors))
    wanted = min(max(found, floor), max_speakers or found)
    if wanted != found:
        # cut_tree, not fcluster's maxclust: it yields exactly `wanted` even where merges tie.
        labels = cut_tree(tree, n_clusters=wanted).ravel()
    # Fold speakers with too little speech into their nearest neighbour, smallest first,
    # never going below the count asked for.
    while True:
        present = np.unique(labels)
        totals = np.array([seconds[labels == label].sum() for label in present])
        if len(present) <= floor or totals.min() >= settings.min_speaker_seconds:
            return labels
        small = present[totals.argmin()]
        centroids = {label: _centroid(vectors, seconds, labels == label) for label in present if label != small}
        for i in np.flatnonzero(labels == small):
            labels[i] = max(centroids, key=lambda label: float(vectors[i] @ centroids[label]))


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
