"""Live inventory through the real ``kubernetes`` Python client.

What this is: the client talks HTTP to a local ``http.server`` on 127.0.0.1
that *replays recorded API responses* (a NodeList, a PodList, a 401 Status, and
a server that does not answer in time). It is not a Kubernetes API server;
it checks that the adapter drives the real client (kubeconfig contexts,
paging, timeouts, error statuses) and computes free capacity from the
objects the way kube-scheduler would.
"""

from __future__ import annotations

import http.server
import json
import threading
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, ClassVar

import pytest
import yaml

from adapters.kubernetes import fetch_inventory
from engine.documents.live import MetricsSource
from engine.documents.load import load_documents
from engine.errors import InputError, LiveSourceError
from engine.live import apply_live
from tests.prom_fixture import free_port

API = "placement.berth.dev/v1alpha1"
GI = 2**30
MI = 2**20
TOKEN = "s3cret-t0ken"
NOW = datetime(2026, 11, 26, 12, 0, tzinfo=UTC)


def node(name: str, *, cpu: str, memory: str, gpu: int = 0, unschedulable: bool = False,
         taints: list[dict[str, str]] | None = None, zone: str = "paris-a") -> dict[str, Any]:
    alloc = {"cpu": cpu, "memory": memory, "pods": "110", "ephemeral-storage": "100Gi"}
    if gpu:
        alloc["nvidia.com/gpu"] = str(gpu)
    spec: dict[str, Any] = {"podCIDR": "10.0.0.0/24"}
    if unschedulable:
        spec["unschedulable"] = True
    if taints:
        spec["taints"] = taints
    return {
        "metadata": {"name": name, "labels": {
            "kubernetes.io/hostname": name,
            "topology.kubernetes.io/region": "eu-west",
            "topology.kubernetes.io/zone": zone}},
        "spec": spec,
        "status": {"allocatable": alloc, "capacity": alloc},
    }


def pod(name: str, node_name: str | None, phase: str, containers: list[dict[str, str]], *,
        init: list[dict[str, str]] | None = None, labels: dict[str, str] | None = None,
        overhead: dict[str, str] | None = None) -> dict[str, Any]:
    spec: dict[str, Any] = {
        "containers": [{"name": f"c{i}", "image": "x", "resources": {"requests": r}}
                       for i, r in enumerate(containers)],
    }
    if node_name:
        spec["nodeName"] = node_name
    if init:
        spec["initContainers"] = [{"name": f"i{i}", "image": "x", "resources": {"requests": r}}
                                  for i, r in enumerate(init)]
    if overhead:
        spec["overhead"] = overhead
    return {"metadata": {"name": name, "namespace": "shop", "labels": labels or {}},
            "spec": spec, "status": {"phase": phase}}


# Recorded responses of the "paris" API server (trimmed to the fields that matter).
NODES_PAGE_1 = {"kind": "NodeList", "apiVersion": "v1",
                "metadata": {"resourceVersion": "100", "continue": "page2"},
                "items": [node("p1", cpu="4", memory="16Gi", gpu=2,
                               taints=[{"key": "nvidia.com/gpu", "value": "present",
                                        "effect": "NoSchedule"}]),
                          node("p2", cpu="7910m", memory="32Gi", zone="paris-b")]}
NODES_PAGE_2 = {"kind": "NodeList", "apiVersion": "v1", "metadata": {"resourceVersion": "100"},
                "items": [node("p3", cpu="16", memory="64Gi", unschedulable=True),
                          node("p4", cpu="2", memory="8Gi", taints=[
                              {"key": "node-role.kubernetes.io/control-plane",
                               "effect": "NoSchedule"}]),
                          node("p5", cpu="4", memory="8Gi", zone="paris-b",
                               taints=[{"key": "dedicated", "value": "db",
                                        "effect": "PreferNoSchedule"}])]}
