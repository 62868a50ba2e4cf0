"""The one admission point of the API: who may call, what the call used, and the headers
every response carries.

Every route that needs a key depends on `admit`: it authenticates the key, checks its plan,
opens the request's `Ticket` and passes it to the `Policy`, which may refuse it (rate and
concurrency limits) before any work starts. The route then records on the ticket what it
uses (`await ticket.meter(...)`: characters, audio seconds) and what served it
(`ticket.describe(...)`: X-Model and the like), never on its response object.

`AdmissionMiddleware` wraps every request: it adds the ticket's headers and an
X-Request-Id to whatever response leaves (a 200, an error, a stream; an unexpected
exception becomes the documented 500 here, with them), and when the response has ended —
sent whole, failed, cut off mid-stream, or abandoned by a client that left before it — it
settles the ticket with the policy, whose accounting sees the outcome. A request the policy
refused is not settled: it holds nothing.
"""

from __future__ import annotations

import asyncio
import enum
import logging
import uuid
from collections.abc import Mapping, MutableMapping
from dataclasses import dataclass, field
from typing import Any, Protocol

from fastapi import Request
from fastapi.routing import APIRoute
from starlette.datastructures import MutableHeaders

from gateway.auth import Caller, authenticate
from gateway.connection import ABANDONED
from gateway.errors import INTERNAL, error_response
from gateway.pricing import Price
from gateway.routers import documented_path
from gateway.store.credits import Hold

log = logging.getLogger(__name__)

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]


class Outcome(enum.StrEnum):
    SUCCEEDED = "succeeded"  # a success status, its body sent to the end
    FAILED = "failed"  # an error status, or no response at all
    CUT = "cut"  # a success status whose body stopped early: the client left, or an upstream failed mid-stream
    ABANDONED = "abandoned"  # the client left before any response (gateway/connection.py cancelled the work)


@dataclass
class Bill:
    """What an admitted request is held for and will be charged: its usage priced once the
    work has said what it used (the model that spoke, the decoded duration)."""

    price: Price
    amount: float
    tier: str | None  # of the model that speaks, or the grade asked, where the price depends on it
    hold: Hold | None = None

    @property
    def credits(self) -> int:
        return self.price.of(self.amount, self.tier)


@dataclass
class Ticket:
    """One admitted request: its caller, what it used and what the response should say."""

    caller: Caller
    route: str
    policy: Policy
    request_id: str = ""
    headers: dict[str, str] = field(default_factory=dict)
    usage: dict[str, float] = field(default_factory=dict)
    bill: Bill | None = None
    # The request's concurrency slot, freed when it is settled.
    slot: str | None = None
    # Response body bytes delivered, for a stream cut off midway.
    sent_bytes: int = 0

    def describe(self, headers: Mapping[str, str]) -> None:
        """Headers for the response, whatever it turns out to be ({"X-Model": "kokoro"})."""
        self.headers.update(headers)

    def headers_for(self, status: int) -> dict[str, str]:
        """The headers of a response of `status`: an error is charged nothing and says so,
        with the balance its hold went back to."""
        if status < 400 or self.bill is None or "X-Credits-Used" not in self.headers:
            return self.headers
        headers = {**self.headers, "X-Credits-Used": "0"}
        hold = self.bill.hold
        if hold is not None:
            headers["X-Credits-Remaining"] = str(hold.balance + hold.amount)
        return headers

    async def meter(
        self,
        unit: str,
        amount: float,
        param: str | None = None,
        model: str | None = None,
        grade: str | None = None,
    ) -> None:
        """Records `amount` of `unit` ("characters", "audio_seconds") as what this request
        will use, on `model` where the price depends on it (None: not known yet), or at
        `grade` where it depends on what is asked (stem separation's stem count); the policy
        may refuse it (an ApiError naming `param`, the field that asks for it: 400 over the
        plan's text limit, 402 without the credits) before the work starts."""
        await self.policy.reserve(self, unit, amount, param, model, grade)
        self.usage[unit] = self.usage.get(unit, 0.0) + amount

    async def served(self, *, model: str | None = None, amount: float | None = None) -> None:
        """What the work turned out to use: the model that spoke, the audio's decoded length.
        Called before the response starts, so its headers say what will be charged."""
        if amount is not None and self.bill is not None:
            self.usage[self.bill.price.unit] = amount
        await self.policy.served(self, model, amount)

    def transfer(self) -> Bill | None:
        """Hands the bill to a task, which settles it when it ends (this request then does not)."""
        bill, self.bill = self.bill, None
        return bill


