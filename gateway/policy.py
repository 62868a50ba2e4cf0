"""`PlanPolicy`: what the platform enforces today — the plan's API access and text limit —
and the accounting of every admitted request (Prometheus counters and one log line), by
outcome. Rate limits and credits (the platform issue) extend this class's three steps."""

from __future__ import annotations

import logging

from prometheus_client import Counter

from gateway.admission import Outcome, Ticket
from gateway.errors import ApiError

log = logging.getLogger(__name__)

REQUESTS = Counter("speechmesh_gateway_requests", "Admitted requests by route and outcome.", ["route", "outcome"])
USAGE = Counter(
    "speechmesh_gateway_usage", "What admitted requests used, by route, unit and outcome.", ["route", "unit", "outcome"]
)


class PlanPolicy:
    async def admit(self, ticket: Ticket) -> None:
        plan = ticket.caller.plan
        if not plan.api_access:
            raise ApiError(
                403,
                "forbidden",
                f"API access is available on the Pro and Enterprise plans; this key's plan is '{plan.name}'.",
            )

    async def reserve(self, ticket: Ticket, unit: str, amount: float, param: str | None) -> None:
        plan = ticket.caller.plan
        if unit == "characters" and amount > plan.max_text_chars:
            name = param or "text"
            raise ApiError(
                400,
                "bad_request",
                f"'{name}' is {amount:.0f} characters; the {plan.name} plan allows {plan.max_text_chars}.",
                param=name,
            )

    async def settle(self, ticket: Ticket, outcome: Outcome) -> None:
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
                "sent_bytes": ticket.sent_bytes,
            },
        )
