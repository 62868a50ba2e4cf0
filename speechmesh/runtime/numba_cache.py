"""A numba cache folder that no other process writes while this one runs.

librosa's functions are numba-compiled with `cache=True`, some of them when librosa is
imported. numba's on-disk cache is not safe for two processes compiling into it at once:
the two halves of a gufunc, written by different processes, name different symbols, and
every later load of that cache segfaults, at each restart (numba/numba#10128; seen here
when two pytest workers first imported librosa together, and `make run` starts the stt and
audio services together). So each process claims `<root>/<name>` under an exclusive lock
held until it exits (the kernel drops it even on SIGKILL, so a crash frees it). Another
live process holding it (a second replica on the same host, a second test run) makes this
one compile into a fresh folder of its own, removed at exit: slower to start, never
corrupt.

The root is `NUMBA_CACHE_DIR` when the operator sets it, else `<tempdir>/speechmesh-numba`;
the claim then points `NUMBA_CACHE_DIR` at the claimed folder for numba to read.
"""

from __future__ import annotations

import atexit
import fcntl
import os
import shutil
import sys
import tempfile
from pathlib import Path
from typing import IO

DEFAULT_ROOT = Path(tempfile.gettempdir()) / "speechmesh-numba"

# Open lock files: closing one would drop its lock.
_held: list[IO[str]] = []


def claim(name: str, root: Path | None = None) -> Path:
    """Points numba at a cache folder only this process writes; returns the folder."""
    base = root or Path(os.environ.get("NUMBA_CACHE_DIR") or DEFAULT_ROOT)
    folder = base / name
    folder.mkdir(parents=True, exist_ok=True)
    lock = open(folder / ".lock", "w")  # noqa: SIM115 (held open for the life of the process)
    try:
        fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
        _held.append(lock)
    except BlockingIOError:
        lock.close()
        folder = Path(tempfile.mkdtemp(prefix=f"{name}-", dir=base))
        atexit.register(shutil.rmtree, folder, ignore_errors=True)
    os.environ["NUMBA_CACHE_DIR"] = str(folder)
    if "numba" in sys.modules:  # numba reads its settings once, when imported
        import numba.core.config

        numba.core.config.reload_config()  # type: ignore[no-untyped-call]
    return folder
