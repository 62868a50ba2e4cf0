"""A language model served over HTTP by any OpenAI-compatible server.

llama.cpp's `llama-server`, vLLM, Ollama and OpenAI itself all answer
`POST {base_url}/chat/completions`; this engine streams the reply from there
(`"stream": true`, server-sent events) and passes each piece on as it arrives, so the
chat pipeline can start speaking before the model has finished. The model runs in that
server, not here: no weights, no tokenizer, no GPU in this process, only `httpx`
(imported on load, so a service without it lists the model as unavailable instead of
failing to start).

Stopping early (the caller left, or `on_delta` has enough) closes the HTTP response
unread: the servers above stop generating when their client disconnects, so an
abandoned reply costs them nothing more.

Errors: the server unreachable, timing out, failing (5xx) or rate-limiting (429) raises
`UpstreamUnavailable` (retrying later may work); the server refusing the request (other
4xx: a wrong API key, an unknown model) raises `ModelUnavailable` (retrying will not help
until an operator fixes the configuration). Messages never contain the API key, and name
neither the server's address nor what it answered: those go to the log and to
`ModelUnavailable.detail`, with any credentials removed.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Iterator, Sequence
from typing import TYPE_CHECKING, Any

from services.chat.processors import Message, OnDelta, Written
from speechmesh.common.cancel import checkpoint
from speechmesh.common.errors import ModelUnavailable, UpstreamUnavailable

if TYPE_CHECKING:  # httpx is imported on load
    import httpx

log = logging.getLogger(__name__)

# How much of an error body the log keeps: enough for the server's reason, not a whole page.
_BODY_EXCERPT = 300


class OpenAiCompatibleModel:
    # Whatever the served model writes well is the operator's knowledge, not the server's:
    # the OpenAI API does not say, so every language is passed through untranslated.
    languages: frozenset[str] | None = None

    def __init__(self, base_url: str, api_key: str, model: str, context_tokens: int, timeout_seconds: float) -> None:
        """`base_url` ends before `/chat/completions` (e.g. "http://127.0.0.1:8080/v1");
        `api_key` may be empty (no Authorization header is sent, as local servers expect);
        `model` is sent as the request's "model"; `context_tokens` is the context the
        server was started with (the API does not report it); `timeout_seconds` bounds
        every wait: connecting, and each gap between streamed pieces (not the whole reply,
        whose length `max_tokens` and the caller bound)."""
        self.context_tokens = context_tokens
        self._base_url = base_url.rstrip("/")
        self._api_key = api_key
        self._model = model
        self._timeout_seconds = timeout_seconds
        self._client: httpx.Client | None = None

    def load(self) -> None:
        import httpx

        self.close()
        headers = {"Authorization": f"Bearer {self._api_key}"} if self._api_key else {}
        # One client, shared by the service's threads: it keeps connections to the server open.
        client = httpx.Client(base_url=self._base_url, headers=headers, timeout=self._timeout_seconds)
        try:
            response = client.get("models")
        except httpx.HTTPError as error:
            client.close()
            raise ModelUnavailable(
                "The language model server does not answer.", detail=self._detail(f"GET models: {error!r}")
            ) from None
        if not response.is_success:
            client.close()
            raise ModelUnavailable(
                f"The language model server refused to list its models (HTTP {response.status_code}).",
                detail=self._detail(f"GET models: HTTP {response.status_code}: {self._excerpt(response.text)}"),
            )
        self._client = client
        served = _model_ids(response)
        # Not an error: llama.cpp serves the one model it was started with under whatever
        # name a request gives, and lists it under its file name; vLLM and Ollama would
        # answer 404 to every reply, which says the same thing then.
        if served is not None and self._model not in served:
            log.warning(
                "the language model server does not list model %r (it lists %s)",
                self._model,
                sorted(served)[:20],
                extra={"url": self._safe_url()},
            )

    def warm_up(self) -> None:
        # Nothing is warmed here: the model lives in the server, which `load` saw answer.
        # llama.cpp and vLLM load it before they answer at all; Ollama loads it on its first
        # request, and a generation here to trigger that would cost every start of this
        # service a request (billed, on OpenAI) for a delay only Ollama's first reply has.
        pass

    def close(self) -> None:
        """Closes the connections to the server (`load` opens them again)."""
        if self._client is not None:
            self._client.close()
            self._client = None

    def count_tokens(self, text: str) -> int:
        # No tokenizer here: the server's model could be any. A byte-based estimate is
        # deliberately high for most text: BPE vocabularies of current models average about
        # 4 bytes of English a token and 3 or more bytes of UTF-8 a token in other scripts
        # (2-3 bytes a character), so 3 bytes a token overestimates; the +1 covers a short
        # text's partial token. It can undercount text of rare characters, emoji or runs
        # of punctuation, which a tokenizer may split to a token a byte or two, so callers
        # should leave the prompt a margin below `context_tokens`.
        return len(text.encode("utf-8")) // 3 + 1

    def reply(self, messages: Sequence[Message], max_tokens: int, on_delta: OnDelta) -> Written:
        import httpx

        client = self._client
        if client is None:
            raise ModelUnavailable("The language model is not loaded.")
        body = {
            "model": self._model,
            "messages": [{"role": message.role, "content": message.content} for message in messages],
            "max_tokens": max_tokens,
            "stream": True,
        }
        pieces: list[str] = []
        # The last finish reason the server gave: "stop" when the model ended the reply,
        # "length" when `max_tokens` did; none is seen when `on_delta` stopped the reply.
        finish = ""
        try:
            with client.stream(
                "POST", "chat/completions", json=body, headers={"Accept": "text/event-stream"}
            ) as response:
                if not response.is_success:
                    response.read()
                    raise self._refusal(response)
                for piece, reason in _deltas(response):
                    finish = reason or finish
                    if not piece:
                        continue
                    pieces.append(piece)
                    if on_delta(piece):
                        # Leaving the `with` closes the response unread, which drops the
                        # connection: the server stops generating.
                        break
        except httpx.TimeoutException:
            log.warning("the language model server timed out", extra={"url": self._safe_url()})
            raise UpstreamUnavailable(
                f"The language model server did not answer within {self._timeout_seconds:g} s; retry later."
            ) from None
        except httpx.HTTPError as error:
            # Connection refused or dropped, a broken stream: the server is down or restarting.
            log.warning("the language model server failed: %r", error, extra={"url": self._safe_url()})
            raise UpstreamUnavailable("The language model server cannot be reached now; retry later.") from None
        return Written("".join(pieces), finished=finish == "stop")

    def _refusal(self, response: httpx.Response) -> UpstreamUnavailable | ModelUnavailable:
        status = response.status_code
        detail = self._detail(f"POST chat/completions: HTTP {status}: {self._excerpt(response.text)}")
        log.warning("the language model server refused a reply: %s", detail)
        if status >= 500 or status in (408, 429):
            return UpstreamUnavailable(f"The language model server failed (HTTP {status}); retry later.")
        if status in (401, 403):
            return ModelUnavailable(
                f"The language model server refused this service's API key (HTTP {status}).", detail=detail
            )
        if status == 404:
            return ModelUnavailable(
                f"The language model server does not serve model '{self._model}' (HTTP 404).", detail=detail
            )
        # 400 and the like: a misconfigured server or model (e.g. a context smaller than
        # `context_tokens` says); the log has the server's words.
        return ModelUnavailable(f"The language model server refused the request (HTTP {status}).", detail=detail)

    def _safe_url(self) -> str:
        """The base URL without a user name or password in it, for the log."""
        import httpx

        try:
            return str(httpx.URL(self._base_url).copy_with(username=None, password=None))
        except httpx.InvalidURL:
            return "(an invalid URL)"

    def _detail(self, text: str) -> str:
        return self._redact(f"{self._safe_url()}: {text}")

    def _excerpt(self, text: str) -> str:
        return self._redact(" ".join(text.split())[:_BODY_EXCERPT])

    def _redact(self, text: str) -> str:
        # Servers may echo a refused key back in their error; the log never gets it whole.
        return text.replace(self._api_key, "***") if self._api_key else text


def _deltas(response: httpx.Response) -> Iterator[tuple[str, str]]:
    """(`choices[0].delta.content`, `choices[0].finish_reason`) of each chunk of a streamed
    reply until `[DONE]`, "" where absent.

    A server that ignored `"stream": true` and answered with one JSON object yields its
    whole message as one piece."""
    content_type = response.headers.get("content-type", "")
    if content_type.startswith("text/html"):
        # A web page, not the API: the base URL misses its "/v1" or names another server.
        raise ModelUnavailable("The language model server answered with a web page, not a reply; check its URL.")
    if content_type.startswith("application/json"):
        response.read()
        yield _choice(_parse(response.text), "message")
        return
    for event, data in _events(response):
        if data == "[DONE]":
            return
        chunk = _parse(data)
        # OpenAI sends `data: {"error": ...}`, llama.cpp `error: {...}`, when generation
        # fails once the response has begun (its status is already 200).
        if event == "error" or "error" in chunk:
            log.warning("the language model server failed while replying: %s", data[:_BODY_EXCERPT])
            raise UpstreamUnavailable("The language model server failed while replying; retry later.")
        yield _choice(chunk, "delta")


def _events(response: httpx.Response) -> Iterator[tuple[str, str]]:
    """(event name, data) of each server-sent event (the WHATWG format: `data:` lines
    joined by newlines, a blank line ends an event, `:` lines are comments)."""
    event = ""
    data: list[str] = []
    for line in response.iter_lines():
        # The caller went away (speechmesh.common.cancel): stop reading, which drops the
        # connection as the `with` in `reply` closes the response.
        checkpoint()
        if not line:
            if data:
                yield event or "message", "\n".join(data)
            event, data = "", []
            continue
        name, _, value = line.partition(":")
        value = value.removeprefix(" ")
        if name == "data":
            data.append(value)
        elif name == "event":
            event = value
        elif name == "error":
            # llama.cpp's non-standard error line: an event of its own.
            yield "error", value
    if data:
        yield event or "message", "\n".join(data)


def _parse(data: str) -> dict[str, Any]:
    try:
        chunk = json.loads(data)
    except json.JSONDecodeError:
        chunk = None
    if not isinstance(chunk, dict):
        log.warning("the language model server sent a malformed chunk: %s", data[:_BODY_EXCERPT])
        raise UpstreamUnavailable("The language model server sent a malformed reply; retry later.")
    return chunk


def _choice(chunk: dict[str, Any], key: str) -> tuple[str, str]:
    """(`choices[0][key].content`, `choices[0].finish_reason`), key "delta" streamed or
    "message" whole; "" where absent (a chunk of usage or of the finish reason only has no
    content, and most chunks have no finish reason)."""
    choices = chunk.get("choices")
    if not isinstance(choices, list) or not choices or not isinstance(choices[0], dict):
        return "", ""
    part = choices[0].get(key)
    content = part.get("content") if isinstance(part, dict) else None
    reason = choices[0].get("finish_reason")
    return (content if isinstance(content, str) else "", reason if isinstance(reason, str) else "")


def _model_ids(response: httpx.Response) -> set[str] | None:
    """The ids in a GET /models answer (`{"data": [{"id": ...}]}`), or None if it has none."""
    try:
        listing = response.json()
    except ValueError:
        return None
    entries = listing.get("data") if isinstance(listing, dict) else None
    if not isinstance(entries, list):
        return None
    return {entry["id"] for entry in entries if isinstance(entry, dict) and isinstance(entry.get("id"), str)}
