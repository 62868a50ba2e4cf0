"""Speech translation: the speech transcribed (language detected), the text translated, and
the translation spoken by a voice of the target language.

Which way the text goes: the same language is kept as it is; any language toward English
is Whisper's translate task on the speech itself (a second STT call on the same upload);
a pair a translator holds (Apertium's) is translated as text. Anything else is refused
with the targets this source can reach. `preserve_voice` moves the spoken translation
toward the original speaker with WORLD (pitch, formants, timbre: the voice conversion of
`speechmesh/speakers/world.py`), measured on the upload.
"""

from __future__ import annotations

import functools
import itertools
from collections.abc import AsyncGenerator, AsyncIterator, Iterator
from dataclasses import dataclass
from typing import IO

import numpy as np

from services.chat.processors import VoiceMeter
from services.chat.translators import Translators
from services.chat.upstream import Upstream
from services.chat.voices import VoiceChooser
from speechmesh.common.audio.decode import decode_audio
from speechmesh.common.audio.encode import encode_audio
from speechmesh.common.audio.formats import OutputSpec
from speechmesh.common.audio.pcm import Pcm
from speechmesh.common.chunks import chunked
from speechmesh.common.errors import InvalidArgument, InvalidAudio
from speechmesh.common.limits import CHUNK_BYTES
from speechmesh.common.registry import EngineRegistry
from speechmesh.convert import audio_metadata
from speechmesh.runtime.blocking import Blocking
from speechmesh.speakers import world
from speechmesh.v1 import chat_pb2, common_pb2, stt_pb2

SPEECH_RATE = 24_000
PROFILE_SECONDS = 30.0
# preserve_voice's WORLD segments, where their cuts are looked for, and their crossfade.
SEGMENT_SECONDS = 20.0
SEARCH_SECONDS = 4.0
FADE_SECONDS = 0.01


@dataclass(frozen=True)
class TranslateLimits:
    max_seconds: float
    stt_model: str


class SpeechTranslator:
    def __init__(
        self,
        translators: Translators,
        voices: VoiceChooser,
        upstream: Upstream,
        blocking: Blocking,
        meters: EngineRegistry[VoiceMeter],
        limits: TranslateLimits,
    ) -> None:
        self._translators = translators
        self._voices = voices
        self._upstream = upstream
        self._blocking = blocking
        self._meters = meters
        self._limits = limits

    def targets(self, source: str = "") -> list[str]:
        """The languages speech in `source` ('' = any) can be translated into here."""
        pairs = self._translators.pairs()
        return sorted({"en", *(t for s, t in pairs if not source or s == source), *([source] if source else [])})

    async def translate(
        self, config: chat_pb2.SpeechTranslateConfig, upload: IO[bytes], output: OutputSpec
    ) -> AsyncGenerator[chat_pb2.SpeechTranslateResponse, None]:
        target = (config.target_language or "en").lower()
        source_given = config.source_language.lower()
        if target not in self.targets(source_given):
            raise InvalidArgument(self._unsupported(source_given or "any language", target), param="target_language")
        # Before any work: a meter that is loading or unavailable says so now.
        meter = self._meters.get("")[1] if config.preserve_voice else None
        heard = await self._transcribe(upload, source_given, stt_pb2.TRANSCRIBE, config.max_seconds)
        original = heard.text.strip()
        if not original:
            raise InvalidAudio("No speech was heard in the audio.", param="file")
        source = heard.language or source_given or "en"
        translator = "none"
        if source == target:
            translated = original
        elif target == "en":
            # Whisper translates the speech itself: no transcription errors to carry over.
            translator = "whisper"
            translated = (await self._transcribe(upload, source, stt_pb2.TRANSLATE, config.max_seconds)).text.strip()
        elif self._translators.holder(source, target):
            translator = "apertium"
            translated = await self._blocking.run(self._translators.translate, original, source, target)
        else:
            raise InvalidArgument(self._unsupported(source, target), param="target_language")
        voice, model = await self._voices.choose(config.voice, "", target)
        speech, result = await self._upstream.speak(translated, voice, model, SPEECH_RATE)
        if meter is not None:
            speech = await self._blocking.run(_preserved, meter, upload, speech)
        encode = functools.partial(
            encode_audio, sample_rate=output.sample_rate, channels=output.channels, bitrate_kbps=output.bitrate_kbps
        )
        audio = await self._blocking.run(encode, speech, output.format)
        yield chat_pb2.SpeechTranslateResponse(
            translation=chat_pb2.SpeechTranslation(
                original_text=original,
                translated_text=translated,
                source_language=source,
                target_language=target,
                source_duration_ms=heard.duration_ms,
                translator=translator,
                voice=result.voice or voice,
            )
        )
        for message in _sent(audio, output, speech):
            yield message

    def _unsupported(self, source: str, target: str) -> str:
        pairs = ", ".join(f"{s}->{t}" for s, t in sorted(self._translators.pairs()))
        return (
            f"Speech in {source} cannot be translated to '{target}' here. Supported: any language -> en "
            f"(Whisper), and these pairs: {pairs or 'none'}."
        )

    async def _transcribe(
        self, upload: IO[bytes], language: str, task: stt_pb2.RecognitionTask, max_seconds: float
    ) -> stt_pb2.RecognizeResponse:
        limit = min(max_seconds or self._limits.max_seconds, self._limits.max_seconds)
        config = stt_pb2.RecognitionConfig(
            model=self._limits.stt_model, language=language, task=task, max_seconds=limit
        )
        return await self._upstream.transcribe(config, _read(upload))


