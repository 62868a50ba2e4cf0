"""Transport-free recognition: decode an upload, transcribe it, diarize it if asked.

The servicer calls these off the event loop; everything here is blocking, and stops at
the next checkpoint once the caller has gone (`speechmesh.common.cancel`).
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import IO

from services.stt.diarization import Diarizer
from services.stt.recognizer import SAMPLE_RATE, RecognitionOptions, Recognizer, Segment, Transcript
from services.stt.windows import recognize_in_windows
from speechmesh.common import limits
from speechmesh.common.audio.decode import decode_audio
from speechmesh.common.cancel import checkpoint
from speechmesh.common.errors import InvalidArgument


@dataclass(frozen=True)
class RecognitionRequest:
    options: RecognitionOptions
    diarize: bool = False
    min_speakers: int = 0
    max_speakers: int = 0

    def validate(self) -> None:
        if len(self.options.prompt) > limits.PROMPT_MAX_CHARS:
            raise InvalidArgument(
                f"'prompt' is {len(self.options.prompt)} characters; at most {limits.PROMPT_MAX_CHARS} are allowed.",
                param="prompt",
            )
        if not 0.0 <= self.options.temperature <= 1.0:
            raise InvalidArgument("'temperature' must be between 0 and 1.", param="temperature")
        for name, count in (("min_speakers", self.min_speakers), ("max_speakers", self.max_speakers)):
            if not 0 <= count <= limits.SPEAKERS_MAX:
                raise InvalidArgument(f"'{name}' must be from 0 to {limits.SPEAKERS_MAX}.", param=name)
        if self.max_speakers and self.min_speakers > self.max_speakers:
            raise InvalidArgument("'min_speakers' is larger than 'max_speakers'.", param="min_speakers")


@dataclass(frozen=True)
class FileBounds:
    """How long a file may last (longer: AudioTooLong), and the window long audio is
    transcribed in (memory follows the window: services/stt/windows.py)."""

    max_seconds: float
    window_seconds: float


def transcribe_file(
    recognizer: Recognizer,
    diarizer: Diarizer | None,
    data: bytes | IO[bytes],
    request: RecognitionRequest,
    bounds: FileBounds,
) -> Transcript:
    """Decodes `data` (any container FFmpeg reads) and transcribes it."""
    audio = decode_audio(data, sample_rate=SAMPLE_RATE, max_seconds=bounds.max_seconds).samples
    wants_words = request.options.word_timestamps
    # Speakers are assigned word by word, so diarization always needs word times.
    options = replace(request.options, word_timestamps=wants_words or request.diarize)
    transcript = recognize_in_windows(recognizer.recognize, audio, options, bounds.window_seconds)
    checkpoint()
    if request.diarize and diarizer is not None:
        transcript = diarizer.diarize(audio, transcript, request.min_speakers, request.max_speakers)
    if not wants_words:
        transcript = replace(transcript, segments=tuple(_without_words(segment) for segment in transcript.segments))
    return transcript


def _without_words(segment: Segment) -> Segment:
    return replace(segment, words=())
