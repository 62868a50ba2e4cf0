"""Diarization on real speech: DER, JER and speaker counts of the clustering as it was
(a cosine-distance threshold tuned on TTS voices) and as it is (spectral clustering with an
eigengap), on the same transcripts in the same run, and the WER of those transcripts.

    .venv/bin/python bench/diarization_real.py [--decoding batched|sequential]

Dialogs (tests/real_speech.py, shared with tests/test_diarization_real.py): Asterisk
prompts of 3-5 s by Allison (woman, en), June (woman, fr) and Carlo (man, it), alternating
with 0.3-0.8 s gaps, at 8 kHz (WAV) and 16 kHz (G.722): two women, a woman and a man, the
three of them (9 turns), and Allison alone (4 turns, must stay one speaker). Also pyannote's
sample (30 s real phone call of two women, RTTM reference) when `var/eval-audio/pyannote`
holds it. Each dialog goes as a WAV at its own rate through the STT pipeline
(`services.stt.pipeline.transcribe_file`, Whisper base, the service's default settings,
language detected), once; both clusterings then diarize that transcript. Scores with
pyannote.metrics (0.25 s collar, overlap scored): the reference turns are the prompts cut
to their speech; the hypothesis is the diarized segments (first to last word), so missed
speech also counts what the recogniser left out. `confusion` is the part that is the
diarizer's. WER with jiwer against the Asterisk transcripts (lower case, punctuation
dropped; diarization leaves the words as they are). Each dialog is also diarized with
`min_speakers = max_speakers =` the true count.
"""

from __future__ import annotations

import argparse
import re
import statistics
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from services.stt import diarization  # noqa: E402
from services.stt.diarization import DiarizationSettings, Diarizer  # noqa: E402
from services.stt.pipeline import FileBounds, RecognitionRequest, transcribe_file  # noqa: E402
from services.stt.recognizer import RecognitionOptions, Transcript  # noqa: E402
from services.stt.registry import build_engines  # noqa: E402
from services.stt.settings import SttSettings, WhisperSettings  # noqa: E402
from speechmesh.speakers.dvector import DVectorEmbedder  # noqa: E402
from tests import real_speech  # noqa: E402
from tests.real_speech import Dialog, Score  # noqa: E402

# The diarizer before issue 18: average-linkage clustering cut at cosine distance 0.5, 1-2.5 s clips.
BEFORE = DiarizationSettings(min_clip_seconds=1.0, max_clip_seconds=2.5)
THRESHOLD = 0.5


def threshold_cluster(vectors, seconds, settings, min_speakers, max_speakers):  # type: ignore[no-untyped-def]
    """The clustering as it was (services/stt/diarization.py before issue 18)."""
    from scipy.cluster.hierarchy import cut_tree, fcluster, linkage

    tree = linkage(vectors.astype(np.float64), method="average", metric="cosine")
    labels = fcluster(tree, t=THRESHOLD, criterion="distance") - 1
    found = labels.max() + 1
    floor = min(max(min_speakers, 1), len(vectors))
    wanted = min(max(found, floor), max_speakers or found)
    if wanted != found:
        labels = cut_tree(tree, n_clusters=wanted).ravel()
    while True:
        present = np.unique(labels)
        totals = np.array([seconds[labels == label].sum() for label in present])
        if len(present) <= floor or totals.min() >= settings.min_speaker_seconds:
            return labels
        small = present[totals.argmin()]
        centroids = {
            label: diarization._centroid(vectors, seconds, labels == label) for label in present if label != small
        }
        for i in np.flatnonzero(labels == small):
            labels[i] = max(centroids, key=lambda label: float(vectors[i] @ centroids[label]))


def diarize(diarizer: Diarizer, dialog: Dialog, transcript: Transcript, before: bool, count: int = 0) -> Score:
    spectral = diarization._cluster
    if before:
        diarization._cluster = threshold_cluster  # type: ignore[assignment]
    try:
        result = diarizer.diarize(dialog.audio(), transcript, count, count)
    finally:
        diarization._cluster = spectral
    assert [word.text for word in result.words] == [word.text for word in transcript.words]
    return real_speech.score(dialog, [(segment.start, segment.end, segment.speaker) for segment in result.segments])


def normalized(text: str) -> str:
    return " ".join(re.sub(r"[^\w\s']", " ", text.lower().replace("-", " ")).split())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--decoding", choices=["batched", "sequential"], default="batched")
    args = parser.parse_args()
    import jiwer

    settings = SttSettings(whisper=WhisperSettings(decoding=args.decoding))
    engines = build_engines(settings)
    engines.load()
    _, recognizer = engines.recognizers.get(settings.default_model)
    embedder = DVectorEmbedder(threads=settings.whisper.threads)
    embedder.load()
    before, after = Diarizer(embedder, BEFORE), Diarizer(embedder, DiarizationSettings())
    bounds = FileBounds(settings.max_audio_seconds, settings.window_seconds)

    dialogs = real_speech.evaluation_set()
    sample = real_speech.pyannote_sample()
    if sample is None:
        print("(pyannote sample not in var/eval-audio/pyannote: skipped)")
    else:
        dialogs.append(sample)
    print(f"{'dialog':20} {'band':6} {'s':>5} {'true':>4}  {'WER':>6}  before | after | after, count given")
    ders: dict[str, list[float]] = {"before": [], "after": [], "given": []}
    references, hypotheses = [], []
    seconds = 0.0
    for dialog in dialogs:
        request = RecognitionRequest(RecognitionOptions(word_timestamps=True))
        transcript = transcribe_file(recognizer, None, dialog.wav(), request, bounds)
        if dialog.name == "pyannote sample":
            reference = real_speech.pyannote_text()
        else:
            reference = " ".join(turn.text for turn in dialog.turns)
        references.append(normalized(reference))
        hypotheses.append(normalized(transcript.text))
        wer = jiwer.wer(references[-1], hypotheses[-1])
        started = time.perf_counter()
        scores = {
            "before": diarize(before, dialog, transcript, True),
            "after": diarize(after, dialog, transcript, False),
        }
        seconds += time.perf_counter() - started
        scores["given"] = diarize(after, dialog, transcript, False, len(dialog.speakers))
        for name, score in scores.items():
            ders[name].append(score.der)
        print(
            f"{dialog.name:20} {dialog.band:6} {dialog.seconds:5.1f} {len(dialog.speakers):4}  {wer:6.3f}  "
            + " | ".join(str(score) for score in scores.values())
        )
    print(
        f"mean DER: before {statistics.mean(ders['before']):.1%}, after {statistics.mean(ders['after']):.1%}, "
        f"count given {statistics.mean(ders['given']):.1%}"
    )
    print(f"WER over all dialogs: {jiwer.wer(references, hypotheses):.3f}")
    print(f"diarization (both clusterings, embedding included): {seconds:.1f} s for {len(dialogs)} dialogs")


if __name__ == "__main__":
    main()
