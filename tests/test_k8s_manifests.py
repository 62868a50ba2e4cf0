"""The kustomize manifests under deploy/k8s, checked without kubectl or a cluster.

A small renderer follows each kustomization the way kustomize does (resources, then
components in order, then generators, then strategic-merge patches) and the checks run on
what it yields. It understands only the kustomize features these files use and fails on
any other, so a new feature has to be taught here before it can hide from the checks.
Generated ConfigMaps keep their plain names (kustomize adds a hash and rewrites references
to match, so references resolve the same either way).
"""

from __future__ import annotations

import copy
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

K8S = Path(__file__).resolve().parent.parent / "deploy" / "k8s"
TARGETS = ["base", "overlays/local", "overlays/gpu"]
SPEECHMESH_IMAGE = "speechmesh"

Obj = dict[str, Any]

# Kustomization fields that change nothing these checks look at.
_COSMETIC = {"apiVersion", "kind", "labels", "commonAnnotations", "images", "namespace"}
_HANDLED = {"resources", "components", "configMapGenerator", "patches"}


def _load_docs(path: Path) -> list[Obj]:
    return [doc for doc in yaml.safe_load_all(path.read_text(encoding="utf-8")) if doc is not None]


def _kustomization(directory: Path) -> Obj:
    path = directory / "kustomization.yaml"
    assert path.is_file(), f"{directory} has no kustomization.yaml"
    (doc,) = _load_docs(path)
    unknown = set(doc) - _COSMETIC - _HANDLED
    assert not unknown, f"{path}: the test's renderer does not handle {sorted(unknown)}"
    return doc


def _named_list(items: Any) -> bool:
    return isinstance(items, list) and all(isinstance(i, dict) and "name" in i for i in items)


def _merge(base: Any, patch: Any) -> Any:
    """Strategic merge as these patches need it: maps merge, lists of named maps merge by name."""
    if isinstance(base, dict) and isinstance(patch, dict):
        merged = dict(base)
        for key, value in patch.items():
            merged[key] = _merge(base[key], value) if key in base else copy.deepcopy(value)
        return merged
    if _named_list(base) and _named_list(patch):
        merged = [copy.deepcopy(item) for item in base]
        for item in patch:
            at = next((i for i, old in enumerate(merged) if old["name"] == item["name"]), None)
            if at is None:
                merged.append(copy.deepcopy(item))
            else:
                merged[at] = _merge(merged[at], item)
        return merged
    return copy.deepcopy(patch)


