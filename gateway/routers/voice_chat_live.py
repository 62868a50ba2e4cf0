"""WebSocket /v1/voice-chat/live: a spoken conversation in real time.

The client streams 16-bit PCM from a microphone; the STT service's live recognition cuts it
into utterances by voice activity (end of turn: its final result) and sends interim
transcripts meanwhile; each finished utterance is a voice-chat turn (3 credits, settled
when the reply has been sent whole), whose reply is streamed back as text and as 24 kHz
16-bit PCM as it is synthesized. Barge-in: speech heard while a reply is going out stops
that reply upstream (the model and the speech), and the interrupted turn is not charged.

Authentication as for every route, by `Authorization: Bearer <key>`, or, for browsers
(which cannot set headers on a WebSocket), by offering the subprotocols
`speechmesh.v1, bearer.<key>`: the server answers `speechmesh.v1`. Never in the URL.

Messages (docs/api.md has the full schema):
client -> server: a JSON `start` message first, then binary PCM frames; `{"type": "stop"}`
ends the session after the reply in progress.
server -> client: JSON `ready`, `transcript` (`final` false/true), `reply.start`,
`reply.text`, `reply.done`, `interrupted`, `error`; and binary frames, the reply's PCM.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
from dataclasses import dataclass
from typing import Any

import grpc
from fastapi import APIRouter, WebSocket, WebSocketDisconnect
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from gateway.admission import Outcome, Ticket
from gateway.auth import Caller, caller_of
from gateway.errors import ApiError, rpc_failure
from gateway.pricing import TURNS, price_of
from gateway.routers.voice_chat import HISTORY_MESSAGES
from gateway.schemas import ConversationId, Identifier, SystemPrompt
from gateway.store.conversations import Turn
from speechmesh.clients.mesh import Mesh
from speechmesh.v1 import chat_pb2, common_pb2, stt_pb2

log = logging.getLogger(__name__)

router = APIRouter()

PATH = "/v1/voice-chat/live"
PROTOCOL = "speechmesh.v1"
TOKEN_PREFIX = "bearer."
REPLY_RATE = 24_000
# The start message must come soon; a session is bounded like one long upload.
START_SECONDS = 10.0
SESSION_SECONDS = 30 * 60
# A microphone sends a frame every 20-100 ms; a minute of nothing is a client gone quiet.
IDLE_SECONDS = 60.0
_CLOSE_POLICY = 1008
_CLOSE_ERROR = 1011


class LiveStart(BaseModel):
    """The first client message."""

    model_config = ConfigDict(extra="ignore", strict=True)

    type: str = Field(pattern="^start$")
    sample_rate: int = Field(16000, ge=8000, le=48000, description="Rate of the client's 16-bit mono PCM.")
    language: Identifier | None = Field(None, description="ISO 639-1 language spoken; default: detected.")
    voice: Identifier | None = None
    tts_model: Identifier | None = None
    system_prompt: SystemPrompt | None = None
    conversation_id: ConversationId | None = None


def _secret(websocket: WebSocket) -> tuple[str, bool]:
    """The API key, and whether it came as a subprotocol (then one is answered)."""
    scheme, _, secret = websocket.headers.get("authorization", "").partition(" ")
    if scheme.lower() == "bearer" and secret.strip():
        return secret.strip(), False
    offered = [part.strip() for part in websocket.headers.get("sec-websocket-protocol", "").split(",")]
    token = next((part for part in offered if part.startswith(TOKEN_PREFIX)), "")
    return token.removeprefix(TOKEN_PREFIX), bool(token)


@router.websocket(PATH)
async def live(websocket: WebSocket) -> None:
    """Live voice chat over a WebSocket.

    Authenticate with `Authorization: Bearer <key>` or, from a browser, the subprotocols
    `speechmesh.v1, bearer.<key>`. Send a JSON `{"type": "start", "sample_rate": 16000}`
    (optional `language`, `voice`, `tts_model`, `system_prompt`, `conversation_id`), then
    binary frames of 16-bit little-endian mono PCM, and `{"type": "stop"}` to end. The
    server sends JSON `ready`, `transcript` (`final` false, then true when a pause ends the
    turn), `reply.start`, `reply.text`, `reply.done`, `interrupted` and `error` events, and
    the reply's speech as binary frames of 24 kHz 16-bit PCM. 3 credits a turn."""
    secret, by_protocol = _secret(websocket)
    await websocket.accept(subprotocol=PROTOCOL if by_protocol else None)
    session: _Session | None = None
    try:
        if not secret:
            raise ApiError(401, "unauthorized", "Missing API key: 'Authorization: Bearer ...' or the subprotocol.")
        caller = await caller_of(websocket.app.state.stores.keys, secret)
        mesh: Mesh = websocket.app.state.mesh
        if mesh.stt is None or mesh.chat is None:
            raise ApiError(503, "model_loading", "Live voice chat needs the STT and chat services: not deployed here.")
        start = await _start(websocket)
        await _can_pay_a_turn(websocket, caller)
        session = _Session(websocket, caller, mesh, start)
        async with asyncio.timeout(SESSION_SECONDS):
            await session.run()
        await websocket.close()
    except WebSocketDisconnect:
        pass
    except ApiError as error:
        await _fail(websocket, error.code, error.message, error.fields, _CLOSE_POLICY)
    except grpc.aio.AioRpcError as error:
        failure = rpc_failure(error)
        await _fail(websocket, failure.code, failure.message, failure.fields, _CLOSE_ERROR)
    except TimeoutError:
        await _fail(websocket, "timeout", f"A live session lasts at most {SESSION_SECONDS // 60} minutes.", {}, 1000)
    finally:
        if session is not None:
            await session.close()


