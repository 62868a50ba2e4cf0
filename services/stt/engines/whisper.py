"""Whisper through faster-whisper (CTranslate2): transcription, translation, word times.

One class serves every Whisper size; what differs is the folder it loads. By default
audio is cut into voice-activity chunks decoded as text in batches
(`whisper_chunks.py` says why: the sequential decoder's timestamps can skip speech);
`decoding="sequential"` keeps faster-whisper's own `transcribe`, for comparison.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from services.stt.engines import whisper_chunks
from services.stt.engines.whisper_batch import DecodeBatcher
from services.stt.recognizer import RecognitionOptions, Segment, Transcript, Word
from services.stt.settings import WhisperSettings
from speechmesh.common.cancel import checkpoint
from speechmesh.common.errors import InvalidArgument, ModelUnavailable

if TYPE_CHECKING:  # faster-whisper is imported on load
    from faster_whisper import WhisperModel

_WARM_UP_SECONDS = 1.0


class WhisperRecognizer:
    def __init__(self, model_dir: Path, settings: WhisperSettings) -> None:
        self._model_dir = model_dir
        self._settings = settings
        self._model: WhisperModel | None = None
        self._batcher: DecodeBatcher | None = None
        self._languages: tuple[str, ...] = ()

    def load(self) -> None:
        from faster_whisper import WhisperModel

        if not (self._model_dir / "model.bin").is_file():
            raise ModelUnavailable(
                f"Its CTranslate2 weights are not installed on this server (put model.bin, config.json, "
                f"tokenizer.json and vocabulary.txt in the models folder's {self._model_dir.name} folder, e.g. "
                "from ct2-transformers-converter; see docs/deploy.md)",
                detail=f"no model.bin in {self._model_dir}",
            )
        self._model = WhisperModel(
            str(self._model_dir),
            device=self._settings.device,
            compute_type=self._settings.compute_type,
            cpu_threads=self._settings.threads,
            # Model replicas: calls on one replica wait for each other (settings.py says why two).
            num_workers=self._settings.replicas,
        )
        self._batcher = DecodeBatcher(self._model, self._settings.batch_size)
        self._languages = tuple(self._model.supported_languages if self._model.model.is_multilingual else ("en",))

    def warm_up(self) -> None:
        rng = np.random.default_rng(0)
        noise = (rng.standard_normal(int(16000 * _WARM_UP_SECONDS)) * 0.01).astype(np.float32)
        self.recognize(noise, RecognitionOptions(language="en", vad_filter=False))

    def languages(self) -> Sequence[str]:
        return self._languages

    def recognize(self, audio: np.ndarray, options: RecognitionOptions) -> Transcript:
        assert self._model is not None, "load() first"
        multilingual = len(self._languages) > 1
        if options.language and options.language not in self._languages:
            raise InvalidArgument(
                f"Language '{options.language}' is not one this model transcribes "
                f"({', '.join(self._languages[:12])}{', ...' if multilingual else ''}).",
                param="language",
            )
        if options.task == "translate" and not multilingual:
            raise InvalidArgument("This model is English-only and cannot translate; use a multilingual model.")
        if self._settings.decoding == "batched":
            assert self._batcher is not None
            with self._batcher.transcribing():
                return whisper_chunks.transcribe(
                    self._model, self._batcher, audio, options, self._settings.beam_size, self._settings.batch_size
                )
        return self._sequential(audio, options)

    def _sequential(self, audio: np.ndarray, options: RecognitionOptions) -> Transcript:
        assert self._model is not None
        segments, info = self._model.transcribe(
            audio,
            language=options.language or None,
            task=options.task,
            beam_size=self._settings.beam_size,
            word_timestamps=options.word_timestamps,
            vad_filter=options.vad_filter,
            initial_prompt=options.prompt or None,
            # 0 keeps Whisper's fallback schedule: retry hotter when decoding degenerates.
            temperature=options.temperature or (0.0, 0.2, 0.4, 0.6, 0.8, 1.0),
        )
        # faster-whisper decodes lazily, one 30 s window per step of this generator: a
        # checkpoint between steps stops a long file soon after its caller has gone.
        decoded = []
        for segment in segments:
            checkpoint()
            decoded.append(segment)
        result = tuple(_segment(segment, info.language) for segment in decoded)
        return Transcript(
            # Whisper's segment texts carry their own leading spaces (none in CJK).
            text="".join(segment.text for segment in decoded).strip(),
            language=info.language,
            language_probability=float(info.language_probability),
            duration=float(info.duration),
            segments=tuple(segment for segment in result if segment.text),
        )


def _segment(segment, language: str) -> Segment:
    words = tuple(
        Word(text=word.word, start=float(word.start), end=float(word.end), probability=float(word.probability))
        for word in segment.words or ()
    )
    return Segment(
        start=float(segment.start),
        end=float(segment.end),
        text=segment.text.strip(),
        words=words,
        avg_logprob=float(segment.avg_logprob),
        compression_ratio=float(segment.compression_ratio),
        no_speech_prob=float(segment.no_speech_prob),
        temperature=float(segment.temperature or 0.0),
        tokens=tuple(segment.tokens),
        language=language,
    )
