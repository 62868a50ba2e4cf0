"""One voice-chat turn: what the user said, the model's reply written and spoken a sentence
at a time, text and audio interleaved as they are ready.

The model writes in the engine pool; each finished sentence goes out as a text delta and to
the TTS service, whose speech is encoded into one audio stream while the model writes the
next. Leaving the turn (a cancelled call) stops the model at its next piece and the speech
in flight. When the model does not write the user's language (SmolLM2 writes English) and
the translators have both directions, the user's words are translated to English and each
reply sentence back; otherwise the model is asked to answer in the user's language, or,
when it cannot and nothing translates, it answers in English (the reply says which).
"""

from __future__ import annotations

import asyncio
import contextlib
import threading
from collections.abc import AsyncGenerator, AsyncIterator
from dataclasses import dataclass

from services.chat import prompt
from services.chat.processors import LanguageModel, Message, Written
from services.chat.sentences import SentenceCutter
from services.chat.translators import Translators
from services.chat.upstream import Upstream
from services.chat.voices import VoiceChooser
from speechmesh.common.audio.encode import StreamEncoder
from speechmesh.common.audio.formats import OutputSpec
from speechmesh.common.errors import InvalidArgument, InvalidAudio
from speechmesh.common.registry import EngineRegistry
from speechmesh.convert import audio_metadata
from speechmesh.runtime.blocking import Blocking
from speechmesh.v1 import chat_pb2, common_pb2, stt_pb2

# The rate speech comes from TTS at and is encoded from (Kokoro's own).
SPEECH_RATE = 24_000
ROLES = ("user", "assistant")


@dataclass(frozen=True)
class TurnLimits:
    reply_tokens: int
    max_speech_seconds: float
    stt_model: str
    english_stt_model: str


@dataclass(frozen=True)
class Heard:
    text: str
    language: str
    duration_ms: int


class VoiceChat:
    def __init__(
        self,
        models: EngineRegistry[LanguageModel],
        translators: Translators,
        voices: VoiceChooser,
        upstream: Upstream,
        blocking: Blocking,
        writers: Blocking,
        limits: TurnLimits,
    ) -> None:
        """`writers`: the threads replies are written in, one per reply the model writes at
        once; a reply holds its thread while it is written, so translations and other short
        work in `blocking` never wait behind replies."""
        self._models = models
        self._translators = translators
        self._voices = voices
        self._upstream = upstream
        self._blocking = blocking
        self._writers = writers
        self._limits = limits

    async def turn(
        self, config: chat_pb2.VoiceChatConfig, audio: AsyncIterator[bytes], output: OutputSpec
    ) -> AsyncGenerator[chat_pb2.VoiceChatResponse, None]:
        history = _history(config)
        if len(config.system_prompt) > prompt.SYSTEM_PROMPT_MAX_CHARS:
            raise InvalidArgument(
                f"'system_prompt' is longer than {prompt.SYSTEM_PROMPT_MAX_CHARS} characters.", param="system_prompt"
            )
        model_id, model = self._models.get("")
        heard = await self._hear(config, audio)
        yield chat_pb2.VoiceChatResponse(
            transcript=chat_pb2.VoiceChatTranscript(
                text=heard.text, language=heard.language, duration_ms=heard.duration_ms
            )
        )
        speaks = model.languages is None or heard.language in model.languages
        pivot = not speaks and self._translators.both_ways(heard.language, "en")
        reply_language = heard.language if speaks or pivot else "en"
        voice, tts_model = await self._voices.choose(config.voice, config.tts_model, reply_language)
        user = await self._translated(heard.text, heard.language, "en") if pivot else heard.text
        if pivot and history:
            # The model reads the conversation in English too: one Apertium run for all of
            # it (a run costs ~0.1 s to start), a line per message.
            lines = "\n".join(" ".join(m.content.split()) for m in history)
            english = (await self._translated(lines, heard.language, "en")).split("\n")
            # Apertium keeps line breaks; were one lost, the history stays as it was said.
            if len(english) == len(history):
                history = [Message(m.role, text) for m, text in zip(history, english, strict=True)]
        messages = prompt.messages(
            model, config.system_prompt, history, user, self._limits.reply_tokens, "en" if pivot else reply_language
        )
        out: asyncio.Queue[chat_pb2.VoiceChatResponse | BaseException | None] = asyncio.Queue()
        spoken: list[str] = []
        speech = _Speech(self._upstream, voice, tts_model, output, out)
        stop = threading.Event()
        writer = asyncio.create_task(
            self._write(model, messages, stop, reply_language, pivot, spoken, speech, out), name="chat-writer"
        )
        try:
            while (item := await out.get()) is not None:
                if isinstance(item, BaseException):
                    raise item
                yield item
            yield chat_pb2.VoiceChatResponse(
                reply=chat_pb2.VoiceChatReply(
                    text=" ".join(spoken),
                    language=reply_language,
                    voice=speech.voice,
                    tts_model=speech.tts_model,
                    model=model_id,
                )
            )
        finally:
            stop.set()
            writer.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await writer
            speech.close()

    async def _hear(self, config: chat_pb2.VoiceChatConfig, audio: AsyncIterator[bytes]) -> Heard:
        first = await anext(audio, b"")
        if config.text.strip():
            if first:
                raise InvalidArgument("Send either 'audio' or 'text', not both.", param="audio")
            language = config.language or "en"
            return Heard(config.text.strip(), language, 0)
        if not first:
            raise InvalidArgument("Send 'audio' (a recording of the question) or 'text'.", param="audio")

        async def everything() -> AsyncIterator[bytes]:
            yield first
            async for chunk in audio:
                yield chunk

        max_seconds = min(config.max_seconds or self._limits.max_speech_seconds, self._limits.max_speech_seconds)
        recognition = stt_pb2.RecognitionConfig(
            model=self._limits.english_stt_model if config.language == "en" else self._limits.stt_model,
            language=config.language,
            max_seconds=max_seconds,
        )
        result = await self._upstream.transcribe(recognition, everything())
        if not result.text.strip():
            raise InvalidAudio("No speech was heard in the audio.", param="audio")
        return Heard(result.text.strip(), result.language or config.language or "en", result.duration_ms)

    async def _translated(self, text: str, source: str, target: str) -> str:
        return await self._blocking.run(self._translators.translate, text, source, target)

    async def _write(
        self,
        model: LanguageModel,
        messages: list[Message],
        stop: threading.Event,
        language: str,
        pivot: bool,
        spoken: list[str],
        speech: _Speech,
        out: asyncio.Queue[chat_pb2.VoiceChatResponse | BaseException | None],
    ) -> None:
        """Runs the model, hands each finished sentence to the text deltas and the speech."""
        loop = asyncio.get_running_loop()
        pieces: asyncio.Queue[str | Written | BaseException] = asyncio.Queue()

        def on_delta(piece: str) -> bool:
            loop.call_soon_threadsafe(pieces.put_nowait, piece)
            return stop.is_set()

        def run() -> Written:
            # The reply's end, or the model's failure, is the last thing on `pieces`: the
            # loop below waits on nothing else.
            try:
                written = model.reply(messages, self._limits.reply_tokens, on_delta)
            except BaseException as error:
                loop.call_soon_threadsafe(pieces.put_nowait, error)
                raise
            loop.call_soon_threadsafe(pieces.put_nowait, written)
            return written

        def spoken_or_failed(task: asyncio.Task[None]) -> None:
            # A TTS refusal (an unknown voice) ends the turn now, not once the model is done.
            if not task.cancelled() and task.exception() is not None:
                stop.set()
                out.put_nowait(task.exception())

        cutter = SentenceCutter("en" if pivot else language)
        speaking = asyncio.create_task(speech.run(), name="chat-speech")
        speaking.add_done_callback(spoken_or_failed)
        model_call = asyncio.ensure_future(self._writers.run(run))
        try:
            while True:
                item = await pieces.get()
                if isinstance(item, BaseException):
                    raise item
                sentences = cutter.feed(item) if isinstance(item, str) else cutter.end(item.finished)
                for sentence in sentences:
                    said = await self._translated(sentence, "en", language) if pivot else sentence
                    if not said.strip():
                        continue
                    await out.put(chat_pb2.VoiceChatResponse(text_delta=(" " if spoken else "") + said))
                    spoken.append(said)
                    speech.say(said)
                if not isinstance(item, str):
                    break
            await model_call
            speech.say(None)
            await speaking
            await out.put(None)
        except BaseException as error:
            stop.set()
            speaking.cancel()
            model_call.cancel()
            if model_call.done() and not model_call.cancelled():
                model_call.exception()  # the same failure, raised above: retrieved, not logged
            if not isinstance(error, asyncio.CancelledError) and not speaking.done():
                await out.put(error)
            raise


