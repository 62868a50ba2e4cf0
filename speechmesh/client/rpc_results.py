"""The services' proto replies as the client's results (`speechmesh.client.results`), in the
REST API's words: seconds instead of milliseconds, enum values as the API's lower-case names."""

from __future__ import annotations

from speechmesh.client.results import Analysis, LiveResult, Model, Segment, Transcript, Voice, Word
from speechmesh.convert import GENDER_BY_ENUM
from speechmesh.v1 import audio_pb2, common_pb2, models_pb2, stt_pb2, tts_pb2


def _seconds(milliseconds: int) -> float:
    return round(milliseconds / 1000, 3)


def _word(word: common_pb2.Word, diarize: bool) -> Word:
    return Word(
        word=word.word,
        start=_seconds(word.start_ms),
        end=_seconds(word.end_ms),
        probability=round(word.probability, 4),
        speaker=word.speaker if diarize else None,
    )


def transcript(reply: stt_pb2.RecognizeResponse, timestamps: bool, diarize: bool) -> Transcript:
    """As POST /v1/stt/ answers: speakers only when diarized, words only when asked for."""
    return Transcript(
        text=reply.text,
        language=reply.language,
        duration=_seconds(reply.duration_ms),
        segments=[
            Segment(
                start=_seconds(segment.start_ms),
                end=_seconds(segment.end_ms),
                text=segment.text,
                speaker=segment.speaker if diarize else None,
                language=segment.language or reply.language,
            )
            for segment in reply.segments
        ],
        words=[_word(word, diarize) for segment in reply.segments for word in segment.words] if timestamps else None,
    )


def live_result(reply: stt_pb2.StreamingRecognizeResponse) -> LiveResult:
    return LiveResult(
        text=reply.text,
        is_final=reply.is_final,
        start=_seconds(reply.start_ms),
        end=_seconds(reply.end_ms),
        language=reply.language,
        words=[_word(word, diarize=False) for word in reply.words],
    )


def model(info: models_pb2.ModelInfo) -> Model:
    return Model(
        id=info.id,
        name=info.name,
        # The enums' names are the API's values in upper case (TTS -> tts, READY -> ready).
        type=models_pb2.ModelType.Name(info.type).lower(),
        tier=models_pb2.ModelTier.Name(info.tier).lower(),
        languages=list(info.languages),
        supports_cloning=info.supports_cloning,
        supports_streaming=info.supports_streaming,
        status=models_pb2.ModelState.Name(info.state).lower(),
        unavailable_reason=info.unavailable_reason or None,
    )


def voice(found: tts_pb2.Voice) -> Voice:
    return Voice(
        id=found.id,
        name=found.name,
        model=found.model,
        language=found.language,
        gender=GENDER_BY_ENUM.get(found.gender, "neutral"),
        alias_of=found.alias_of or None,
    )


def analysis(reply: audio_pb2.AnalyzeResponse) -> Analysis:
    return Analysis(
        key=reply.key,
        scale=reply.scale,
        bpm=round(reply.bpm, 1),
        time_signature=reply.time_signature,
        camelot=reply.camelot,
        compatible_keys=list(reply.compatible_keys),
    )