PODS = {"kind": "PodList", "apiVersion": "v1", "metadata": {"resourceVersion": "101"}, "items": [
    pod("run", "p2", "Running", [{"cpu": "1500m", "memory": "2Gi"}, {"cpu": "250m", "memory": "512Mi"}]),
    # init container larger than the app: the request is the init's (2 cpu), memory the app's
    pod("init-heavy", "p2", "Running", [{"cpu": "500m", "memory": "1Gi"}],
        init=[{"cpu": "2", "memory": "256Mi"}]),
    pod("pend-bound", "p1", "Pending", [{"cpu": "500m", "memory": "1Gi", "nvidia.com/gpu": "1"}]),
    pod("pend-unbound", None, "Pending", [{"cpu": "1", "memory": "1Gi"}], overhead={"cpu": "100m"}),
    pod("done", "p2", "Succeeded", [{"cpu": "3", "memory": "8Gi"}]),
    pod("failed", "p2", "Failed", [{"cpu": "3", "memory": "8Gi"}]),
    pod("berth-web", "p2", "Running", [{"cpu": "2", "memory": "4Gi"}],
        labels={"app.kubernetes.io/managed-by": "berth"}),
    pod("on-cordoned", "p3", "Running", [{"cpu": "4"}]),
    pod("on-cp", "p4", "Running", [{"cpu": "500m"}]),
]}
UNAUTHORIZED = {"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure",
                "message": "Unauthorized", "reason": "Unauthorized", "code": 401}


class Replay(http.server.BaseHTTPRequestHandler):
    seen_tokens: ClassVar[list[str]] = []

    def do_GET(self) -> None:
        Replay.seen_tokens.append(self.headers.get("Authorization", ""))
        path, _, query = self.path.partition("?")
        if path.startswith("/slow/"):
            time.sleep(2)
            return self._send(200, PODS)
        if path.startswith("/lyon/"):
            return self._send(401, UNAUTHORIZED)
        if path == "/paris/api/v1/nodes":
            return self._send(200, NODES_PAGE_2 if "continue=page2" in query else NODES_PAGE_1)
        if path == "/paris/api/v1/pods":
            return self._send(200, PODS)
        return self._send(404, {"kind": "Status", "code": 404})

    def _send(self, status: int, body: dict[str, Any]) -> None:
        data = json.dumps(body).encode()
        try:
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)
        except (BrokenPipeError, ConnectionResetError):
            pass

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture(scope="module")
def api_server() -> Iterator[str]:
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Replay)
    server.daemon_threads = True
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_port}"
    server.shutdown()
    server.server_close()


@pytest.fixture
def kubeconfig(api_server: str, tmp_path: Path) -> Path:
    prefixes = {"paris": "paris", "lyon": "lyon", "nice": "slow", "closed": None}
    clusters, contexts = [], []
    for name, prefix in prefixes.items():
        server = f"{api_server}/{prefix}" if prefix else f"http://127.0.0.1:{free_port()}"
        clusters.append({"name": name, "cluster": {"server": server}})
        contexts.append({"name": name, "context": {"cluster": name, "user": "u"}})
    doc = {"apiVersion": "v1", "kind": "Config", "clusters": clusters, "contexts": contexts,
           "current-context": "paris", "users": [{"name": "u", "user": {"token": TOKEN}}]}
    path = tmp_path / "kubeconfig"
    path.write_text(yaml.safe_dump(doc))
    return path


def bundle() -> Any:
    docs = [{"apiVersion": API, "kind": "Cluster", "metadata": {"name": n},
             "spec": {"capacity": {"cpu": "50", "memory": "50Gi"}}}
            for n in ("edge-paris", "lyon", "nice")]
    docs.append({"apiVersion": API, "kind": "MetricsSource", "metadata": {"name": "live"},
                 "spec": {"kubernetes": {"contexts": {"paris": "edge-paris"},
                                         "timeout": "500ms", "retries": 0}}})
    return load_documents(docs)