class Policy(Protocol):
    """What the platform enforces and accounts for each admitted request."""

    async def admit(self, ticket: Ticket) -> None:
        """Raises an ApiError to refuse the request before any work (e.g. 429)."""

    async def reserve(
        self, ticket: Ticket, unit: str, amount: float, param: str | None, model: str | None, grade: str | None
    ) -> None:
        """Raises an ApiError to refuse usage the caller cannot pay for (e.g. 402)."""

    async def served(self, ticket: Ticket, model: str | None, amount: float | None) -> None:
        """Re-prices the ticket's bill (and its headers) for what the work used."""

    async def settle(self, ticket: Ticket, outcome: Outcome) -> None:
        """Accounts for the request once its response has ended, whatever the outcome."""


async def admit(request: Request) -> Ticket:
    """The dependency of every route that needs a key (FastAPI runs it once per request)."""
    caller = await authenticate(request)
    route = request.scope.get("route")
    policy: Policy = request.app.state.policy
    # Labelled by its documented path, whichever spelling was called.
    path = documented_path(route) if isinstance(route, APIRoute) else request.url.path
    ticket = Ticket(caller, path, policy, getattr(request.state, "request_id", ""))
    await policy.admit(ticket)
    # Only an admitted request is settled: one the policy refused holds nothing to release.
    request.state.ticket = ticket
    return ticket


@dataclass
class _Response:
    status: int | None = None
    complete: bool = False


class AdmissionMiddleware:
    def __init__(self, app: Any) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        request_id = uuid.uuid4().hex
        state = scope.setdefault("state", {})
        state["request_id"] = request_id
        response = _Response()

        async def decorated(message: Message) -> None:
            ticket: Ticket | None = state.get("ticket")
            if message["type"] == "http.response.start":
                headers = MutableHeaders(scope=message)
                headers["X-Request-Id"] = request_id
                for name, value in (ticket.headers_for(message["status"]) if ticket else {}).items():
                    headers[name] = value
            await send(message)
            # Counted once sent: a server whose send fails on a disconnect did not deliver it.
            if message["type"] == "http.response.start":
                response.status = message["status"]
            elif message["type"] == "http.response.body":
                if ticket is not None:
                    ticket.sent_bytes += len(message.get("body", b""))
                response.complete = not message.get("more_body", False)

        try:
            await self.app(scope, receive, decorated)
        except Exception:
            log.exception("unhandled error", extra={"path": scope.get("path"), "request_id": request_id})
            if response.status is None:
                # Connection: close, as the guard adds for any early reply: the body may be unread.
                reply = error_response(
                    *INTERNAL, "Internal server error; please retry later.", headers={"Connection": "close"}
                )
                await reply(scope, receive, decorated)
        finally:
            ticket = state.get("ticket")
            if ticket is not None:
                # Settled even while the request's task is being cancelled (the client left).
                await asyncio.shield(_settle(ticket, _outcome(response, state), request_id))


def _outcome(response: _Response, state: MutableMapping[str, Any]) -> Outcome:
    if response.status is None and state.get(ABANDONED):
        return Outcome.ABANDONED
    if response.status is None or response.status >= 400:
        return Outcome.FAILED
    return Outcome.SUCCEEDED if response.complete else Outcome.CUT


async def _settle(ticket: Ticket, outcome: Outcome, request_id: str) -> None:
    try:
        await ticket.policy.settle(ticket, outcome)
    except Exception:
        log.exception("settling a request failed", extra={"request_id": request_id, "route": ticket.route})
