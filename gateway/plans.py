"""Account plans and what each allows through the API (seed page: 'Steuersätze').

free, basic, pro and enterprise are the page's. `internal` is the operator's own (not on the
page): no request limits, Enterprise's text limit, credits as any key, for the operator's
services and batch jobs on their own hardware (0 requests a minute or at once: unlimited).
"""

from __future__ import annotations

from dataclasses import dataclass

from gateway.errors import ApiError


@dataclass(frozen=True)
class Plan:
    name: str
    api_access: bool
    requests_per_minute: int
    concurrent_requests: int
    max_text_chars: int


PLANS: dict[str, Plan] = {
    plan.name: plan
    for plan in (
        Plan("free", False, 0, 0, 0),
        Plan("basic", False, 0, 0, 0),
        Plan("pro", True, 60, 5, 5_000),
        Plan("enterprise", True, 300, 20, 50_000),
        Plan("internal", True, 0, 0, 50_000),
    )
}


def check_text(plan: Plan, characters: float, param: str) -> None:
    """400 for a text past what `plan` allows (`param` names the field)."""
    if characters > plan.max_text_chars:
        raise ApiError(
            400,
            "bad_request",
            f"'{param}' is {characters:.0f} characters; the {plan.name} plan allows {plan.max_text_chars}.",
            param=param,
        )
