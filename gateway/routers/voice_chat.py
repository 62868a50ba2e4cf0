"""POST /v1/voice-chat/: one turn of a spoken conversation, answered with its transcript,
the reply's text and a link to the reply's speech (3 credits a turn).

A turn is `audio` (multipart) or `text` (multipart or JSON), never both. The conversation's
history lives in the gateway's database (`store/conversations.py`), sent to the chat
service with each turn; `conversation_id` continues one of the key's own (another key's,
an unknown or an expired one is a 404). With `stream` the answer is server-sent events as
the chat service produces them: `transcript`, `text` (each reply sentence as written),
`audio` (base64 chunks of one file, in order), then `done` with the JSON the plain answer
has; an error after the first event comes as an `error` event (the turn is then not
charged and not saved).
"""

from __future__ import annotations

import base64
import json
from collections.abc import AsyncGenerator, AsyncIterator
from dataclasses import dataclass, field
from typing import Any, get_args

import grpc
from fastapi import APIRouter, Depends, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response, StreamingResponse
from pydantic import ValidationError

from gateway.admission import Ticket, admit
from gateway.body import read_body
from gateway.clients import chat_client
from gateway.errors import ApiError, rpc_failure
from gateway.openapi import AUTHENTICATED, BODY_ERRORS, errors, request_body
from gateway.pricing import TURNS
from gateway.routers import both
from gateway.routers.audio_tools import choice
from gateway.schemas import ChatFormat, VoiceChatBody, VoiceChatForm, VoiceChatOut
from gateway.store.conversations import Turn
from gateway.stored_audio import store_audio
from gateway.uploads import MultipartForm, read_multipart
from speechmesh.clients.chat import ChatClient
from speechmesh.clients.uploads import AudioSource
from speechmesh.common import limits
from speechmesh.convert import ENCODING_BY_FORMAT
from speechmesh.v1 import chat_pb2, common_pb2

router = APIRouter()

CHAT_FORMATS: tuple[str, ...] = get_args(ChatFormat)
# The chat service keeps what fits the model's context; more would only travel.
HISTORY_MESSAGES = 40
TEXT_MAX_CHARS = 4000
# A JSON turn: its text and system prompt, each up to 4,000 characters, each at most 12
# bytes escaped (a surrogate pair, "\\ud83d\\ude00"), and the other fields.
_JSON_MAX_BYTES = 128 * 1024


# Each server-sent event of a streamed turn; `data` is JSON (docs/api.md has each kind's).
_EVENT = {
    "type": "object",
    "required": ["event", "data"],
    "properties": {
        "event": {"enum": ["transcript", "text", "audio", "done", "error"]},
        "data": {"type": "string", "contentMediaType": "application/json"},
    },
}


@dataclass
class _Question:
    text: str = ""
    voice: str = ""
    tts_model: str = ""
    system_prompt: str = ""
    conversation_id: str = ""
    language: str = ""
    fmt: str = "mp3"
    stream: bool = False
    audio: AudioSource = b""
    form: MultipartForm | None = None
    fields: dict[str, str] = field(default_factory=dict)

    def close(self) -> None:
        if self.form is not None:
            self.form.close()


async def _read(request: Request) -> _Question:
    if request.headers.get("content-type", "").lower().startswith("multipart/form-data"):
        form = await read_multipart(request, {"audio": limits.AUDIO_UPLOAD_MAX_BYTES})
        try:
            upload = form.files.get("audio")
            if upload is None and form.value("audio"):
                raise ApiError(400, "bad_request", "'audio' must be a file (with a filename).", param="audio")
            return _Question(
                text=form.string("text", max_chars=TEXT_MAX_CHARS),
                voice=form.string("voice"),
                tts_model=form.string("tts_model"),
                system_prompt=form.string("system_prompt", max_chars=TEXT_MAX_CHARS),
                conversation_id=form.string("conversation_id"),
                language=form.string("language"),
                fmt=choice(form, "format", CHAT_FORMATS, "mp3") or "mp3",
                stream=form.boolean("stream", False),
                audio=upload.chunks() if upload is not None and upload.size else b"",
                form=form,
            )
        except BaseException:
            form.close()
            raise
    raw = await read_body(request, _JSON_MAX_BYTES)
    try:
        body = VoiceChatBody.model_validate_json(raw)
    except ValidationError as error:
        raise RequestValidationError(error.errors(include_url=False, include_input=False)) from None
    return _Question(
        text=body.text,
        voice=body.voice or "",
        tts_model=body.tts_model or "",
        system_prompt=body.system_prompt or "",
        conversation_id=body.conversation_id or "",
        language=body.language or "",
        fmt=body.format,
        stream=body.stream,
    )


