"""`python -m gateway.first_run`, started once by `make run` (supervisord.conf) beside the services.

Makes sure a local API key exists (kept beside the key database, var/first-run-key, mode
600; a Pro key with `starting_credits`, 1,000 by default), waits until the gateway reports
every capability serving, prints a first request to try, and exits; supervisord does not
start it again.
"""

from __future__ import annotations

import asyncio
import json
import sys
import time
import urllib.error
import urllib.request

from gateway.settings import GatewaySettings
from gateway.store.stores import open_stores

WAIT_SECONDS = 300
FIRST_REQUEST = {
    "model": "piper",
    "text": "Hello from speechmesh! This is a test.",
    "voice": "en_US-joe-medium",
    "format": "mp3",
}


async def _key(settings: GatewaySettings) -> str:
    path = settings.database_path.parent / "first-run-key"
    stores = await open_stores(settings)
    try:
        if path.exists() and await stores.keys.lookup(path.read_text().strip()):
            return path.read_text().strip()
        key, secret = await stores.keys.create("make-run", "pro")
        if settings.starting_credits:
            await stores.credits.grant(key.id, settings.starting_credits, "first-run key")
    finally:
        await stores.close()
    path.touch(mode=0o600)
    path.write_text(secret + "\n")
    return secret


def _wait_ready(base: str) -> bool:
    deadline = time.monotonic() + WAIT_SECONDS
    while time.monotonic() < deadline:
        try:
            with urllib.request.urlopen(f"{base}/readyz", timeout=2) as reply:
                # Ready answers 200 while services still load: wait for every capability.
                if all(state == "serving" for state in json.load(reply)["capabilities"].values()):
                    return True
        except (urllib.error.URLError, ConnectionError, TimeoutError):
            pass
        time.sleep(0.5)
    return False


def main() -> None:
    settings = GatewaySettings()
    secret = asyncio.run(_key(settings))
    base = f"http://{settings.host}:{settings.port}"
    if not _wait_ready(base):
        print(f"speechmesh did not become ready within {WAIT_SECONDS} s; see the logs above.", file=sys.stderr)
        sys.exit(1)
    print(
        f"""
speechmesh is ready on {base}  (API key for this machine: {secret})

Try it:
  curl -X POST {base}/v1/tts/ \\
    -H "Authorization: Bearer {secret}" \\
    -H "Content-Type: application/json" \\
    -d '{json.dumps(FIRST_REQUEST)}' \\
    --output output.mp3

  curl -X POST {base}/v1/stt/ \\
    -H "Authorization: Bearer {secret}" \\
    -F "file=@output.mp3" -F "timestamps=true"

  curl -H "Authorization: Bearer {secret}" {base}/v1/voices/
  curl -H "Authorization: Bearer {secret}" {base}/v1/models/

More keys: .venv/bin/python -m gateway.keys create --name my-app --plan pro --credits 1000
More credits: .venv/bin/python -m gateway.keys credits 1 --grant 1000
Press Ctrl-C to stop every service.
""",
        flush=True,
    )


if __name__ == "__main__":
    main()