def _preserved(meter: VoiceMeter, upload: IO[bytes], speech: Pcm) -> Pcm:
    """`speech` moved toward the voice of the speaker in `upload`."""
    upload.seek(0)
    # The first half-minute measures a voice as well as the whole would.
    original = decode_audio(upload, sample_rate=SPEECH_RATE, max_seconds=PROFILE_SECONDS, keep_first=True)
    try:
        speaker = world.profile(original, meter)
        spoken = world.profile(
            Pcm(speech.samples[: int(PROFILE_SECONDS * speech.sample_rate)], speech.sample_rate), meter
        )
    except InvalidAudio as error:
        raise InvalidAudio(
            f"'preserve_voice' needs a few seconds of voiced speech to measure the voice: {error}",
            param="preserve_voice",
        ) from None
    return _adapted(speech, spoken, speaker)


def _adapted(speech: Pcm, spoken: world.VoiceProfile, speaker: world.VoiceProfile) -> Pcm:
    """WORLD over segments: whole, it holds ~7.6 MiB a second of speech (9 GiB for 20
    minutes); a segment's worth is bounded. Segments are cut at the quietest 10 ms near
    every SEGMENT_SECONDS (a pause between words) and joined by a 10 ms crossfade: WORLD's
    pulses restart with each segment, so a long crossfade of voiced speech would mix two
    pulse trains. Every segment maps pitch from the same measured statistics, so the voice
    does not jump between them."""
    rate, samples = speech.sample_rate, speech.mono()
    fade = int(FADE_SECONDS * rate)
    cuts = _quiet_cuts(samples, rate)
    out = np.zeros(samples.size, np.float32)
    for start, end in itertools.pairwise(cuts):
        begin = max(0, start - fade)
        piece = samples[begin:end]
        adapted = world.adapt(Pcm(piece, rate), spoken, speaker, pitch_from_source=True).samples[: piece.size]
        weight = np.ones(piece.size, np.float32)
        if start > 0:
            weight[:fade] = np.linspace(0, 1, fade, endpoint=False, dtype=np.float32)
        if end < samples.size:
            weight[-fade:] = np.linspace(1, 0, fade, endpoint=False, dtype=np.float32)
        out[begin:end] += adapted * weight
    return Pcm(out, rate)


def _quiet_cuts(samples: np.ndarray, rate: int) -> list[int]:
    """0, the segment boundaries, the end: each boundary the quietest 10 ms frame in the
    SEARCH_SECONDS before the next SEGMENT_SECONDS mark."""
    frame = int(FADE_SECONDS * rate)
    cuts = [0]
    while samples.size - cuts[-1] > SEGMENT_SECONDS * rate:
        mark = cuts[-1] + int(SEGMENT_SECONDS * rate)
        low = mark - int(SEARCH_SECONDS * rate)
        frames = samples[low:mark][: (mark - low) // frame * frame].reshape(-1, frame)
        cuts.append(low + int(np.argmin((frames**2).sum(axis=1))) * frame + frame // 2)
    return [*cuts, samples.size]


async def _read(upload: IO[bytes]) -> AsyncIterator[bytes]:
    upload.seek(0)
    while chunk := upload.read(CHUNK_BYTES):
        yield chunk


def _sent(audio: bytes, output: OutputSpec, speech: Pcm) -> Iterator[chat_pb2.SpeechTranslateResponse]:
    for chunk in chunked(audio):
        yield chat_pb2.SpeechTranslateResponse(audio=common_pb2.AudioResponse(audio_content=chunk))
    rate = output.format.fixed_rate or output.sample_rate or speech.sample_rate
    channels = output.format.fixed_channels or output.channels
    metadata = audio_metadata(output.format, rate, channels, speech.duration_seconds)
    yield chat_pb2.SpeechTranslateResponse(audio=common_pb2.AudioResponse(metadata=metadata))
