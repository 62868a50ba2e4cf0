"""The playground: a web page at `/` that tries the API in a browser, its files served from
`gateway/playground/` under `/playground/` (plain ES modules and CSS: nothing to build,
nothing loaded from elsewhere).

The page holds an API key, so it is served with a Content-Security-Policy that lets it load
and connect to this origin only (audio it made itself plays from `blob:` URLs), and it may
not be framed by another site.
"""

from __future__ import annotations

from pathlib import Path

from fastapi import APIRouter
from fastapi.responses import FileResponse
from fastapi.staticfiles import StaticFiles

FILES = Path(__file__).resolve().parent.parent / "playground"
PREFIX = "/playground"
SECURITY_HEADERS = {
    "Content-Security-Policy": (
        "default-src 'self'; media-src 'self' blob:; connect-src 'self' blob:; object-src 'none'; base-uri 'none'; "
        "form-action 'self'; frame-ancestors 'none'"
    ),
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
}

router = APIRouter()


@router.get("/", include_in_schema=False)
async def playground() -> FileResponse:
    return FileResponse(FILES / "index.html", headers=SECURITY_HEADERS)


def files() -> StaticFiles:
    """The page's scripts and styles, mounted at PREFIX."""
    return StaticFiles(directory=FILES)
