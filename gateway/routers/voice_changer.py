"""POST /v1/voice-convert/ and POST /v1/speech-to-speech/: speech changed, the words kept.

Voice conversion moves speech toward a built-in voice (`target_voice` from /v1/voices/) by
WORLD analysis and resynthesis (`world-convert`; the page's openvoice and knn-vc answer
their documented unavailable error) and says how far it got: `X-Speaker-Similarity` (the
output's d-vector similarity to the target voice) next to `X-Source-Similarity` (the
input's). Speech-to-speech restyles delivery (emotion, pace) and optionally converts the
voice too. Both 3 credits a minute of input.
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Depends, Request
from fastapi.responses import Response

from gateway.admission import Ticket, admit
from gateway.clients import audio_client
from gateway.errors import ApiError
from gateway.openapi import AUTHENTICATED, BODY_ERRORS, binary, errors, request_body
from gateway.routers import both
from gateway.routers.audio_tools import STEM_FORMATS, TOOL_FORMATS, answered, choice, output, processed
from gateway.schemas import SpeechToSpeechForm, VoiceConvertForm
from gateway.uploads import read_multipart
from speechmesh.clients.audio import AudioClient
from speechmesh.common import limits
from speechmesh.v1 import audio_pb2

router = APIRouter()

EMOTIONS = {
    "neutral": audio_pb2.EMOTION_NEUTRAL,
    "happy": audio_pb2.EMOTION_HAPPY,
    "sad": audio_pb2.EMOTION_SAD,
    "angry": audio_pb2.EMOTION_ANGRY,
    "excited": audio_pb2.EMOTION_EXCITED,
}


@both(
    router,
    "POST",
    "/v1/voice-convert/",
    response_class=Response,
    responses={
        200: {"description": "The converted speech.", **binary("audio/wav", "audio/mpeg", "audio/flac")},
        **errors(*BODY_ERRORS),
    },
    openapi_extra={**request_body(VoiceConvertForm, "multipart/form-data"), **AUTHENTICATED},
)
async def voice_convert(
    request: Request, ticket: Ticket = Depends(admit), audio: AudioClient = Depends(audio_client)
) -> Any:
    """Make speech sound like another voice.

    `world-convert` measures the speaker and the target voice and resynthesizes the
    recording with WORLD: pitch, formants and timbre moved toward the target, timing and
    words kept (a relative of the target, not the target). `X-Speaker-Similarity` is the
    output's similarity to the target, `X-Source-Similarity` the input's. 3 credits per
    started minute of audio."""
    with await read_multipart(request, {"file": limits.SPEECH_UPLOAD_MAX_BYTES}) as form:
        upload = form.file("file")
        target = form.string("target_voice")
        if not target:
            raise ApiError(
                400, "bad_request", "'target_voice' is required: a voice id from /v1/voices/.", param="target_voice"
            )
        config = audio_pb2.VoiceConvertConfig(
            target_voice=target,
            model=form.string("model"),
            output=output(choice(form, "format", STEM_FORMATS, "wav")),
        )
        received = await processed(ticket, upload, config, audio.voice_convert)
    report = received.report
    similarity = {
        "X-Speaker-Similarity": f"{report.similarity_after:.3f}",
        "X-Source-Similarity": f"{report.similarity_before:.3f}",
    }
    return await answered(ticket, received, "converted", similarity)


@both(
    router,
    "POST",
    "/v1/speech-to-speech/",
    response_class=Response,
    responses={
        200: {"description": "The transformed speech, in the input's format.", **binary("audio/mpeg", "audio/wav")},
        **errors(*BODY_ERRORS),
    },
    openapi_extra={**request_body(SpeechToSpeechForm, "multipart/form-data"), **AUTHENTICATED},
)
async def speech_to_speech(
    request: Request, ticket: Ticket = Depends(admit), audio: AudioClient = Depends(audio_client)
) -> Any:
    """Restyle speech: emotion, pace, voice.

    Each `emotion` is a fixed prosody transform of the speaker's own voice (pitch level and
    range, loudness, brightness, pace); `speed` changes the pace without the pitch; `voice`
    also converts toward a built-in voice, as `/v1/voice-convert/` does. The words and
    their timing stay the speaker's. 3 credits per started minute of audio."""
    with await read_multipart(request, {"file": limits.SPEECH_UPLOAD_MAX_BYTES}) as form:
        upload = form.file("file")
        config = audio_pb2.SpeechToSpeechConfig(
            voice=form.string("voice"),
            model=form.string("model"),
            emotion=EMOTIONS[choice(form, "emotion", tuple(EMOTIONS), "neutral") or "neutral"],
            speed=form.number("speed", limits.SPEED_DEFAULT, limits.SPEED_MIN, limits.SPEED_MAX),
            output=output(choice(form, "format", TOOL_FORMATS)),
        )
        received = await processed(ticket, upload, config, audio.speech_to_speech)
    report = received.report
    similarity = {}
    if config.voice:
        similarity = {
            "X-Speaker-Similarity": f"{report.similarity_after:.3f}",
            "X-Source-Similarity": f"{report.similarity_before:.3f}",
        }
    return await answered(ticket, received, "speech", similarity)
