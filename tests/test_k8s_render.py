"""Every overlay and component combination under deploy/k8s, rendered by the real
`kubectl kustomize` (tests/kustomize.py) and checked by the tools a cluster's gatekeepers use:
kubernetes-validate (the Kubernetes 1.37 OpenAPI schemas, unknown fields refused), checkov
(deploy/k8s/checkov.yaml; each skip explained in docs/deploy.md) and yamllint on the sources.

What the objects mean (ports, settings, routes, probes, sizing) is tests/test_k8s_manifests.py's.
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

import kubernetes_validate
import pytest
import yaml

from tests import kustomize

K8S = kustomize.K8S
DOCS = kustomize.ROOT / "docs" / "deploy.md"
KUBERNETES_VERSION = "1.37.0"
# checkov installs into its own venv beside the project's (the Makefile's CHECKOV): its pins
# (boto3, packaging, networkx) would downgrade the project's packages.
CHECKOV = Path(sys.prefix) / "checkov" / "bin" / "checkov"
# Manifests applied by hand (kubectl apply -f), outside every kustomization.
BY_HAND = [K8S / "components" / "stt-models" / "loader.yaml"]

TARGETS = kustomize.targets()


@pytest.fixture(scope="module", autouse=True)
def _rendered_once() -> None:
    kustomize.render_all(TARGETS)


def test_every_overlay_and_component_combination_is_a_target() -> None:
    assert kustomize.overlays() == ["overlays/dev", "overlays/gpu"]
    assert "overlays/dev" in TARGETS and "overlays/gpu" in TARGETS
    # dev (no component) with every valid set of the four; gpu (triton, gpu, envoy) +- stt-models.
    assert len(TARGETS) == 12 + 2
    assert not [t for t in TARGETS if "gpu" in t.split("+")[1:] and "triton" not in t], "gpu patches triton"


def _unique_objects() -> list[dict]:
    seen: dict[str, dict] = {}
    for target in TARGETS:
        for obj in kustomize.render(target):
            seen.setdefault(json.dumps(obj, sort_keys=True), obj)
    for path in BY_HAND:
        for obj in yaml.safe_load_all(path.read_text(encoding="utf-8")):
            seen.setdefault(json.dumps(obj, sort_keys=True), obj)
    return list(seen.values())


def test_every_object_is_valid_for_kubernetes() -> None:
    """Strict: a misspelt field (which the API server would drop, or refuse) fails here."""
    objects = _unique_objects()
    assert len(objects) > 80
    for obj in objects:
        where = f"{obj.get('kind')}/{obj.get('metadata', {}).get('name')}"
        try:
            kubernetes_validate.validate(obj, KUBERNETES_VERSION, strict=True)
        except kubernetes_validate.ValidationError as error:
            pytest.fail(f"{where}: {error.path}: {error.message}")


def test_every_target_lands_in_the_namespace_its_overlay_names() -> None:
    for target in TARGETS:
        objects = kustomize.render(target)
        (namespace,) = [o for o in objects if o["kind"] == "Namespace"]
        name = namespace["metadata"]["name"]
        # The restricted Pod Security Standard: the API server refuses a pod that is not locked down.
        assert namespace["metadata"]["labels"]["pod-security.kubernetes.io/enforce"] == "restricted"
        others = {o["metadata"].get("namespace") for o in objects if o["kind"] != "Namespace"}
        assert others == {name}, target


def _checkov_skips() -> list[str]:
    return yaml.safe_load((K8S / "checkov.yaml").read_text(encoding="utf-8"))["skip-check"]


def test_checkov_finds_nothing_that_is_not_justified(tmp_path: Path) -> None:
    for target in TARGETS:
        (tmp_path / f"{re.sub(r'[/+]', '_', target)}.yaml").write_text(kustomize.rendered_text(target))
    for path in BY_HAND:
        (tmp_path / path.name).write_text(path.read_text(encoding="utf-8"))
    assert CHECKOV.is_file(), f"{CHECKOV} missing: `make install` (or `make test`) installs it"
    completed = subprocess.run(
        [str(CHECKOV), "--config-file", str(K8S / "checkov.yaml"), "-d", str(tmp_path), "--quiet", "-o", "json"],
        capture_output=True,
        text=True,
        timeout=240,
        check=False,
        cwd=tmp_path,
    )
    assert completed.stdout.strip(), completed.stderr[-3000:]
    reports = json.loads(completed.stdout)
    reports = reports if isinstance(reports, list) else [reports]
    failed = {(r["check_id"], r["resource"]) for report in reports for r in report["results"]["failed_checks"]}
    summary = [report["summary"] for report in reports]
    assert not failed, (sorted(failed), summary)
    assert sum(s["parsing_errors"] for s in summary) == 0, summary
    assert sum(s["resource_count"] for s in summary) > 500, summary
    # The only skips annotated on objects: the loader's three, documented with their reasons
    # (--quiet leaves out the lists of passed and skipped checks, which take checkov seconds).
    assert sum(s["skipped"] for s in summary) == len(_annotated_skips()) == 3, summary


def _annotated_skips() -> set[str]:
    annotations = {}
    for path in BY_HAND:
        for obj in yaml.safe_load_all(path.read_text(encoding="utf-8")):
            annotations |= obj["metadata"].get("annotations", {})
    return {value.partition("=")[0] for key, value in annotations.items() if key.startswith("checkov.io/skip")}


def test_every_checkov_skip_is_explained_in_the_docs() -> None:
    docs = DOCS.read_text(encoding="utf-8")
    (section,) = re.findall(r"^## Checkov\n(.*?)(?=^## )", docs, flags=re.MULTILINE | re.DOTALL)
    for check in [*_checkov_skips(), *_annotated_skips()]:
        assert f"`{check}`" in section, check


def test_the_sources_pass_yamllint() -> None:
    completed = subprocess.run(
        [
            str(Path(sys.executable).parent / "yamllint"),
            "-c",
            str(K8S / "yamllint.yaml"),
            "--strict",
            "-f",
            "parsable",
            str(K8S),
        ],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert completed.returncode == 0, completed.stdout + completed.stderr