async def _start(websocket: WebSocket) -> LiveStart:
    try:
        async with asyncio.timeout(START_SECONDS):
            first = await websocket.receive_text()
    except TimeoutError:
        raise ApiError(400, "bad_request", "Send the JSON start message first.") from None
    except KeyError:  # a binary frame first: no "text" in it
        raise ApiError(400, "bad_request", "The first message must be the JSON start message.") from None
    try:
        return LiveStart.model_validate_json(first)
    except ValidationError as error:
        problem = error.errors(include_url=False, include_input=False)[0]
        where = ".".join(str(part) for part in problem.get("loc", ()))
        raise ApiError(400, "bad_request", f"Start message: '{where}': {problem.get('msg')}.", param=where) from None


async def _can_pay_a_turn(websocket: WebSocket, caller: Caller) -> None:
    """A key that cannot pay one turn gets its 402 now: the session's recognition is not free
    to run for it (each turn is admitted and held again when it starts)."""
    price = price_of("/v1/voice-chat/", TURNS)
    needed = price.of(1, None) if price is not None else 0
    available = await websocket.app.state.stores.credits.balance(caller.key.id)
    if available < needed:
        raise ApiError(
            402,
            "insufficient_credits",
            "You do not have enough credits for a voice-chat turn.",
            credits_required=needed,
            credits_available=available,
        )


async def _fail(websocket: WebSocket, code: str, message: str, fields: dict[str, Any], close: int) -> None:
    with contextlib.suppress(Exception):
        await websocket.send_text(json.dumps({"type": "error", "error": {"code": code, "message": message, **fields}}))
        await websocket.close(close)


class _Refused(Exception):
    """A client frame the session does not take."""


@dataclass
class _Heard:
    text: str
    language: str