@both(
    router,
    "POST",
    "/v1/voice-chat/",
    response_class=Response,
    responses={
        200: {
            "description": "The turn: transcript, reply and the reply's audio URL; with `stream`, server-sent events.",
            "model": VoiceChatOut,
            "content": {"text/event-stream": {"schema": _EVENT}},
        },
        **errors(*BODY_ERRORS, 404),
    },
    openapi_extra={
        **request_body(VoiceChatForm, "multipart/form-data", or_json=VoiceChatBody),
        **AUTHENTICATED,
    },
)
async def voice_chat(request: Request, ticket: Ticket = Depends(admit), chat: ChatClient = Depends(chat_client)) -> Any:
    """One turn of a spoken conversation.

    Send `audio` (multipart) or `text` (multipart, or a JSON body with the same fields);
    the answer is the transcript, the assistant's reply and a link to the reply's speech,
    and `conversation_id` continues the conversation in the next turn. With `stream` the
    answer is server-sent events: `transcript`, then `text` and `audio` (base64 chunks of
    one file) as the reply is written and spoken, then `done` with the same JSON. 3 credits
    a turn, charged when its answer has been sent whole."""
    question = await _read(request)
    try:
        has_audio = bool(question.audio)
        if bool(question.text.strip()) == has_audio:
            which = "either 'audio' or 'text', not both" if has_audio else "'audio' (a recording) or 'text'"
            raise ApiError(400, "bad_request", f"Send {which}.", param="audio" if not has_audio else "text")
        stores = request.app.state.stores
        history: list[Turn] = []
        if question.conversation_id:
            found = await stores.conversations.history(question.conversation_id, ticket.caller.key.id, HISTORY_MESSAGES)
            if found is None:
                raise ApiError(
                    404,
                    "not_found",
                    f"No conversation '{question.conversation_id}' for this API key (they end "
                    f"{request.app.state.settings.conversation_seconds / 86400:g} days after their last turn).",
                    param="conversation_id",
                )
            history = found
        await ticket.meter(TURNS, 1)
        language = question.language or next((t.language for t in reversed(history) if t.role == "user"), "")
        config = chat_pb2.VoiceChatConfig(
            text=question.text.strip(),
            voice=question.voice,
            tts_model=question.tts_model,
            system_prompt=question.system_prompt,
            history=[chat_pb2.ChatMessage(role=t.role, content=t.content) for t in history],
            language=language if question.text.strip() else question.language,
            output=common_pb2.AudioOutputSpec(encoding=ENCODING_BY_FORMAT[question.fmt]),
        )
        responses = chat.voice_chat(config, question.audio)
        # The transcript comes first, or the turn's error: still a plain JSON error response.
        first = await anext(responses)
    except BaseException:
        question.close()
        raise
    turn = _Turn(request, ticket, question)
    if question.stream:
        return StreamingResponse(
            turn.events(first, responses), media_type="text/event-stream", headers={"Cache-Control": "no-cache"}
        )
    try:
        turn.take(first)
        async for response in responses:
            turn.take(response)
        return JSONResponse((await turn.finish()).model_dump())
    finally:
        await responses.aclose()
        question.close()


class _Turn:
    """What a turn's responses have said so far, and how it ends: charged, its audio
    stored, the conversation saved."""

    def __init__(self, request: Request, ticket: Ticket, question: _Question) -> None:
        self._request = request
        self._ticket = ticket
        self._question = question
        self.transcript = chat_pb2.VoiceChatTranscript()
        self.reply = chat_pb2.VoiceChatReply()
        self._audio: list[bytes] = []

    def take(self, response: chat_pb2.VoiceChatResponse) -> None:
        kind = response.WhichOneof("payload")
        if kind == "transcript":
            self.transcript = response.transcript
        elif kind == "audio" and response.audio.HasField("audio_content"):
            self._audio.append(response.audio.audio_content)
        elif kind == "reply":
            self.reply = response.reply

    async def finish(self) -> VoiceChatOut:
        key_id = self._ticket.caller.key.id
        await self._ticket.served(amount=1)
        self._ticket.describe(
            {"X-Voice": self.reply.voice, "X-Model": self.reply.model, "X-Language": self.reply.language}
        )
        audio_url = await store_audio(self._request, key_id, "chat", b"".join(self._audio), self._question.fmt)
        turns = [
            Turn("user", self.transcript.text, self.transcript.language),
            Turn("assistant", self.reply.text, self.reply.language),
        ]
        try:
            conversation_id = await self._request.app.state.stores.conversations.save(
                self._question.conversation_id or None, key_id, turns
            )
        except LookupError:
            raise ApiError(
                404, "not_found", "The conversation ended during this turn.", param="conversation_id"
            ) from None
        bill = self._ticket.bill
        return VoiceChatOut(
            conversation_id=conversation_id,
            user_text=self.transcript.text,
            ai_text=self.reply.text,
            audio_url=audio_url,
            credits_used=bill.credits if bill is not None else 0,
        )

    async def events(
        self, first: chat_pb2.VoiceChatResponse, responses: AsyncGenerator[chat_pb2.VoiceChatResponse, None]
    ) -> AsyncIterator[bytes]:
        try:
            self.take(first)
            yield _event("transcript", {"text": self.transcript.text, "language": self.transcript.language})
            async for response in responses:
                self.take(response)
                kind = response.WhichOneof("payload")
                if kind == "text_delta":
                    yield _event("text", {"delta": response.text_delta})
                elif kind == "audio" and response.audio.HasField("audio_content"):
                    yield _event("audio", {"chunk": base64.b64encode(response.audio.audio_content).decode()})
            done = await self.finish()
            yield _event("done", done.model_dump())
        except grpc.aio.AioRpcError as error:
            failure = rpc_failure(error)
            await self._ticket.served(amount=0)
            yield _event("error", {"error": {"code": failure.code, "message": failure.message, **failure.fields}})
        except ApiError as error:
            await self._ticket.served(amount=0)
            yield _event("error", {"error": {"code": error.code, "message": error.message, **error.fields}})
        finally:
            await responses.aclose()
            self._question.close()


def _event(name: str, data: dict[str, Any]) -> bytes:
    return f"event: {name}\ndata: {json.dumps(data, ensure_ascii=False)}\n\n".encode()
