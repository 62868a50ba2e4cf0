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