class _Session:
    def __init__(self, websocket: WebSocket, caller: Caller, mesh: Mesh, start: LiveStart) -> None:
        self._websocket = websocket
        self._caller = caller
        self._mesh = mesh
        self._start = start
        self._conversation_id = start.conversation_id or ""
        self._audio: asyncio.Queue[bytes | None] = asyncio.Queue(maxsize=256)
        self._sending = asyncio.Lock()
        self._reply: asyncio.Task[None] | None = None
        self._reader: asyncio.Task[None] | None = None

    async def run(self) -> None:
        stores = self._websocket.app.state.stores
        if self._conversation_id:
            found = await stores.conversations.history(self._conversation_id, self._caller.key.id, 1)
            if found is None:
                raise ApiError(404, "not_found", "No such conversation for this API key.", param="conversation_id")
        assert self._mesh.stt is not None
        config = stt_pb2.StreamingRecognitionConfig(
            config=stt_pb2.RecognitionConfig(
                language=self._start.language or "",
                model=self._websocket.app.state.settings.english_stt_model if self._start.language == "en" else "",
            ),
            audio_format=stt_pb2.RawAudioFormat(sample_rate_hertz=self._start.sample_rate, channels=1),
            interim_results=True,
        )
        self._reader = asyncio.create_task(self._read())
        await self._send({"type": "ready", "sample_rate": self._start.sample_rate, "reply_sample_rate": REPLY_RATE})
        async for result in self._mesh.stt.streaming_recognize(config, self._pcm()):
            text = result.text.strip()
            if not text:
                continue
            if self._reply is not None and not self._reply.done():
                # The user speaks over the reply: stop it, upstream too.
                self._reply.cancel()
                try:
                    await self._reply
                except asyncio.CancelledError:
                    current = asyncio.current_task()
                    if current is not None and current.cancelling():  # the session's own end
                        raise
                await self._send({"type": "interrupted"})
            await self._send({"type": "transcript", "text": text, "final": result.is_final})
            if result.is_final:
                self._reply = asyncio.create_task(self._answer(_Heard(text, result.language)))
        if self._reply is not None:
            await self._reply

    async def _read(self) -> None:
        """Client frames: PCM into the recognizer's queue; `stop`, leaving, a frame over a
        second of audio or a minute without any frame ends it."""
        largest = self._start.sample_rate * 2  # one second of 16-bit mono
        try:
            while True:
                async with asyncio.timeout(IDLE_SECONDS):
                    message = await self._websocket.receive()
                if message["type"] == "websocket.disconnect":
                    break
                if message.get("bytes"):
                    if len(message["bytes"]) > largest:
                        raise _Refused(f"A frame holds at most one second of audio ({largest} bytes).")
                    await self._audio.put(message["bytes"])
                elif message.get("text") and json.loads(message["text"]).get("type") == "stop":
                    break
        except TimeoutError:
            await self._error("timeout", f"No audio for {IDLE_SECONDS:g} s: the session ends.")
        except _Refused as refused:
            await self._error("bad_request", str(refused))
        except (ValueError, AttributeError):
            await self._error("bad_request", "Unreadable message: JSON objects and binary PCM frames only.")
        finally:
            await self._audio.put(None)

    async def _error(self, code: str, message: str) -> None:
        with contextlib.suppress(Exception):
            await self._send({"type": "error", "error": {"code": code, "message": message}})

    async def _pcm(self) -> Any:
        while (chunk := await self._audio.get()) is not None:
            yield chunk

    async def _send(self, event: dict[str, Any] | bytes) -> None:
        async with self._sending:
            if isinstance(event, bytes):
                await self._websocket.send_bytes(event)
            else:
                await self._websocket.send_text(json.dumps(event, ensure_ascii=False))

    async def _answer(self, heard: _Heard) -> None:
        """One turn: admitted and metered like POST /v1/voice-chat/, settled by how it ended."""
        app = self._websocket.app
        stores = app.state.stores
        ticket = Ticket(self._caller, "/v1/voice-chat/", app.state.policy)
        outcome = Outcome.FAILED
        responses = None
        try:
            await app.state.policy.admit(ticket)
            await ticket.meter(TURNS, 1)
            history: list[Turn] = []
            if self._conversation_id:
                found = await stores.conversations.history(self._conversation_id, self._caller.key.id, HISTORY_MESSAGES)
                if found is None:
                    # It ended during the session (30 days without a turn): this turn starts another.
                    await self._error("not_found", "The conversation ended; this turn starts a new one.")
                    self._conversation_id = ""
                history = found or []
            config = chat_pb2.VoiceChatConfig(
                text=heard.text,
                voice=self._start.voice or "",
                tts_model=self._start.tts_model or "",
                system_prompt=self._start.system_prompt or "",
                history=[chat_pb2.ChatMessage(role=t.role, content=t.content) for t in history],
                language=heard.language,
                output=common_pb2.AudioOutputSpec(encoding=common_pb2.LINEAR16, sample_rate_hertz=REPLY_RATE),
            )
            assert self._mesh.chat is not None
            responses = self._mesh.chat.voice_chat(config)
            outcome = Outcome.CUT
            reply = chat_pb2.VoiceChatReply()
            await self._send({"type": "reply.start", "sample_rate": REPLY_RATE, "encoding": "pcm_s16le"})
            async for response in responses:
                kind = response.WhichOneof("payload")
                if kind == "text_delta":
                    await self._send({"type": "reply.text", "delta": response.text_delta})
                elif kind == "audio" and response.audio.HasField("audio_content"):
                    await self._send(response.audio.audio_content)
                elif kind == "reply":
                    reply = response.reply
            await ticket.served(amount=1)
            self._conversation_id = await stores.conversations.save(
                self._conversation_id or None,
                self._caller.key.id,
                [Turn("user", heard.text, heard.language), Turn("assistant", reply.text, reply.language)],
            )
            outcome = Outcome.SUCCEEDED
            await self._send(
                {
                    "type": "reply.done",
                    "conversation_id": self._conversation_id,
                    "user_text": heard.text,
                    "ai_text": reply.text,
                    "credits_used": ticket.bill.credits if ticket.bill is not None else 0,
                }
            )
        except ApiError as error:
            await self._send({"type": "error", "error": {"code": error.code, "message": error.message, **error.fields}})
        except grpc.aio.AioRpcError as error:
            failure = rpc_failure(error)
            await self._send(
                {"type": "error", "error": {"code": failure.code, "message": failure.message, **failure.fields}}
            )
        except LookupError:
            await self._send({"type": "error", "error": {"code": "not_found", "message": "The conversation ended."}})
        finally:
            if responses is not None:
                await responses.aclose()
            if ticket.bill is not None or ticket.slot is not None:
                await asyncio.shield(app.state.policy.settle(ticket, outcome))

    async def close(self) -> None:
        for task in (self._reply, self._reader):
            if task is not None and not task.done():
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError, Exception):
                    await task
