"""POST /v1/speech-translate/: speech in one language, its translation in text and spoken in
another (5 credits a minute of input), the speech at `audio_url`.

The chat service transcribes (language detected unless `source_language` says it),
translates (Apertium's pairs; Whisper's translate task for any language -> English) and has
the TTS service speak it in a voice of the target language; `preserve_voice` moves that
voice toward the speaker's. An unsupported pair is a 400 listing the supported ones.
"""

from __future__ import annotations

from typing import Any

import grpc
from fastapi import APIRouter, Depends, Request
from fastapi.responses import JSONResponse

from gateway.admission import Ticket, admit
from gateway.clients import chat_client
from gateway.openapi import AUTHENTICATED, BODY_ERRORS, errors, request_body
from gateway.routers import both
from gateway.routers.audio_tools import choice
from gateway.routers.voice_chat import CHAT_FORMATS
from gateway.schemas import SpeechTranslateForm, SpeechTranslateOut
from gateway.stored_audio import store_audio
from gateway.uploads import meter_audio, read_multipart
from speechmesh.clients.chat import ChatClient
from speechmesh.common import limits
from speechmesh.convert import ENCODING_BY_FORMAT
from speechmesh.v1 import chat_pb2, common_pb2

router = APIRouter()


@both(
    router,
    "POST",
    "/v1/speech-translate/",
    response_class=JSONResponse,
    responses={200: {"model": SpeechTranslateOut}, **errors(*BODY_ERRORS)},
    openapi_extra={**request_body(SpeechTranslateForm, "multipart/form-data"), **AUTHENTICATED},
)
async def speech_translate(
    request: Request, ticket: Ticket = Depends(admit), chat: ChatClient = Depends(chat_client)
) -> Any:
    """Translate speech into speech in another language.

    Transcribes the upload, translates it (Whisper's translate task toward English,
    Apertium's pairs otherwise; an unsupported pair is a 400 listing the supported ones) and
    speaks the translation in a voice of the target language, which `preserve_voice` moves
    toward the original speaker. The speech is at `audio_url`; `X-Translator` and `X-Voice`
    say what translated and spoke. 5 credits per started minute of input."""
    with await read_multipart(request, {"file": limits.AUDIO_UPLOAD_MAX_BYTES}) as form:
        upload = form.file("file")
        fmt = choice(form, "format", CHAT_FORMATS, "mp3") or "mp3"
        config = chat_pb2.SpeechTranslateConfig(
            target_language=form.string("target_language", "en").lower(),
            voice=form.string("voice"),
            preserve_voice=form.boolean("preserve_voice", False),
            source_language=form.string("source_language").lower(),
            output=common_pb2.AudioOutputSpec(encoding=ENCODING_BY_FORMAT[fmt]),
        )
        budget = await meter_audio(ticket, upload)
        config.max_seconds = budget.seconds
        translation = chat_pb2.SpeechTranslation()
        parts: list[bytes] = []
        try:
            async for response in chat.speech_translate(config, upload.chunks()):
                if response.HasField("translation"):
                    translation = response.translation
                elif response.audio.HasField("audio_content"):
                    parts.append(response.audio.audio_content)
        except grpc.aio.AioRpcError as error:
            # Speech longer than the key's credits pay for: 402, as for transcriptions.
            refusal = budget.refusal(error)
            if refusal is None:
                raise
            raise refusal from None
    await ticket.served(amount=translation.source_duration_ms / 1000)
    ticket.describe({"X-Voice": translation.voice, "X-Translator": translation.translator})
    audio_url = await store_audio(request, ticket.caller.key.id, "translate", b"".join(parts), fmt)
    bill = ticket.bill
    return JSONResponse(
        SpeechTranslateOut(
            original_text=translation.original_text,
            translated_text=translation.translated_text,
            source_language=translation.source_language,
            target_language=translation.target_language,
            audio_url=audio_url,
            credits_used=bill.credits if bill is not None else 0,
        ).model_dump()
    )