def test_free_capacity_from_nodes_and_pods(kubeconfig: Path) -> None:
    fleet = fetch_inventory(bundle(), kubeconfig, ["paris"], now=NOW)
    paris = fleet.clusters["edge-paris"]
    assert paris.error is None and paris.nodes == 3  # p1 (gpu taint tolerated), p2, p5
    assert paris.allocatable == {
        "cpu": 4000 + 7910 + 4000,
        "memory": (16 + 32 + 8) * GI,
        "pods": 330,
        "ephemeral-storage": 300 * GI,
        "nvidia.com/gpu": 2,
    }
    # run 1.75 + init-heavy max(0.5, 2) + pend-bound 0.5 + pend-unbound 1 (+0.1 overhead)
    assert paris.requested == {
        "cpu": 1750 + 2000 + 500 + 1100,
        "memory": 2 * GI + 512 * MI + 1 * GI + 1 * GI + 1 * GI,
        "nvidia.com/gpu": 1,
        "pods": 4,
    }
    assert paris.region == "eu-west" and paris.zone == "paris-b"  # two of three nodes
    # Bearer token reached the server, and never appears in what we report.
    assert f"Bearer {TOKEN}" in Replay.seen_tokens
    assert TOKEN not in repr(fleet)


def test_applied_capacity_and_region(kubeconfig: Path) -> None:
    fleet = fetch_inventory(bundle(), kubeconfig, ["paris"], now=NOW)
    out, report = apply_live(bundle(), fleet, MetricsSource.default())
    paris = next(c for c in out.clusters if c.name == "edge-paris")
    assert paris.spec.capacity["cpu"] == 15910 - 5350
    assert paris.spec.region == "eu-west"
    assert report.updated == ["edge-paris"]
    assert report.missing == ["lyon", "nice"]


def test_unauthorized_and_timeout_are_stale_not_crashes(kubeconfig: Path) -> None:
    started = time.monotonic()
    fleet = fetch_inventory(bundle(), kubeconfig, ["paris", "lyon", "nice", "closed"], now=NOW)
    assert time.monotonic() - started < 5
    assert "refused the credentials (HTTP 401)" in (fleet.clusters["lyon"].error or "")
    assert "timed out after 0.5 s" in (fleet.clusters["nice"].error or "")
    assert "could not connect" in (fleet.clusters["closed"].error or "")
    assert TOKEN not in " ".join(fleet.warnings)

    out, report = apply_live(bundle(), fleet, MetricsSource.default())
    assert {s.name for s in report.stale} == {"lyon", "nice"}
    assert report.extra == ["closed"]
    lyon = next(c for c in out.clusters if c.name == "lyon")
    assert lyon.spec.capacity == {"cpu": 50000, "memory": 50 * GI}
    assert any("lyon is stale: could not be read" in w for w in report.warnings)

    refuse = MetricsSource.model_validate({"apiVersion": API, "kind": "MetricsSource",
                                           "metadata": {"name": "r"},
                                           "spec": {"onStale": "refuse"}})
    with pytest.raises(LiveSourceError, match="lyon could not be read"):
        apply_live(bundle(), fleet, refuse)


def test_unknown_context_is_an_input_error(kubeconfig: Path, tmp_path: Path) -> None:
    with pytest.raises(InputError, match="no context 'tokyo'") as err:
        fetch_inventory(bundle(), kubeconfig, ["tokyo"], now=NOW)
    assert err.value.exit_code == 2
    bad = tmp_path / "bad"
    bad.write_text("just: [a, list")
    with pytest.raises(InputError, match="not a usable kubeconfig"):
        fetch_inventory(bundle(), bad, [], now=NOW)


def test_both_sources_kubernetes_first_prometheus_for_the_rest(kubeconfig: Path) -> None:
    from engine.live import ClusterLive, LatencyLive, LiveFleet, merge_fleets

    inventory = fetch_inventory(bundle(), kubeconfig, ["paris", "lyon"], now=NOW)
    metrics = LiveFleet(source="Prometheus at http://p", at=NOW, latency_read=True, clusters={
        "edge-paris": ClusterLive("edge-paris", {"cpu": 1}, observed_at=NOW),
        "lyon": ClusterLive("lyon", {"cpu": 2000}, observed_at=NOW),
    }, latency={("s", "lyon"): LatencyLive(3.0, NOW)})
    merged = merge_fleets(inventory, metrics)
    assert merged.clusters["edge-paris"] is inventory.clusters["edge-paris"]  # API read it
    assert merged.clusters["lyon"] is metrics.clusters["lyon"]  # 401 there: Prometheus' numbers
    assert merged.latency == metrics.latency
