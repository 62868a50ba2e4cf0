"""From a clone request to encoded audio, transport-free: decode the reference, clone, encode.

Only the first `max_reference_seconds` of the reference are decoded: a voice is measured
from 10-30 s of speech, and WORLD's Harvest costs ~0.2 s of CPU per second of audio, so
the rest of a long upload would cost minutes for no better a voice. Blocking; the
servicer runs it in the thread pool, and it stops between stages once the caller has
gone (`speechmesh.common.cancel`).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import IO

from services.tts.cloner import CloneResult, VoiceCloner
from services.tts.pipeline import base_language
from speechmesh.common.audio.decode import decode_audio
from speechmesh.common.audio.encode import encode_audio
from speechmesh.common.audio.formats import OutputSpec
from speechmesh.common.cancel import checkpoint


@dataclass(frozen=True)
class EncodedClone:
    audio: bytes
    # The output's sample rate: the one asked for, the format's fixed one, or the clone's.
    sample_rate: int
    result: CloneResult


def clone_speech(
    cloner: VoiceCloner,
    reference: bytes | IO[bytes],
    text: str,
    language: str,
    output: OutputSpec,
    max_reference_seconds: float,
) -> EncodedClone:
    """`text` spoken in the voice of `reference` (an audio file), encoded as `output`;
    `language` "" = detected from the text."""
    pcm = decode_audio(reference, max_seconds=max_reference_seconds, keep_first=True)
    checkpoint()
    result = cloner.clone(pcm, text, base_language(language) if language else "", 1.0)
    checkpoint()
    audio = encode_audio(
        result.pcm,
        output.format,
        sample_rate=output.sample_rate,
        channels=output.channels,
        bitrate_kbps=output.bitrate_kbps,
    )
    rate = output.sample_rate or output.format.fixed_rate or result.pcm.sample_rate
    return EncodedClone(audio, rate, result)
