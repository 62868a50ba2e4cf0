"""The gateway imports no codec, numeric, tracing-SDK or model runtime: it only relays to the services.

Checked in a fresh interpreter, since the test process itself has imported everything.
"""

from __future__ import annotations

import subprocess
import sys

HEAVY = ("av", "numpy", "opentelemetry.sdk", "scipy", "onnxruntime")


def test_gateway_imports_nothing_heavy() -> None:
    script = f"import sys, gateway.app; print(' '.join(m for m in {HEAVY!r} if m in sys.modules))"
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, check=True, timeout=120)
    assert result.stdout.split() == []


def _imports(path) -> set[str]:
    import ast

    tree = ast.parse(path.read_text())
    found: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module:
            found.add(node.module)
            found.update(f"{node.module}.{alias.name}" for alias in node.names)
    return found


def test_services_keep_to_their_own_parts() -> None:
    """No service imports another; servicers import no concrete engine; engines import no gRPC."""
    from pathlib import Path

    services = Path(__file__).resolve().parent.parent / "services"
    for service in (folder for folder in services.iterdir() if (folder / "__init__.py").is_file()):
        for path in service.rglob("*.py"):
            imported = _imports(path)
            others = {name for name in imported if name.startswith("services.")}
            assert all(name.startswith(f"services.{service.name}") for name in others), (path, others)
            if path.name == "servicer.py":
                assert not any(".engines" in name for name in imported), path
            if path.parent.name == "engines":
                assert not any(name == "grpc" or name.startswith("grpc.") for name in imported), path
