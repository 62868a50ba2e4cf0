"""`python -m services.chat`: run the chat service until SIGTERM."""

import asyncio

from services.chat.registry import build_engines
from services.chat.server import spec
from services.chat.settings import ChatSettings
from speechmesh.runtime import server as runtime


def main() -> None:
    settings = ChatSettings()
    asyncio.run(runtime.serve(spec(settings), settings, build_engines(settings)))


if __name__ == "__main__":
    main()