class _Speech:
    """Speaks sentences in order into one encoded stream, while more are being written."""

    def __init__(
        self,
        upstream: Upstream,
        voice: str,
        tts_model: str,
        output: OutputSpec,
        out: asyncio.Queue[chat_pb2.VoiceChatResponse | BaseException | None],
    ) -> None:
        self._upstream = upstream
        self.voice = voice
        self.tts_model = tts_model
        self._out = out
        self._sentences: asyncio.Queue[str | None] = asyncio.Queue()
        self._encoder = StreamEncoder(
            output.format,
            SPEECH_RATE,
            sample_rate=output.sample_rate,
            channels=output.channels,
            bitrate_kbps=output.bitrate_kbps,
        )

    def say(self, sentence: str | None) -> None:
        self._sentences.put_nowait(sentence)

    def _chunk(self, data: bytes) -> None:
        if data:
            self._out.put_nowait(chat_pb2.VoiceChatResponse(audio=common_pb2.AudioResponse(audio_content=data)))

    async def run(self) -> None:
        while (sentence := await self._sentences.get()) is not None:
            plan, pieces = await self._upstream.speak_streaming(sentence, self.voice, self.tts_model, SPEECH_RATE)
            # The first sentence tells which voice and model speak (an alias resolved).
            self.voice, self.tts_model = plan.voice or self.voice, plan.model or self.tts_model
            async for pcm in pieces:
                self._chunk(self._encoder.feed(pcm))
        self._chunk(self._encoder.finish())
        encoder = self._encoder
        metadata = audio_metadata(encoder.format, encoder.sample_rate, encoder.channels, encoder.duration_seconds)
        self._out.put_nowait(chat_pb2.VoiceChatResponse(audio=common_pb2.AudioResponse(metadata=metadata)))

    def close(self) -> None:
        self._encoder.close()


def _history(config: chat_pb2.VoiceChatConfig) -> list[Message]:
    history = []
    for index, message in enumerate(config.history):
        if message.role not in ROLES:
            raise InvalidArgument(
                f"history[{index}].role must be one of {', '.join(ROLES)}, not '{message.role}'.", param="history"
            )
        history.append(Message(message.role, message.content))
    return history
