"""Webhook URLs and deliveries: the SSRF check, the page's payload, Standard Webhooks signing.

A webhook URL must be http(s) to a host whose every address is public: loopback, private,
link-local (cloud metadata at 169.254.169.254), multicast and reserved addresses are refused
at submission and checked again before each delivery (a name can resolve elsewhere later),
unless the operator sets `webhook_allow_private`; an IPv4 address inside an IPv6 one (mapped,
6to4, NAT64, Teredo) counts as that IPv4 address. The delivery connects to the address it
checked (the host stays in the Host header and the TLS name), so a second DNS answer cannot
send it elsewhere. Redirects are not followed, proxies from the environment not used.
"""

from __future__ import annotations

import asyncio
import ipaddress
import json
import socket
from dataclasses import dataclass
from datetime import UTC, datetime
from urllib.parse import urlsplit, urlunsplit

import httpx
from standardwebhooks import Webhook

from gateway.store.tasks import SUCCESS, Task

_TIMEOUT = httpx.Timeout(10.0)
URL_MAX_CHARS = 2048
_RESOLVE_SECONDS = 3.0


class RefusedUrl(ValueError):
    pass


@dataclass(frozen=True)
class Target:
    """A checked webhook URL and the address it is to be reached at."""

    url: str
    host: str
    address: str


async def check_url(url: str, allow_private: bool) -> Target:
    """The URL's host resolved and checked, or RefusedUrl saying why it cannot receive webhooks."""
    if len(url) > URL_MAX_CHARS:
        raise RefusedUrl(f"it is longer than {URL_MAX_CHARS} characters")
    try:
        parts = urlsplit(url)
        port = parts.port or (443 if parts.scheme == "https" else 80)
    except ValueError:  # "http://[::1/", a port past 65535, ...
        raise RefusedUrl("it is not a valid URL") from None
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise RefusedUrl("it must be an http:// or https:// URL with a host")
    if parts.username or parts.password:
        raise RefusedUrl("it must not carry credentials")
    try:
        async with asyncio.timeout(_RESOLVE_SECONDS):
            found = await asyncio.get_running_loop().getaddrinfo(parts.hostname, port, type=socket.SOCK_STREAM)
    except (OSError, ValueError, UnicodeError, TimeoutError):
        raise RefusedUrl(f"its host '{parts.hostname}' does not resolve") from None
    addresses = [ipaddress.ip_address(sockaddr[0]) for *_, sockaddr in found]
    if not allow_private:
        for address in addresses:
            if not _public(address):
                raise RefusedUrl(f"its host resolves to {address}, which is not a public address")
    return Target(url, parts.hostname, str(addresses[0]))


_NAT64 = ipaddress.IPv6Network("64:ff9b::/96")


def _public(address: ipaddress.IPv4Address | ipaddress.IPv6Address) -> bool:
    """Global, and so is any IPv4 address carried inside an IPv6 one (mapped, 6to4, NAT64,
    IPv4-compatible, Teredo), which would reach that IPv4 host."""
    if not address.is_global:
        return False
    if isinstance(address, ipaddress.IPv4Address):
        return True
    inside = [address.ipv4_mapped, address.sixtofour, *(address.teredo or ())]
    if address in _NAT64 or int(address) >> 32 == 0:
        inside.append(ipaddress.IPv4Address(int(address) & 0xFFFFFFFF))
    return all(embedded is None or embedded.is_global for embedded in inside)


def _pinned(target: Target) -> tuple[str, str]:
    """The URL with its host replaced by the checked address (no second lookup that could
    answer otherwise), and the Host header it had."""
    parts = urlsplit(target.url)
    literal = f"[{target.address}]" if ":" in target.address else target.address
    netloc = f"{literal}:{parts.port}" if parts.port else literal
    host = f"{parts.hostname}:{parts.port}" if parts.port else str(parts.hostname)
    return urlunsplit(parts._replace(netloc=netloc)), host


def utc_stamp(value: str | None) -> str | None:
    """A stored UTC time as the page writes it: "2025-01-15T10:30:45Z"."""
    return value.replace("+00:00", "Z") if value else value


def payload(task: Task, result_url: str | None) -> dict[str, object]:
    body: dict[str, object] = {
        "event": "task.completed" if task.status == SUCCESS else "task.failed",
        "task_id": task.id,
        "status": task.status,
        "result_url": result_url if task.status == SUCCESS else None,
        "credits_used": task.credits_used,
        "created_at": utc_stamp(task.created_at),
        "completed_at": utc_stamp(task.completed_at),
    }
    if task.error:
        body["error"] = json.loads(task.error)
    return body


async def deliver(url: str, secret: str, task: Task, result_url: str | None, allow_private: bool) -> int:
    """POSTs the signed payload; the receiver's status (raises on a refused URL or no answer)."""
    target = await check_url(url, allow_private)
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
    pinned, host = _pinned(target)
    # trust_env off: no proxy from the environment; the TLS name and Host are the URL's own.
    async with httpx.AsyncClient(timeout=_TIMEOUT, follow_redirects=False, trust_env=False) as client:
        reply = await client.post(
            pinned,
            content=data,
            headers={**headers, "host": host},
            extensions={"sni_hostname": target.host},
        )
    return reply.status_code
