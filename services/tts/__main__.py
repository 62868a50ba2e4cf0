"""`python -m services.tts`: run the TTS service until SIGTERM."""

import asyncio

from services.tts.registry import build_engines
from services.tts.server import spec
from services.tts.settings import TtsSettings
from speechmesh.runtime import server as runtime


def main() -> None:
    settings = TtsSettings()
    asyncio.run(runtime.serve(spec(settings), settings, build_engines(settings)))


if __name__ == "__main__":
    main()
