"""Running the Debian command-line synthesizers (eSpeak NG, Festival) the same way."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import PurePath

from speechmesh.common.errors import ModelUnavailable


def find_command(name: str, package: str) -> str:
    """The path of `name`; ModelUnavailable naming the Debian `package` when it is missing."""
    path = shutil.which(name)
    if path is None:
        # `name` may be a configured path, which clients must not see.
        command = PurePath(name).name
        raise ModelUnavailable(f"the '{command}' command is not installed (Debian package {package})", detail=name)
    return path


def run_command(arguments: list[str], data: bytes, timeout: float) -> bytes:
    """stdout of the command; RuntimeError with its stderr when it fails."""
    done = subprocess.run(arguments, input=data, capture_output=True, timeout=timeout, check=False)
    if done.returncode != 0:
        message = done.stderr.decode("utf-8", "replace").strip()
        raise RuntimeError(f"{arguments[0]} failed (exit {done.returncode}): {message}")
    return done.stdout