def _generate_configmap(directory: Path, spec: Obj) -> Obj:
    data: dict[str, str] = {}
    for literal in spec.get("literals", []):
        key, sep, value = literal.partition("=")
        assert sep, f"{directory}: literal {literal!r} has no '='"
        data[key] = value
    for name in spec.get("files", []):
        key, _, file = name.partition("=") if "=" in name else (Path(name).name, "", name)
        path = directory / file
        assert path.is_file(), f"{directory}: configMapGenerator file {file} does not exist"
        data[key] = path.read_text(encoding="utf-8")
    assert set(spec) <= {"name", "literals", "files", "behavior"}, f"{directory}: unhandled generator fields"
    return {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": spec["name"]}, "data": data}


def render(directory: Path, accumulated: list[Obj] | None = None, *, component: bool = False) -> list[Obj]:
    """The objects `kubectl kustomize directory` would produce, minus hashes and labels."""
    kust = _kustomization(directory)
    assert kust.get("kind", "Kustomization") == ("Component" if component else "Kustomization"), directory
    objects = accumulated if accumulated is not None else []
    for entry in kust.get("resources", []):
        path = (directory / entry).resolve()
        assert path.exists(), f"{directory}: resource {entry} does not exist"
        objects.extend(render(path) if path.is_dir() else _load_docs(path))
    for entry in kust.get("components", []):
        path = (directory / entry).resolve()
        assert path.is_dir(), f"{directory}: component {entry} does not exist"
        objects = render(path, objects, component=True)
    for spec in kust.get("configMapGenerator", []):
        generated = _generate_configmap(directory, spec)
        behavior = spec.get("behavior", "create")
        found = [o for o in objects if o["kind"] == "ConfigMap" and o["metadata"]["name"] == spec["name"]]
        if behavior == "create":
            assert not found, f"{directory}: ConfigMap {spec['name']} generated twice"
            objects.append(generated)
        else:
            assert found, f"{directory}: ConfigMap {spec['name']} to {behavior} does not exist"
            data = generated["data"] if behavior == "replace" else {**found[0]["data"], **generated["data"]}
            found[0]["data"] = data
    for entry in kust.get("patches", []):
        assert set(entry) == {"path"}, f"{directory}: only `patches: - path:` (strategic merge) is handled"
        path = directory / entry["path"]
        assert path.is_file(), f"{directory}: patch {entry['path']} does not exist"
        for patch in _load_docs(path):
            matches = [i for i, o in enumerate(objects) if _key(o) == _key(patch)]
            assert len(matches) == 1, f"{path}: patch target {_key(patch)} not found exactly once"
            objects[matches[0]] = _merge(objects[matches[0]], patch)
    return objects


def _key(obj: Obj) -> tuple[str, str]:
    return obj["kind"], obj["metadata"]["name"]


def _of_kind(objects: list[Obj], kind: str) -> list[Obj]:
    return [o for o in objects if o["kind"] == kind]


def _named(objects: list[Obj], kind: str, name: str) -> Obj:
    (found,) = [o for o in objects if _key(o) == (kind, name)]
    return found


def _pod(deployment: Obj) -> Obj:
    return deployment["spec"]["template"]["spec"]


def _containers(deployment: Obj) -> Iterator[Obj]:
    yield from _pod(deployment)["containers"]


def _env(container: Obj) -> dict[str, str]:
    return {e["name"]: e["value"] for e in container.get("env", []) if "value" in e}


def _own(deployment: Obj) -> bool:
    return any(c["image"].split(":")[0] == SPEECHMESH_IMAGE for c in _containers(deployment))


@pytest.fixture(scope="module", params=TARGETS)
def rendered(request: pytest.FixtureRequest) -> tuple[str, list[Obj]]:
    return request.param, render(K8S / request.param)


def test_every_yaml_file_parses_and_opens_with_its_role() -> None:
    files = sorted(K8S.rglob("*.yaml"))
    assert len(files) >= 10
    for path in files:
        first = path.read_text(encoding="utf-8").splitlines()[0]
        assert first.startswith("# ") and len(first) > 10, f"{path}: first line should say the file's role"
        for doc in _load_docs(path):
            assert isinstance(doc, dict), path


def test_names_are_unique(rendered: tuple[str, list[Obj]]) -> None:
    _, objects = rendered
    keys = [_key(o) for o in objects]
    assert len(keys) == len(set(keys)), keys


def test_deployments_have_resources_probes_and_a_locked_down_pod(rendered: tuple[str, list[Obj]]) -> None:
    _, objects = rendered
    deployments = _of_kind(objects, "Deployment")
    assert {"tts", "gateway"} <= {d["metadata"]["name"] for d in deployments}
    for deployment in deployments:
        name = deployment["metadata"]["name"]
        pod = _pod(deployment)
        assert pod["securityContext"]["runAsNonRoot"] is True, name
        assert pod.get("serviceAccountName"), name
        for container in _containers(deployment):
            where = f"{name}/{container['name']}"
            for part in ("requests", "limits"):
                assert {"cpu", "memory"} <= set(container["resources"][part]), f"{where}: {part}"
            assert "readinessProbe" in container, where
            assert "livenessProbe" in container, where
            security = container["securityContext"]
            assert security["allowPrivilegeEscalation"] is False, where
            assert security["capabilities"]["drop"] == ["ALL"], where
            if _own(deployment):
                assert security["readOnlyRootFilesystem"] is True, where
                mounts = {m["mountPath"] for m in container.get("volumeMounts", [])}
                assert "/tmp" in mounts, f"{where}: read-only root needs a writable /tmp"


def test_tts_probes_are_grpc_health_with_a_startup_budget(rendered: tuple[str, list[Obj]]) -> None:
    _, objects = rendered
    (container,) = _containers(_named(objects, "Deployment", "tts"))
    grpc_port = next(p["containerPort"] for p in container["ports"] if p["name"] == "grpc")
    assert grpc_port == 50051
    for probe in ("startupProbe", "readinessProbe", "livenessProbe"):
        assert container[probe]["grpc"]["port"] == grpc_port, probe
    startup = container["startupProbe"]
    assert (startup["failureThreshold"], startup["periodSeconds"]) == (30, 10)
    env = _env(container)
    assert env["SPEECHMESH_TTS_HOST"] == "0.0.0.0"
    assert env["SPEECHMESH_TTS_PORT"] == str(grpc_port)
    grace = float(env["SPEECHMESH_TTS_GRACE_SECONDS"])
    assert _pod(_named(objects, "Deployment", "tts"))["terminationGracePeriodSeconds"] > grace + 5
    metrics = env["SPEECHMESH_TTS_METRICS_PORT"]
    annotations = _named(objects, "Deployment", "tts")["spec"]["template"]["metadata"]["annotations"]
    assert annotations["prometheus.io/scrape"] == "true"
    assert annotations["prometheus.io/port"] == metrics
    assert int(metrics) in {p["containerPort"] for p in container["ports"]}


def test_tts_engines_come_from_a_configmap(rendered: tuple[str, list[Obj]]) -> None:
    _, objects = rendered
    (container,) = _containers(_named(objects, "Deployment", "tts"))
    refs = [e["configMapRef"]["name"] for e in container["envFrom"]]
    data = {k: v for ref in refs for k, v in _named(objects, "ConfigMap", ref)["data"].items()}
    engines = json.loads(data["SPEECHMESH_TTS_ENGINES"])
    assert isinstance(engines, list) and engines and all(isinstance(e, str) for e in engines)
    assert data["SPEECHMESH_TTS_DEFAULT_MODEL"] in engines


def test_gateway_is_one_http_replica_on_a_persistent_database(rendered: tuple[str, list[Obj]]) -> None:
    _, objects = rendered
    deployment = _named(objects, "Deployment", "gateway")
    assert deployment["spec"]["replicas"] == 1, "SQLite is single-writer"
    assert deployment["spec"]["strategy"]["type"] == "Recreate"
    assert not [
        h for h in _of_kind(objects, "HorizontalPodAutoscaler") if h["spec"]["scaleTargetRef"]["name"] == "gateway"
    ]
    (container,) = _containers(deployment)
    assert container["readinessProbe"]["httpGet"]["path"] == "/readyz"
    assert container["livenessProbe"]["httpGet"]["path"] == "/healthz"
    env = _env(container)
    assert (env["SPEECHMESH_GATEWAY_HOST"], env["SPEECHMESH_GATEWAY_PORT"]) == ("0.0.0.0", "8000")
    database = Path(env["SPEECHMESH_GATEWAY_DATABASE_PATH"])
    mounts = {m["mountPath"]: m["name"] for m in container["volumeMounts"]}
    volume = next(v for v in _pod(deployment)["volumes"] if v["name"] == mounts[str(database.parent)])
    _named(objects, "PersistentVolumeClaim", volume["persistentVolumeClaim"]["claimName"])
    host, _, port = env["SPEECHMESH_GATEWAY_TTS_ADDRESS"].partition(":")
    assert int(port) in {p["port"] for p in _named(objects, "Service", host)["spec"]["ports"]}


def test_services_select_pods_of_a_deployment_and_name_their_ports(rendered: tuple[str, list[Obj]]) -> None:
    _, objects = rendered
    deployments = _of_kind(objects, "Deployment")
    for service in _of_kind(objects, "Service"):
        name = service["metadata"]["name"]
        selector = service["spec"]["selector"]
        assert selector, name
        matching = [d for d in deployments if selector.items() <= d["spec"]["template"]["metadata"]["labels"].items()]
        assert matching, f"Service {name} selects no Deployment's pods"
        for deployment in matching:
            ports = [p for c in _containers(deployment) for p in c.get("ports", [])]
            for port in service["spec"]["ports"]:
                target = port.get("targetPort", port["port"])
                assert target in {p.get("name") for p in ports} | {p["containerPort"] for p in ports}, (name, target)


def test_deployment_selectors_and_references_resolve(rendered: tuple[str, list[Obj]]) -> None:
    _, objects = rendered
    for deployment in _of_kind(objects, "Deployment"):
        name = deployment["metadata"]["name"]
        labels = deployment["spec"]["template"]["metadata"]["labels"]
        assert deployment["spec"]["selector"]["matchLabels"].items() <= labels.items(), name
        pod = _pod(deployment)
        _named(objects, "ServiceAccount", pod["serviceAccountName"])
        for volume in pod.get("volumes", []):
            if "persistentVolumeClaim" in volume:
                _named(objects, "PersistentVolumeClaim", volume["persistentVolumeClaim"]["claimName"])
            if "configMap" in volume:
                _named(objects, "ConfigMap", volume["configMap"]["name"])
        for container in _containers(deployment):
            for ref in container.get("envFrom", []):
                _named(objects, "ConfigMap", ref["configMapRef"]["name"])
            volumes = {v["name"] for v in pod.get("volumes", [])}
            assert {m["name"] for m in container.get("volumeMounts", [])} <= volumes, name
    for hpa in _of_kind(objects, "HorizontalPodAutoscaler"):
        assert hpa["apiVersion"] == "autoscaling/v2"
        target = _named(objects, "Deployment", hpa["spec"]["scaleTargetRef"]["name"])
        assert "replicas" not in target["spec"], "the HPA owns the replica count"
        assert [m["resource"]["name"] for m in hpa["spec"]["metrics"]] == ["cpu"]


def test_local_overlay_is_the_base_alone() -> None:
    assert sorted(map(_key, render(K8S / "overlays/local"))) == sorted(map(_key, render(K8S / "base")))


def test_gpu_overlay_runs_triton_on_a_gpu_behind_envoy() -> None:
    objects = render(K8S / "overlays/gpu")

    triton = _named(objects, "Deployment", "triton")
    (server,) = _containers(triton)
    assert server["image"].startswith("nvcr.io/nvidia/tritonserver:")
    assert server["resources"]["limits"]["nvidia.com/gpu"] == 1
    assert any(t["key"] == "nvidia.com/gpu" for t in _pod(triton)["tolerations"])
    assert server["readinessProbe"]["httpGet"]["path"] == "/v2/health/ready"
    assert any(m["mountPath"] == "/models" for m in server["volumeMounts"])
    assert "--model-repository=/models" in server["args"]

    (tts,) = _containers(_named(objects, "Deployment", "tts"))
    host, _, port = _env(tts)["SPEECHMESH_TTS_TRITON_URL"].partition(":")
    assert int(port) == 8001
    assert int(port) in {p["port"] for p in _named(objects, "Service", host)["spec"]["ports"]}

    (gateway,) = _containers(_named(objects, "Deployment", "gateway"))
    assert _env(gateway)["SPEECHMESH_GATEWAY_TTS_ADDRESS"] == "envoy:50051"
    config = yaml.safe_load(_named(objects, "ConfigMap", "envoy-config")["data"]["envoy.yaml"])
    listeners = {
        listener["name"]: listener["address"]["socket_address"]["port_value"]
        for listener in config["static_resources"]["listeners"]
    }
    assert listeners["tts_grpc"] == 50051
    (cluster,) = [c for c in config["static_resources"]["clusters"] if c["name"] == "tts"]
    options = cluster["typed_extension_protocol_options"]["envoy.extensions.upstreams.http.v3.HttpProtocolOptions"]
    assert "http2_protocol_options" in options["explicit_http_config"]
    (check,) = cluster["health_checks"]
    assert check["grpc_health_check"]["service_name"] == "speechmesh.v1.TextToSpeech"
    (endpoint,) = cluster["load_assignment"]["endpoints"][0]["lb_endpoints"]
    address = endpoint["endpoint"]["address"]["socket_address"]
    upstream = _named(objects, "Service", address["address"])
    assert upstream["spec"]["clusterIP"] == "None", "Envoy needs one DNS record per tts pod"
    assert upstream["spec"]["selector"] == _named(objects, "Service", "tts")["spec"]["selector"]
    assert address["port_value"] in {p["port"] for p in upstream["spec"]["ports"]}
    (proxy,) = _containers(_named(objects, "Deployment", "envoy"))
    probes = next(p["containerPort"] for p in proxy["ports"] if p["name"] == "probes")
    assert listeners["probes"] == probes
