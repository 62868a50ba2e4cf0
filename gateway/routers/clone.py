"""POST /v1/tts/clone/: speak text in a voice taken from a reference recording, audited.

The default model is `world-adapt` (the nearest built-in voice adapted toward the
reference with WORLD, not neural cloning); the seed's chatterbox, cosyvoice2 and
gpt-sovits answer their documented unavailable error. The response carries the
measured similarity of the output, and of the base voice, to the reference.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterator

from fastapi import APIRouter, Depends, Request
from fastapi.responses import Response

from gateway.admission import Ticket, admit
from gateway.clients import tts_client
from gateway.errors import ApiError
from gateway.openapi import AUTHENTICATED, BODY_ERRORS, binary, errors, request_body
from gateway.routers import both
from gateway.schemas import CloneForm
from gateway.store.audit import CloneRecord
from gateway.uploads import read_multipart
from speechmesh.clients.tts import TtsClient
from speechmesh.common import limits
from speechmesh.common.audio.formats import FORMATS
from speechmesh.common.text import text_problem
from speechmesh.convert import ENCODING_BY_FORMAT
from speechmesh.v1 import common_pb2, tts_pb2

router = APIRouter()
_FORMATS = ("mp3", "wav", "flac")


@both(
    router,
    "POST",
    "/v1/tts/clone/",
    response_class=Response,
    responses={
        200: {"description": "The cloned speech.", **binary("audio/mpeg", "audio/wav", "audio/flac")},
        **errors(*BODY_ERRORS),
    },
    openapi_extra={**request_body(CloneForm, "multipart/form-data"), **AUTHENTICATED},
)
async def clone(request: Request, ticket: Ticket = Depends(admit), tts: TtsClient = Depends(tts_client)) -> Response:
    """Speak text in a voice taken from a reference recording.

    `world-adapt` (the default) picks the built-in voice nearest to the reference's speaker
    and moves its pitch, formants and timbre toward it with WORLD: not neural cloning.
    `X-Speaker-Similarity` is the output's d-vector similarity to the reference,
    `X-Base-Similarity` the base voice's (`X-Base-Voice`) before adaptation. Every clone is
    audited (a hash of the reference, never the reference). 4 credits per started 1,000
    characters."""
    with await read_multipart(request, {"reference_audio": limits.CLONE_REFERENCE_MAX_BYTES}) as form:
        upload = form.file("reference_audio")
        text = form.value("text")
        if text is None:
            raise ApiError(400, "bad_request", "'text' is required: what should the cloned voice say?", param="text")
        await ticket.meter("characters", len(text), param="text")
        problem = text_problem(text)
        if problem:
            raise ApiError(400, "bad_request", f"'text' {problem}.", param="text")
        fmt = form.string("format", "mp3")
        if fmt not in _FORMATS:
            raise ApiError(400, "bad_request", f"'format' must be one of {', '.join(_FORMATS)}.", param="format")
        config = tts_pb2.CloneConfig(
            text=text,
            model=form.string("model"),
            language=form.string("language"),
            output=common_pb2.AudioOutputSpec(encoding=ENCODING_BY_FORMAT[fmt]),
        )

        # Hashed for the audit log on its way to the service: one read of the spool.
        digest = hashlib.sha256()

        def reference() -> Iterator[bytes]:
            for chunk in upload.chunks():
                digest.update(chunk)
                yield chunk

        audio, result = await tts.clone(config, reference())
        await request.app.state.stores.audit.record(
            CloneRecord(
                key_id=ticket.caller.key.id,
                reference_sha256=digest.hexdigest(),
                reference_bytes=upload.size,
                model=result.model,
                base_voice=result.voice,
                characters=len(text),
                similarity=result.speaker_similarity,
            )
        )
    ticket.describe(
        {
            "X-Model": result.model,
            "X-Base-Voice": result.voice,
            "X-Speaker-Similarity": f"{result.speaker_similarity:.3f}",
            "X-Base-Similarity": f"{result.base_similarity:.3f}",
        }
    )
    return Response(audio, media_type=FORMATS[fmt].mime_type)
