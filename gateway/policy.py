"""`PlanPolicy`: what the platform enforces on each admitted request and how it is billed.

Admission: the plan's API access (403), its requests per minute and requests at once (429
`rate_limited` with Retry-After; gateway/ratelimit.py); X-RateLimit-* on every response to a
known key. Reservation: the plan's text limit (400), then the request's credits held before any
work (402 `insufficient_credits` with `credits_required` and `credits_available`;
gateway/pricing.py, gateway/store/credits.py); X-Credits-Used and X-Credits-Remaining on the
response. Settlement: a request that succeeded is charged for what it used; one that failed,
was abandoned or was cut off mid-stream costs nothing (its hold goes back); then its slot is
freed and the outcome counted (Prometheus) and logged.
"""

from __future__ import annotations

import logging

from prometheus_client import Counter

from gateway.admission import Bill, Outcome, Ticket
from gateway.errors import ApiError
from gateway.plans import check_text
from gateway.pricing import CHARACTERS, Price, price_of
from gateway.ratelimit import RequestRate, Slots
from gateway.store.credits import CreditStore, InsufficientCredits
from gateway.tiers import ModelTiers

log = logging.getLogger(__name__)

REQUESTS = Counter("speechmesh_gateway_requests", "Admitted requests by route and outcome.", ["route", "outcome"])
USAGE = Counter(
    "speechmesh_gateway_usage", "What admitted requests used, by route, unit and outcome.", ["route", "unit", "outcome"]
)
CREDITS = Counter("speechmesh_gateway_credits", "Credits charged, by route.", ["route"])
RATE_LIMITED = Counter(
    "speechmesh_gateway_rate_limited",
    "Requests refused with 429, by route and limit (minute, concurrent).",
    ["route", "limit"],
)

# A request in flight over this many requests at once waits for none: it is refused.
_CONCURRENT_RETRY_SECONDS = 1


class PlanPolicy:
    def __init__(
        self, rate: RequestRate, slots: Slots, credits: CreditStore, tiers: ModelTiers, hold_seconds: float
    ) -> None:
        self._rate = rate
        self._tiers = tiers
        self._slots = slots
        self._credits = credits
        self._hold_seconds = hold_seconds

    async def admit(self, ticket: Ticket) -> None:
        plan = ticket.caller.plan
        if not plan.api_access:
            raise ApiError(
                403,
                "forbidden",
                f"API access is available on the Pro and Enterprise plans; this key's plan is '{plan.name}'.",
            )
        key_id = ticket.caller.key.id
        # The slot first: a request refused for being one too many at once does not use up
        # the minute's budget (a client retrying after Retry-After: 1 would drain it).
        if plan.concurrent_requests:
            if not await self._slots.acquire(key_id, plan.concurrent_requests, ticket.request_id):
                RATE_LIMITED.labels(ticket.route, "concurrent").inc()
                window = await self._rate.peek(key_id, plan.requests_per_minute) if plan.requests_per_minute else None
                raise ApiError(
                    429,
                    "rate_limited",
                    f"Too many requests at once: the {plan.name} plan allows {plan.concurrent_requests} "
                    "in flight. Retry when one has finished.",
                    headers={**(window.headers() if window else {}), "Retry-After": str(_CONCURRENT_RETRY_SECONDS)},
                )
            ticket.slot = ticket.request_id
        if plan.requests_per_minute:
            window = await self._rate.hit(key_id, plan.requests_per_minute)
            ticket.describe(window.headers())
            if not window.allowed:
                RATE_LIMITED.labels(ticket.route, "minute").inc()
                if ticket.slot is not None:
                    await self._slots.release(key_id, ticket.slot)
                    ticket.slot = None
                raise ApiError(
                    429,
                    "rate_limited",
                    f"Too many requests: the {plan.name} plan allows {plan.requests_per_minute} a minute. "
                    "Check the rate limit headers.",
                    headers={**ticket.headers, "Retry-After": str(window.retry_after())},
                )

    async def reserve(
        self, ticket: Ticket, unit: str, amount: float, param: str | None, model: str | None, grade: str | None
    ) -> None:
        if unit == CHARACTERS:
            check_text(ticket.caller.plan, amount, param or "text")
        price = price_of(ticket.route, unit)
        if price is None or ticket.bill is not None:
            return
        bill = Bill(price, amount, grade or await self._tier(price, model))
        if bill.credits:
            try:
                bill.hold = await self._credits.hold(
                    ticket.caller.key.id, bill.credits, ticket.route, self._hold_seconds
                )
            except InsufficientCredits as short:
                ticket.describe({"X-Credits-Remaining": str(short.available)})
                raise ApiError(
                    402,
                    "insufficient_credits",
                    "You do not have enough credits for this request.",
                    credits_required=short.required,
                    credits_available=short.available,
                ) from None
        ticket.bill = bill
        self._describe(ticket, bill)

    async def _tier(self, price: Price, model: str | None) -> str | None:
        return await self._tiers.of(model) if price.by_tier and model else None

    async def served(self, ticket: Ticket, model: str | None, amount: float | None) -> None:
        bill = ticket.bill
        if bill is None:
            return
        if model is not None:
            bill.tier = await self._tier(bill.price, model)
        if amount is not None:
            bill.amount = amount
        self._describe(ticket, bill)

    def _describe(self, ticket: Ticket, bill: Bill) -> None:
        held = bill.hold.amount if bill.hold else 0
        left = bill.hold.balance if bill.hold else None
        charge = bill.credits
        headers = {"X-Credits-Used": str(charge)}
        if left is not None:
            # More than was held comes off the balance too, while it lasts (credits.settle).
            headers["X-Credits-Remaining"] = str(max(0, left + held - charge))
        ticket.describe(headers)

    async def settle(self, ticket: Ticket, outcome: Outcome) -> None:
        try:
            await self._bill(ticket, outcome)
        finally:
            if ticket.slot is not None:
                await self._slots.release(ticket.caller.key.id, ticket.slot)
        REQUESTS.labels(ticket.route, outcome).inc()
        for unit, amount in ticket.usage.items():
            USAGE.labels(ticket.route, unit, outcome).inc(amount)
        log.info(
            "request settled",
            extra={
                "route": ticket.route,
                "request_id": ticket.request_id,
                "key_id": ticket.caller.key.id,
                "outcome": str(outcome),
                "usage": ticket.usage,
                "credits": ticket.bill.credits if ticket.bill and outcome == Outcome.SUCCEEDED else 0,
                "sent_bytes": ticket.sent_bytes,
            },
        )

    async def _bill(self, ticket: Ticket, outcome: Outcome) -> None:
        bill = ticket.bill
        if bill is None or bill.hold is None:
            return
        if outcome == Outcome.SUCCEEDED:
            charged = await self._credits.settle(bill.hold.id, bill.credits, ticket.request_id)
            CREDITS.labels(ticket.route).inc(charged)
        else:
            await self._credits.release(bill.hold.id)
