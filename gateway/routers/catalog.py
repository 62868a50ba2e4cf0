"""GET /v1/models/ and /v1/voices/, built from what the services report, plus voice previews."""

from __future__ import annotations

import logging

from fastapi import APIRouter, Depends, Path, Query, Request
from fastapi.responses import Response

from gateway.admission import admit
from gateway.clients import mesh as mesh_of
from gateway.clients import tts_client
from gateway.errors import ApiError
from gateway.openapi import AUTHENTICATED, BEARER, PLAIN_ERRORS, QUERY_ERRORS, binary, errors
from gateway.preview_texts import preview_text
from gateway.pricing import TIER_CREDITS
from gateway.routers import both
from gateway.schemas import Gender, ModelOut, ModelsOut, VoiceOut, VoicesOut
from gateway.signing import EXPIRES_PATTERN, SIGNATURE_PATTERN
from gateway.tiers import TIER_NAMES
from speechmesh.clients.mesh import Mesh
from speechmesh.clients.tts import TtsClient
from speechmesh.common import limits
from speechmesh.convert import ENUM_BY_GENDER, GENDER_BY_ENUM
from speechmesh.v1 import common_pb2, models_pb2, tts_pb2

log = logging.getLogger(__name__)
router = APIRouter()

_TYPE = {
    models_pb2.TTS: "tts",
    models_pb2.STT: "stt",
    models_pb2.AUDIO: "audio",
    models_pb2.VOICE_CONVERSION: "voice_conversion",
    models_pb2.CHAT: "chat",
}
_STATUS = {models_pb2.READY: "ready", models_pb2.LOADING: "loading", models_pb2.UNAVAILABLE: "unavailable"}


def _model(info: models_pb2.ModelInfo) -> ModelOut:
    kind, tier = _TYPE[info.type], TIER_NAMES[info.tier]
    return ModelOut(
        id=info.id,
        name=info.name,
        type=kind,
        tier=tier,
        languages=list(info.languages),
        supports_cloning=info.supports_cloning,
        supports_streaming=info.supports_streaming,
        credits_per_1k_chars=TIER_CREDITS[tier] if kind == "tts" else None,
        status=_STATUS[info.state],
        unavailable_reason=info.unavailable_reason or None,
    )


@both(
    router,
    "GET",
    "/v1/models/",
    response_model=ModelsOut,
    responses=errors(*PLAIN_ERRORS),
    dependencies=[Depends(admit)],
    openapi_extra=AUTHENTICATED,
)
async def list_models(request: Request, mesh: Mesh = Depends(mesh_of)) -> ModelsOut:
    """List models.

    Every documented model with its type, tier, languages, abilities, price and state
    (`ready`, `loading`, or `unavailable` with the reason). Free."""
    models = await mesh.models(timeout=request.app.state.settings.health_timeout_seconds * 5)
    return ModelsOut(models=[_model(info) for info in models])


@both(
    router,
    "GET",
    "/v1/voices/",
    response_model=VoicesOut,
    response_model_exclude_none=True,
    responses=errors(*QUERY_ERRORS),
    dependencies=[Depends(admit)],
    openapi_extra=AUTHENTICATED,
)
async def list_voices(
    request: Request,
    tts: TtsClient = Depends(tts_client),
    model: str | None = Query(None, max_length=limits.ID_MAX_CHARS, description="Only voices of this model id."),
    language: str | None = Query(
        None, max_length=limits.ID_MAX_CHARS, description="Only voices of this language code or locale."
    ),
    gender: Gender | None = Query(None, description="Only voices of this gender."),
) -> VoicesOut:
    """List voices.

    Every voice, or those of a model, language or gender. Each has a signed `preview_url`
    that plays without a key for a day. Hosted-API voice ids that stand for an installed
    voice are listed with `alias_of`. Free."""
    found = await tts.voices(
        tts_pb2.ListVoicesRequest(
            model=model or "",
            language=language or "",
            gender=ENUM_BY_GENDER.get(gender or "", common_pb2.GENDER_UNSPECIFIED),
        )
    )
    base = str(request.base_url)
    signer = request.app.state.signer
    voices = [
        VoiceOut(
            id=voice.id,
            name=voice.name,
            model=voice.model,
            language=voice.language,
            gender=GENDER_BY_ENUM.get(voice.gender, "neutral"),
            preview_url=f"{base}{preview_path(voice.id)[1:]}?{signer.query(preview_path(voice.id))}",
            alias_of=voice.alias_of or None,
        )
        for voice in found
    ]
    return VoicesOut(voices=voices, total=len(voices))


def preview_path(voice_id: str) -> str:
    return f"/v1/voices/preview/{voice_id}.mp3"


@router.get(
    "/v1/voices/preview/{voice_id}.mp3",
    response_class=Response,
    responses={
        200: {"description": "A short sample of the voice.", **binary("audio/mpeg")},
        **errors(*QUERY_ERRORS, 404),
    },
    # Either a key or the signature of a listed preview_url.
    openapi_extra={"security": [{BEARER: []}, {}]},
)
async def voice_preview(
    request: Request,
    voice_id: str = Path(description="A voice id from /v1/voices/."),
    tts: TtsClient = Depends(tts_client),
    expires: str | None = Query(
        None, pattern=EXPIRES_PATTERN, description="Expiry of a signed preview URL (from a voice listing)."
    ),
    signature: str | None = Query(None, pattern=SIGNATURE_PATTERN, description="Signature of a signed preview URL."),
) -> Response:
    """Play a voice's sample.

    A short sample of the voice in its own language, synthesized once. The `preview_url` of
    a voice listing carries a signature and plays without a key for a day; otherwise a key
    is required. Free."""
    signed = request.app.state.signer.verify(preview_path(voice_id), expires, signature)
    if not signed:
        await admit(request)

    async def make() -> bytes:
        voices = await tts.voices(tts_pb2.ListVoicesRequest())
        voice = next((v for v in voices if v.id == voice_id), None)
        if voice is None:
            raise ApiError(404, "not_found", f"Voice '{voice_id}' does not exist; see /v1/voices/.", voice=voice_id)
        text, language = preview_text(voice.language, voice.name)
        audio, _ = await tts.synthesize(
            tts_pb2.SynthesizeRequest(
                text=text,
                language=language,
                model=voice.model,
                voice=voice.id,
                output=common_pb2.AudioOutputSpec(encoding=common_pb2.MP3),
            )
        )
        return audio

    audio = await request.app.state.previews.get(voice_id, make)
    # A signed URL is the same for everyone holding it; a key's answer is that key's own.
    cache = "public, max-age=86400" if signed else "private, max-age=86400"
    return Response(audio, media_type="audio/mpeg", headers={"Cache-Control": cache})
