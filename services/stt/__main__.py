"""`python -m services.stt`: run the STT service until SIGTERM."""

import asyncio

from services.stt.registry import build_engines
from services.stt.server import spec
from services.stt.settings import SttSettings
from speechmesh.runtime import server as runtime


def main() -> None:
    settings = SttSettings()
    asyncio.run(runtime.serve(spec(settings), settings, build_engines(settings)))


if __name__ == "__main__":
    main()
