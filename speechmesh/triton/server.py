"""Starts a real Triton Inference Server on this machine with speechmesh's model repository.

`python -m speechmesh.triton.server [--model piper ...]` (make run-triton, the tests, the
Triton pods). The server is the `tritonserver` of the nvidia-pytriton wheel (Triton 2.51 with
the python backend; no GPU needed), set up the way ../shared/design/infra.md found it works:

1. The python backend's stub loads `libpython3.X.so` by name: the interpreter's own LIBDIR
   goes first on LD_LIBRARY_PATH, or a system Python of another patch level is found and the
   model crashes at start. The wheel's bundled libraries (libcudart, ...) follow: the stub
   finds them through its RPATH only where the wheel put it, and it runs from a copy.
2. The stub runs models with the `python3` first on PATH: this interpreter's folder goes
   first, so models import this environment's packages (and speechmesh itself).
3. `libtriton_python.so`, `triton_python_backend_utils.py` and the stub for this Python
   version are copied into `<run-dir>/backends/python`, the `--backend-directory`.

Models load explicitly (`--model-control-mode=explicit`): the ones named, or every model
in the repository. The process replaces itself with tritonserver (exec), so a supervisor's
signals reach the server: SIGTERM lets requests in flight finish within `--exit-timeout`.
"""

from __future__ import annotations

import argparse
import importlib.util
import os
import shutil
import sys
import sysconfig
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
REPOSITORY = ROOT / "deploy" / "triton" / "models"
_BACKEND_FILES = ("libtriton_python.so", "triton_python_backend_utils.py")


def pytriton_dir() -> Path:
    spec = importlib.util.find_spec("pytriton")
    if spec is None or not spec.submodule_search_locations:
        raise SystemExit("Triton is not installed: `make install EXTRAS=triton` (the nvidia-pytriton wheel).")
    return Path(next(iter(spec.submodule_search_locations))) / "tritonserver"


def backend_directory(run_dir: Path) -> Path:
    """The python backend, with this interpreter's stub, in a folder of its own."""
    source = pytriton_dir()
    target = run_dir / "backends" / "python"
    target.mkdir(parents=True, exist_ok=True)
    files = [source / "backends" / "python" / name for name in _BACKEND_FILES]
    files.append(
        source
        / "python_backend_stubs"
        / f"{sys.version_info.major}.{sys.version_info.minor}"
        / "triton_python_backend_stub"
    )
    for file in files:
        copy = target / file.name
        if (
            not copy.exists()
            or copy.stat().st_size != file.stat().st_size
            or copy.stat().st_mtime < file.stat().st_mtime
        ):
            shutil.copy2(file, copy)
    return target.parent


def environment() -> dict[str, str]:
    env = dict(os.environ)
    libraries = [str(sysconfig.get_config_var("LIBDIR")), str(pytriton_dir().parent.parent / "nvidia_pytriton.libs")]
    if env.get("LD_LIBRARY_PATH"):
        libraries.append(env["LD_LIBRARY_PATH"])
    env["LD_LIBRARY_PATH"] = os.pathsep.join(libraries)
    env["PATH"] = os.pathsep.join([str(Path(sys.executable).parent), env.get("PATH", "")])
    # Models import speechmesh and the services' engines from this checkout.
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(ROOT), env.get("PYTHONPATH", "")]))
    return env


def command(args: argparse.Namespace) -> list[str]:
    repository = Path(args.repository).resolve()
    models = args.model or sorted(path.name for path in repository.iterdir() if (path / "config.pbtxt").is_file())
    return [
        str(pytriton_dir() / "bin" / "tritonserver"),
        f"--model-repository={repository}",
        f"--backend-directory={backend_directory(Path(args.run_dir).resolve())}",
        "--model-control-mode=explicit",
        *(f"--load-model={model}" for model in models),
        f"--grpc-address={args.host}",
        f"--grpc-port={args.grpc_port}",
        f"--http-address={args.host}",
        f"--http-port={args.http_port}",
        f"--metrics-address={args.host}",
        f"--metrics-port={args.metrics_port}",
        f"--exit-timeout-secs={args.exit_timeout}",
        "--log-verbose=0",
    ]


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", action="append", help="A model to load (repeat); default: every model.")
    parser.add_argument("--repository", default=str(REPOSITORY), help="The model repository.")
    parser.add_argument("--run-dir", default=str(ROOT / "var" / "triton"), help="Where the backend folder goes.")
    parser.add_argument("--host", default="127.0.0.1", help="Address every port binds (0.0.0.0 in a pod).")
    for name, port in (("grpc", 8001), ("http", 8000), ("metrics", 8002)):
        variable = f"SPEECHMESH_TRITON_{name.upper()}_PORT"
        parser.add_argument(
            f"--{name}-port", type=int, default=int(os.environ.get(variable, port)), help=f"${variable}"
        )
    parser.add_argument("--exit-timeout", type=int, default=10, help="Seconds in-flight requests get at SIGTERM.")
    args = parser.parse_args(argv)
    argv_out = command(args)
    os.execve(argv_out[0], argv_out, environment())


if __name__ == "__main__":
    main()
