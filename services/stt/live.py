"""Live recognition: cut a PCM stream into utterances by voice activity, transcribe each.

Audio arrives in arbitrary chunks. Silero VAD scores it frame by frame; an utterance
ends after `end_silence_seconds` of non-speech (or at `max_utterance_seconds`) and gets
one final result. While it grows, interim results re-transcribe it every
`interim_every_seconds` of new audio. Before speech starts only a short pre-roll is
kept, so a silent stream costs no memory and no recognition.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

import numpy as np

from services.stt.recognizer import SAMPLE_RATE, RecognitionOptions, Recognizer, Word
from services.stt.settings import StreamingSettings
from services.stt.vad import FRAME_SAMPLES, FRAME_SECONDS, SpeechDetector

# Audio kept before the first speech frame, so the first phoneme is not clipped.
_PREROLL_FRAMES = round(0.3 / FRAME_SECONDS)
# Silence kept after the last speech frame of an utterance that is transcribed.
_TAIL_FRAMES = round(0.2 / FRAME_SECONDS)


@dataclass(frozen=True)
class LiveResult:
    text: str
    is_final: bool
    start: float
    end: float
    language: str
    words: tuple[Word, ...] = ()


class LiveTranscriber:
    def __init__(
        self,
        recognizer: Recognizer,
        detector: SpeechDetector,
        options: RecognitionOptions,
        settings: StreamingSettings,
        interim_results: bool,
    ) -> None:
        self._recognizer = recognizer
        self._detector = detector
        # Utterances are already cut by VAD; Whisper's own VAD would cut them again.
        self._options = replace(options, vad_filter=False)
        self._settings = settings
        self._interim = interim_results
        self._pending = np.zeros(0, dtype=np.float32)
        self._frames: list[np.ndarray] = []
        self._start = 0.0
        self._speech = False
        self._silent_frames = 0
        self._frames_since_interim = 0

    def feed(self, audio: np.ndarray) -> list[LiveResult]:
        """Takes float32 mono samples at SAMPLE_RATE; returns the results they complete."""
        self._pending = np.concatenate([self._pending, audio.astype(np.float32, copy=False)])
        usable = self._pending.size - self._pending.size % FRAME_SAMPLES
        if not usable:
            return []
        chunk, self._pending = self._pending[:usable], self._pending[usable:]
        return self._consume(chunk)

    def finish(self) -> list[LiveResult]:
        """Ends the stream: the utterance in progress gets its final result."""
        results = self._consume(np.pad(self._pending, (0, -self._pending.size % FRAME_SAMPLES)))
        self._pending = np.zeros(0, dtype=np.float32)
        if self._speech:
            results += self._finalize()
        return results

    def _consume(self, chunk: np.ndarray) -> list[LiveResult]:
        if not chunk.size:
            return []
        threshold = self._settings.speech_threshold
        results: list[LiveResult] = []
        for index, probability in enumerate(self._detector.speech_probabilities(chunk)):
            self._frames.append(chunk[index * FRAME_SAMPLES : (index + 1) * FRAME_SAMPLES])
            self._frames_since_interim += 1
            if probability >= threshold:
                self._speech, self._silent_frames = True, 0
            else:
                self._silent_frames += 1
            if not self._speech:
                self._drop_leading_silence()
            elif self._utterance_ended():
                results += self._finalize()
        due = self._frames_since_interim * FRAME_SECONDS >= self._settings.interim_every_seconds
        if self._interim and self._speech and due:
            self._frames_since_interim = 0
            interim = self._transcribe(final=False)
            if interim.text:
                results.append(interim)
        return results

    def _drop_leading_silence(self) -> None:
        excess = len(self._frames) - _PREROLL_FRAMES
        if excess > 0:
            del self._frames[:excess]
            self._start += excess * FRAME_SECONDS

    def _utterance_ended(self) -> bool:
        return (
            self._silent_frames * FRAME_SECONDS >= self._settings.end_silence_seconds
            or len(self._frames) * FRAME_SECONDS >= self._settings.max_utterance_seconds
        )

    def _finalize(self) -> list[LiveResult]:
        result = self._transcribe(final=True)
        self._start += len(self._frames) * FRAME_SECONDS
        self._frames = []
        self._speech, self._silent_frames, self._frames_since_interim = False, 0, 0
        # A VAD false alarm (a cough, a click) transcribes to nothing: no result.
        return [result] if result.text else []

    def _transcribe(self, final: bool) -> LiveResult:
        keep = len(self._frames) - max(self._silent_frames - _TAIL_FRAMES, 0)
        audio = np.concatenate(self._frames[:keep])
        transcript = self._recognizer.recognize(audio, self._options)
        words = tuple(
            replace(word, start=word.start + self._start, end=word.end + self._start) for word in transcript.words
        )
        return LiveResult(
            text=transcript.text,
            is_final=final,
            start=self._start,
            end=self._start + audio.size / SAMPLE_RATE,
            language=transcript.language,
            words=words,
        )
