"""What a stream's short first piece costs the listener: sentences synthesized whole and
as a stream cuts them, transcribed back, word error rates side by side.

    .venv/bin/python bench/tts_first_piece.py [--engines piper,kokoro] [--limits 0,12,25,30] [--rounds 2]

Per engine and first-piece limit (0: whole sentences), each sentence is cut as
`split_sentences(text, first_piece=limit)` cuts it for a stream, its pieces synthesized one
after the other by the engine object the service runs (bench/engine_calls.py) and joined,
then transcribed by Whisper base (beam 5, English given). Prints the mean WER over the set
per round (Piper adds noise, so its rounds differ; Kokoro's do not) and the median time the
engine took for the first piece, what the first audio waits for. WER: bench/stt_fidelity.py's
(lower case, punctuation dropped, single digits as words), so compare columns.
"""

from __future__ import annotations

import argparse
import statistics
import time

import numpy as np
from engine_calls import VOICES, load_synthesizers
from stt_fidelity import errors, words

from services.stt.settings import SttSettings
from services.stt.weights import install_whisper_base, whisper_base_path
from services.tts.synthesizer import SynthesisOptions, Synthesizer
from speechmesh.common.audio.pcm import Pcm
from speechmesh.common.audio.resample import resample
from speechmesh.common.sentences import split_sentences

SENTENCES = (
    "The capital of France is Paris.",
    "The sky on a clear day is a deep shade of blue.",
    "Speech services are judged by how fast they answer the first request of the day.",
    "Please remember to bring your passport and your ticket to the airport tomorrow.",
    "My favourite season is autumn because the leaves turn red and gold.",
    "The meeting has been moved to Thursday afternoon at three o'clock.",
    "Your order has shipped and should arrive within five business days.",
    "If the light turns green, you may cross the street carefully.",
    "Thank you for calling, an agent will be with you shortly.",
    "We walked along the river until the sun went down behind the hills.",
    "The train to Boston leaves from platform nine every morning.",
    "Open the window, because it is getting very warm in this room.",
)


def error_rate(reference: str, hypothesis: str) -> float:
    return errors(words(reference, "en"), words(hypothesis, "en")) / len(words(reference, "en"))


def spoken(engine: Synthesizer, voice: str, pieces: list[str]) -> tuple[Pcm, float]:
    """The pieces' speech joined, and the seconds the first piece took."""
    blocks: list[Pcm] = []
    first = 0.0
    started = time.perf_counter()
    for piece in pieces:
        blocks.extend(engine.synthesize(piece, SynthesisOptions(voice, "en", 1.0)))
        first = first or time.perf_counter() - started
    return Pcm(np.concatenate([block.samples for block in blocks]), blocks[0].sample_rate), first


def main(engines: list[str], limits: list[int], rounds: int) -> None:
    from faster_whisper import WhisperModel

    settings = SttSettings()
    install_whisper_base(settings.models_dir)
    whisper = WhisperModel(str(whisper_base_path(settings.models_dir)), compute_type="int8")
    synthesizers = load_synthesizers(engines)
    print(f"{len(SENTENCES)} sentences, {rounds} rounds; WER per round, first piece synthesis p50")
    for model in engines:
        engine, voice = synthesizers[model], VOICES[model]
        for limit in limits:
            rates, firsts = [], []
            for _ in range(rounds):
                total = 0.0
                for sentence in SENTENCES:
                    pcm, first = spoken(engine, voice, split_sentences(sentence, "en", first_piece=limit))
                    firsts.append(first)
                    segments, _ = whisper.transcribe(resample(pcm, 16000).samples, language="en", beam_size=5)
                    total += error_rate(sentence, "".join(segment.text for segment in segments))
                rates.append(total / len(SENTENCES))
            label = f"{limit} characters" if limit else "whole sentences"
            print(
                f"{model:8} {label:16} WER {' / '.join(f'{rate:.3f}' for rate in rates)}   "
                f"first piece {statistics.median(firsts) * 1000:5.0f} ms"
            )


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--engines", default="piper,kokoro")
    parser.add_argument("--limits", default="0,12,25,30", help="first-piece limits in characters; 0: whole")
    parser.add_argument("--rounds", type=int, default=2)
    arguments = parser.parse_args()
    main(arguments.engines.split(","), [int(n) for n in arguments.limits.split(",")], arguments.rounds)
