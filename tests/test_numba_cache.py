"""Processes that start together never share a numba cache: sharing one corrupted it and
every later start segfaulted (speechmesh/runtime/numba_cache.py)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent

# Claims a cache, then compiles and runs librosa's gufuncs that `import librosa` builds
# (cached numba gufuncs, as the beat tracker where the corrupted cache crashed: 6 s cold
# where the beat tracker's take 25) and prints the folder it compiled into.
_LIBROSA = """
import sys
from pathlib import Path
from speechmesh.runtime.numba_cache import claim
folder = claim("service", Path(sys.argv[1]))
import numpy as np, librosa
librosa.zero_crossings(np.sin(np.arange(2000, dtype=np.float32)))
print(folder)
"""

_HOLD = """
import sys, time
from pathlib import Path
from speechmesh.runtime.numba_cache import claim
print(claim("service", Path(sys.argv[1])), flush=True)
time.sleep(60)
"""


def _python(script: str, root: Path) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-c", script, str(root)], cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )


def _claimed_once(root: Path) -> Path:
    """The folder a process that claims and exits at once got."""
    script = _HOLD.replace("time.sleep(60)", "")
    claimed = subprocess.run(
        [sys.executable, "-c", script, str(root)], cwd=ROOT, capture_output=True, text=True, check=True, timeout=60
    )
    return Path(claimed.stdout.strip())


def test_a_held_cache_is_not_shared_and_is_free_again_when_its_process_dies(tmp_path: Path) -> None:
    holder = _python(_HOLD, tmp_path)
    try:
        assert holder.stdout is not None
        assert holder.stdout.readline().strip() == str(tmp_path / "service")
        own = _claimed_once(tmp_path)
        assert own.parent == tmp_path and own.name.startswith("service-")
        assert not own.exists()  # removed when that process exited
    finally:
        holder.kill()  # SIGKILL: the kernel still drops the lock
        holder.communicate()
    assert _claimed_once(tmp_path) == tmp_path / "service"


@pytest.mark.slow
def test_processes_compiling_librosa_at_once_all_run_and_leave_a_sound_cache(tmp_path: Path) -> None:
    """Two processes sharing one fresh cache crashed here 3 times in 3 (SIGSEGV), and so did
    every later process reading it."""
    first, second = _python(_LIBROSA, tmp_path), _python(_LIBROSA, tmp_path)
    results = [process.communicate(timeout=240) for process in (first, second)]
    assert [first.returncode, second.returncode] == [0, 0], results
    assert sorted(out.strip() == str(tmp_path / "service") for out, _ in results) == [False, True]
    later = _python(_LIBROSA, tmp_path)
    out, err = later.communicate(timeout=240)
    assert later.returncode == 0, err
    assert out.strip() == str(tmp_path / "service")
