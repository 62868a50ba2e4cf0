"""Diarization on real speech: DER, JER and speaker counts of the clustering as it was
(a cosine-distance threshold tuned on TTS voices, d-vector) and as it is (spectral clustering
with an eigengap) on each embedder (d-vector, CAM++), on the same transcripts in the same
run, and the WER of those transcripts.

    .venv/bin/python bench/diarization_real.py [--decoding batched|sequential]

Dialogs (tests/real_speech.py, shared with tests/test_diarization_real.py): Asterisk
prompts of 3-7 s by Allison (woman, en and es), June (woman, fr), Carlo (man, it) and a
Russian woman, alternating with 0.3-0.8 s gaps, at 8 kHz (WAV) and 16 kHz (G.722): two
women, a woman and a man, three people, three women (9 turns each), Allison alone (4 turns)
and Allison in English and Spanish (6 turns), both of which are one speaker. Also pyannote's
sample (30 s real phone call of two women, RTTM reference) when `var/eval-audio/pyannote`
holds it. Each dialog goes as a WAV at its own rate through the STT pipeline
(`services.stt.pipeline.transcribe_file`, Whisper base, the service's default settings,
language detected), once; every clustering then diarizes that transcript. Scores with
pyannote.metrics (0.25 s collar, overlap scored): the reference turns are the prompts cut
to their speech; the hypothesis is the diarized segments (first to last word), so missed
speech also counts what the recogniser left out: the `floor` column labels every word with
its reference speaker, which is the best word-timed spans can score. `confusion` is the part
that is the diarizer's. WER with jiwer against the Asterisk transcripts (lower case,
punctuation dropped; diarization leaves the words as they are; none for Russian). Each dialog
is also diarized with `min_speakers = max_speakers =` the true count.
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
from speechmesh.speakers.campplus import CamPlusEmbedder  # noqa: E402
from speechmesh.speakers.dvector import DVectorEmbedder  # noqa: E402
from tests import real_speech  # noqa: E402
from tests.real_speech import Dialog, Score  # noqa: E402

# The diarizer before issue 18: average-linkage clustering cut at cosine distance 0.5, 1-2.5 s clips.
BEFORE = DiarizationSettings(embedder="dvector", min_clip_seconds=1.0, max_clip_seconds=2.5, short_turn_seconds=0)
THRESHOLD = 0.5
# DER (speakers found) per dialog: the clustering before issue 18 (d-vector), spectral
# clustering on the d-vector and on CAM++ (the default; also without its short-turn pass),
# CAM++ told the true count, and the floor: the words labelled from the reference.
COLUMNS = ("before", "d-vector", "CAM++, no short turns", "CAM++", "CAM++, count given", "floor")


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
    return spans_score(dialog, result)


def spans_score(dialog: Dialog, result: Transcript) -> Score:
    return real_speech.score(dialog, [(segment.start, segment.end, segment.speaker) for segment in result.segments])


def floor(dialog: Dialog, transcript: Transcript) -> Score:
    """The score of the transcript's words each labelled with the reference speaker it
    overlaps most: what word-timed spans cannot do better than (overlap, timing)."""
    turns = dialog.turns
    speakers = [
        max(turns, key=lambda turn: min(word.end, turn.end) - max(word.start, turn.start)).speaker
        for word in transcript.words
    ]
    return spans_score(dialog, diarization._relabel(transcript, speakers))


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
    dvector = DVectorEmbedder(threads=settings.whisper.threads)
    dvector.load()
    campplus = CamPlusEmbedder(settings.models_dir, threads=settings.whisper.threads)
    campplus.load()
    diarizers = {
        "before": Diarizer(dvector, BEFORE),
        "d-vector": Diarizer(dvector, DiarizationSettings(embedder="dvector")),
        "CAM++, no short turns": Diarizer(campplus, DiarizationSettings(embedder="campplus", short_turn_seconds=0)),
        "CAM++": Diarizer(campplus, DiarizationSettings(embedder="campplus")),
    }
    bounds = FileBounds(settings.max_audio_seconds, settings.window_seconds)

    dialogs = real_speech.evaluation_set()
    sample = real_speech.pyannote_sample()
    if sample is None:
        print("(pyannote sample not in var/eval-audio/pyannote: skipped)")
    else:
        dialogs.append(sample)
    print(f"{'dialog':22} {'band':6} {'s':>5} {'true':>4}  {'WER':>5}  " + " | ".join(COLUMNS))
    ders: dict[str, list[float]] = {name: [] for name in COLUMNS}
    references, hypotheses = [], []
    seconds = dict.fromkeys(diarizers, 0.0)
    for dialog in dialogs:
        request = RecognitionRequest(RecognitionOptions(word_timestamps=True))
        transcript = transcribe_file(recognizer, None, dialog.wav(), request, bounds)
        if dialog.name == "pyannote sample":
            reference = real_speech.pyannote_text()
        else:
            reference = " ".join(turn.text for turn in dialog.turns) if all(t.text for t in dialog.turns) else ""
        wer = "    -"
        if reference:  # the Russian prompts come without a transcript
            references.append(normalized(reference))
            hypotheses.append(normalized(transcript.text))
            wer = f"{jiwer.wer(references[-1], hypotheses[-1]):5.3f}"
        scores = {}
        for name, diarizer in diarizers.items():
            started = time.process_time()  # CPU of every thread: steadier than wall time on shared cores
            scores[name] = diarize(diarizer, dialog, transcript, name == "before")
            seconds[name] += time.process_time() - started
        scores["CAM++, count given"] = diarize(diarizers["CAM++"], dialog, transcript, False, len(dialog.speakers))
        scores["floor"] = floor(dialog, transcript)
        for name, score in scores.items():
            ders[name].append(score.der)
        print(
            f"{dialog.name:22} {dialog.band:6} {dialog.seconds:5.1f} {len(dialog.speakers):4}  {wer}  "
            + " | ".join(f"{score.der:5.1%} {score.speakers}" for score in scores.values())
        )
        print(" " * 22 + "   confusion: " + " | ".join(f"{score.confusion:5.1%}" for score in scores.values()))
    print("mean DER: " + ", ".join(f"{name} {statistics.mean(values):.1%}" for name, values in ders.items()))
    print(f"WER over the dialogs with a transcript: {jiwer.wer(references, hypotheses):.3f}")
    print("diarization CPU (embedding included): " + ", ".join(f"{name} {t:.1f} s" for name, t in seconds.items()))


if __name__ == "__main__":
    main()
