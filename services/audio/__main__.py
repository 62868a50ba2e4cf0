"""`python -m services.audio`: run the audio service until SIGTERM."""

import asyncio

from services.audio.registry import build_engines
from services.audio.server import spec
from services.audio.settings import AudioSettings
from speechmesh.runtime import server as runtime


def main() -> None:
    settings = AudioSettings()
    asyncio.run(runtime.serve(spec(settings), settings, build_engines(settings)))


if __name__ == "__main__":
    main()
