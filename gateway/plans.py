"""Account plans and what each allows through the API (seed page: 'Rate limits')."""

from __future__ import annotations

from dataclasses import dataclass


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
    )
}
