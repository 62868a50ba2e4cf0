"""How close `world-adapt` brings speech to a reference speaker, and what it costs.

    .venv/bin/python bench/tts_clone.py [--base piper]

References are ~13 s recordings of speakers that are not among the base voices (Festival
slt and kal, eSpeak's US female and male, Kokoro's jf_alpha reading English), plus Piper's
Joe as a control that is a base voice. For each, the cloner picks the nearest base voice,
synthesizes a new text with it and adapts it with WORLD. Printed per reference: the base
voice, the d-vector cosine similarity to the reference of the base voice's speech (the
baseline) and of the clone, their difference, and the clone's wall time against plain
synthesis of the same text with the same voice in this process (the cost of profiling the
reference, the adaptation and the two similarity measurements). The first clone also
profiles every base voice; it is timed separately.
"""

from __future__ import annotations

import argparse
import statistics
import time

import numpy as np

from services.tts.registry import build_engines
from services.tts.settings import TtsSettings
from services.tts.synthesizer import SynthesisOptions
from speechmesh.common.audio.pcm import Pcm

REFERENCE_TEXT = (
    "My grandmother grew tomatoes behind the house every summer. She said the secret was patience, "
    "a little salt in the soil, and talking to the plants in the morning. I never believed her, "
    "but her tomatoes were the best in the village."
)
TEXT = "This sentence was never spoken by the reference speaker. It is synthesized and adapted."
REFERENCES = [
    ("festival", "festival-us-slt"),
    ("festival", "festival-kal"),
    ("espeak", "espeak-en-us-f"),
    ("espeak", "espeak-en-us-m"),
    ("kokoro", "jf_alpha"),
    ("piper", "en_US-joe-medium"),
]


def speak(engine, voice: str, text: str) -> Pcm:
    blocks = list(engine.synthesize(text, SynthesisOptions(voice, "en", 1.0)))
    return Pcm(np.concatenate([block.samples for block in blocks]), blocks[0].sample_rate)


def main(base_models: list[str]) -> None:
    models = sorted({model for model, _ in REFERENCES} | set(base_models))
    settings = TtsSettings(engines=models, clone_base_models=base_models, log_json=False, log_level="WARNING")
    engines = build_engines(settings)
    engines.load()
    synthesizers = engines.synthesizers.engines()
    _, cloner = engines.cloner("")
    print(f"base models: {', '.join(base_models)}; text: {len(TEXT)} characters")
    started = time.perf_counter()
    cloner.clone(speak(synthesizers["festival"], "festival-us-slt", REFERENCE_TEXT), TEXT, "en", 1.0)
    print(f"first clone (profiles every base voice): {time.perf_counter() - started:.1f} s\n")
    print(
        f"{'reference':18} {'base voice':18} {'base sim':>9} {'clone sim':>10} {'gain':>6} {'clone s':>8} {'cost':>6}"
    )
    gains = []
    for model, voice in REFERENCES:
        reference = speak(synthesizers[model], voice, REFERENCE_TEXT)
        started = time.perf_counter()
        result = cloner.clone(reference, TEXT, "en", 1.0)
        clone_s = time.perf_counter() - started
        started = time.perf_counter()
        speak(synthesizers[result.base_model], result.base_voice, TEXT)
        plain_s = time.perf_counter() - started
        gain = result.similarity - result.base_similarity
        if result.base_voice != voice:  # a control's gain is 0 by design
            gains.append(gain)
        print(
            f"{voice:18} {result.base_voice:18} {result.base_similarity:9.3f} {result.similarity:10.3f} "
            f"{gain:+6.3f} {clone_s:8.2f} {clone_s / plain_s:5.1f}x"
        )
    print(f"\nmedian gain, controls left out {statistics.median(gains):+.3f}")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--base", default="piper", help="comma-separated base models")
    main(parser.parse_args().base.split(","))
