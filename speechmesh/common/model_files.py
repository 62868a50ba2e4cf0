"""Installing model weights atomically, as `make models` does for each model that needs it.

A model is written into a private staging folder beside its target and renamed into place
only once it is complete and checked, so a service never loads a half-written or corrupted
model; a failed install leaves nothing behind. The installers share their command line too:
`python -m <installer> --models-dir var/models`.
"""

from __future__ import annotations

import argparse
import shutil
import tempfile
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path


@contextmanager
def staged(target: Path) -> Iterator[Path]:
    """A folder to write the model into; on a clean exit it becomes `target` (replacing an
    older, partial one), on an exception it is removed."""
    target.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{target.name}-", dir=target.parent))
    try:
        yield staging
        staging.chmod(0o755)  # mkdtemp makes it private; the service may run as another user
        shutil.rmtree(target, ignore_errors=True)
        staging.rename(target)
    finally:
        shutil.rmtree(staging, ignore_errors=True)


def install_command(install: Callable[[Path], Path], description: str) -> None:
    """Runs `install(models_dir)` for `--models-dir` and prints where the model is."""
    parser = argparse.ArgumentParser(description=description)
    parser.add_argument("--models-dir", type=Path, default=Path("var/models"))
    print(install(parser.parse_args().models_dir))
