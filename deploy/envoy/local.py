"""Envoy's config (deploy/envoy/envoy.yaml) for a local run: the same routes, retries, health
checks, timeouts and outlier detection, with only the addresses and ports swapped for
loopback ones. The services named keep their listener and cluster; the others, and the
Kubernetes probes listener, are left out (the admin port serves /ready and /stats itself).

    python deploy/envoy/local.py tts=127.0.0.1:50151,127.0.0.1:50152 --admin-port 9901 > var/envoy.yaml
    envoy -c var/envoy.yaml --disable-hot-restart

Each upstream is `cluster=host:port[,host:port...]`, cluster as named in envoy.yaml (tts,
tts_kokoro, stt, audio, chat); its listener keeps its port (tts 50051, ...) unless
`--listen cluster=port` moves it. tests/test_envoy.py runs Envoy from this output.
"""

from __future__ import annotations

import argparse
import copy
import sys
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import yaml

CONFIG = Path(__file__).with_name("envoy.yaml")

Address = tuple[str, int]


def load(path: Path = CONFIG) -> dict[str, Any]:
    config: dict[str, Any] = yaml.safe_load(path.read_text())
    return config


def route_clusters(listener: Mapping[str, Any]) -> set[str]:
    """The clusters a listener's routes send calls to."""
    found: set[str] = set()
    for chain in listener["filter_chains"]:
        for network_filter in chain["filters"]:
            manager = network_filter["typed_config"]
            for host in manager.get("route_config", {}).get("virtual_hosts", []):
                found.update(route["route"]["cluster"] for route in host["routes"])
    return found


def localize(
    config: Mapping[str, Any],
    upstreams: Mapping[str, Sequence[Address]],
    *,
    admin_port: int,
    listen: Mapping[str, int] | None = None,
    host: str = "127.0.0.1",
) -> dict[str, Any]:
    """A copy of `config` that serves only the clusters in `upstreams`, each over the given
    addresses, with every listener and the admin bound to `host`."""
    listen = listen or {}
    local = copy.deepcopy(dict(config))
    local["admin"]["address"]["socket_address"] = {"address": host, "port_value": admin_port}
    resources = local["static_resources"]
    unknown = set(upstreams) - {cluster["name"] for cluster in resources["clusters"]}
    if unknown:
        raise ValueError(f"no such cluster in {CONFIG.name}: {', '.join(sorted(unknown))}")
    listeners = []
    for listener in resources["listeners"]:
        clusters = route_clusters(listener)
        if not clusters or not clusters <= set(upstreams):
            continue
        (cluster,) = clusters
        address = listener["address"]["socket_address"]
        listener["address"]["socket_address"] = {
            "address": host,
            "port_value": listen.get(cluster, address["port_value"]),
        }
        listeners.append(listener)
    resources["listeners"] = listeners
    kept = []
    for cluster in resources["clusters"]:
        if cluster["name"] not in upstreams:
            continue
        cluster["load_assignment"]["endpoints"] = [
            {
                "lb_endpoints": [
                    {"endpoint": {"address": {"socket_address": {"address": ip, "port_value": port}}}}
                    for ip, port in upstreams[cluster["name"]]
                ]
            }
        ]
        kept.append(cluster)
    resources["clusters"] = kept
    return local


def _address(text: str) -> Address:
    host, _, port = text.strip().rpartition(":")
    return host, int(port)


def _pair(text: str) -> tuple[str, str]:
    name, sep, value = text.partition("=")
    if not sep:
        raise argparse.ArgumentTypeError(f"expected name=value, got {text!r}")
    return name, value


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("upstreams", nargs="+", type=_pair, help="cluster=host:port[,host:port...]")
    parser.add_argument("--admin-port", type=int, default=9901)
    parser.add_argument("--listen", action="append", type=_pair, default=[], help="cluster=port")
    args = parser.parse_args(argv)
    upstreams = {name: [_address(a) for a in value.split(",")] for name, value in args.upstreams}
    listen = {name: int(port) for name, port in args.listen}
    local = localize(load(), upstreams, admin_port=args.admin_port, listen=listen)
    yaml.safe_dump(local, sys.stdout, sort_keys=False)


if __name__ == "__main__":
    main()
