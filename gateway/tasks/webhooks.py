"""Webhook URLs and deliveries: the SSRF check, the page's payload, Standard Webhooks signing.

A webhook URL must be http(s) to a host whose every address is public: loopback, private,
link-local (cloud metadata at 169.254.169.254), multicast and reserved addresses are refused
at submission and checked again before each delivery (a name can resolve elsewhere later),
unless the operator sets `webhook_allow_private`. Redirects are not followed.
"""

from __future__ import annotations

import asyncio
import ipaddress
import json
import socket
from datetime import UTC, datetime
from urllib.parse import urlsplit

import httpx
from standardwebhooks import Webhook

from gateway.store.tasks import SUCCESS, Task

_TIMEOUT = httpx.Timeout(10.0)
URL_MAX_CHARS = 2048


class RefusedUrl(ValueError):
    pass


async def check_url(url: str, allow_private: bool) -> None:
    """Raises RefusedUrl saying why `url` cannot receive webhooks."""
    if len(url) > URL_MAX_CHARS:
        raise RefusedUrl(f"it is longer than {URL_MAX_CHARS} characters")
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise RefusedUrl("it must be an http:// or https:// URL with a host")
    if parts.username or parts.password:
        raise RefusedUrl("it must not carry credentials")
    try:
        port = parts.port or (443 if parts.scheme == "https" else 80)
        found = await asyncio.get_running_loop().getaddrinfo(parts.hostname, port, type=socket.SOCK_STREAM)
    except (OSError, ValueError, UnicodeError):
        raise RefusedUrl(f"its host '{parts.hostname}' does not resolve") from None
    if allow_private:
        return
    for *_, sockaddr in found:
        address = ipaddress.ip_address(sockaddr[0])
        if not address.is_global:
            raise RefusedUrl(f"its host resolves to {address}, which is not a public address")


def _stamp(value: str | None) -> str | None:
    # The page writes "2025-01-15T10:30:45Z".
    return value.replace("+00:00", "Z") if value else value


def payload(task: Task, result_url: str | None) -> dict[str, object]:
    body: dict[str, object] = {
        "event": "task.completed" if task.status == SUCCESS else "task.failed",
        "task_id": task.id,
        "status": task.status,
        "result_url": result_url if task.status == SUCCESS else None,
        "credits_used": task.credits_used,
        "created_at": _stamp(task.created_at),
        "completed_at": _stamp(task.completed_at),
    }
    if task.error:
        body["error"] = json.loads(task.error)
    return body


async def deliver(url: str, secret: str, task: Task, result_url: str | None, allow_private: bool) -> int:
    """POSTs the signed payload; the receiver's status (raises on a refused URL or no answer)."""
    await check_url(url, allow_private)
    data = json.dumps(payload(task, result_url), separators=(",", ":"))
    # One id per task: a receiver that got an earlier attempt can tell this is the same event.
    message_id = f"msg_{task.id}"
    now = datetime.now(UTC)
    headers = {
        "content-type": "application/json",
        "webhook-id": message_id,
        "webhook-timestamp": str(int(now.timestamp())),
        "webhook-signature": Webhook(secret).sign(message_id, now, data),
    }
    async with httpx.AsyncClient(timeout=_TIMEOUT, follow_redirects=False) as client:
        reply = await client.post(url, content=data, headers=headers)
    return reply.status_code
