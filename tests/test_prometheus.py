"""Live capacity and latency from a real Prometheus (spec section 6).

A real ``prometheus`` binary serves series backfilled with ``promtool`` (see
``tests/prom_fixture.py``); every query is evaluated at ``AT``, the time of the
data. Expected numbers are worked out by hand in the comments.
"""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from adapters.prometheus import fetch_live
from engine.documents.bundle import Bundle
from engine.documents.live import MetricsSource
from engine.documents.load import load_documents
from engine.errors import LiveSourceError
from engine.live import LiveFleet, apply_live
from tests.prom_fixture import OpenMetrics, free_port, running_prometheus

API = "placement.berth.dev/v1alpha1"
GI = 2**30
MI = 2**20
# Evaluation time: a whole minute three hours ago (backfilled data must not be in the future).
AT_S = (int(time.time()) // 60) * 60 - 3 * 3600
AT = datetime.fromtimestamp(AT_S, UTC)
STEP = 30


def _times(start_ago: int, end_ago: int) -> range:
    """Timestamps every 30 s from ``start_ago`` to ``end_ago`` seconds before AT, inclusive."""
    return range(AT_S - start_ago, AT_S - end_ago + 1, STEP)


FRESH = _times(1800, 0)


def _node(om: OpenMetrics, cluster: str, node: str, times: range, *, unschedulable: int = 0,
          taints: tuple[tuple[str, str], ...] = (), **alloc: float) -> None:
    units = {"cpu": "core", "memory": "byte", "pods": "integer", "nvidia_com_gpu": "integer"}
    for resource, value in alloc.items():
        om.add("kube_node_status_allocatable",
               {"cluster": cluster, "node": node, "resource": resource, "unit": units[resource]},
               value, times)
    om.add("kube_node_spec_unschedulable", {"cluster": cluster, "node": node}, unschedulable, times)
    for key, effect in taints:
        om.add("kube_node_spec_taint",
               {"cluster": cluster, "node": node, "key": key, "value": "x", "effect": effect},
               1, times)


def _pod(om: OpenMetrics, cluster: str, name: str, node: str, phase: str, times: range,
         containers: dict[str, dict[str, float]], *, berth: bool = False) -> None:
    base = {"cluster": cluster, "namespace": "shop", "pod": name}
    om.add("kube_pod_info", {**base, "node": node}, 1, times)
    for p in ("Pending", "Running", "Succeeded", "Failed", "Unknown"):
        om.add("kube_pod_status_phase", {**base, "phase": p}, 1 if p == phase else 0, times)
    labels = {**base, "label_app": name}
    if berth:
        labels["label_app_kubernetes_io_managed_by"] = "berth"
    om.add("kube_pod_labels", labels, 1, times)
    units = {"cpu": "core", "memory": "byte", "nvidia_com_gpu": "integer"}
    for container, requests in containers.items():
        for resource, value in requests.items():
            om.add("kube_pod_container_resource_requests",
                   {**base, "container": container, "node": node, "resource": resource,
                    "unit": units[resource]}, value, times)


def _probe(om: OpenMetrics, site: str, cluster: str, points: list[tuple[float, float, int]]) -> None:
    labels = {"job": "blackbox", "instance": f"{cluster}.example", "site": site, "cluster": cluster}
    om.series("probe_duration_seconds", labels, [(t, d) for t, d, _ in points])
    om.series("probe_success", labels, [(t, float(s)) for t, _, s in points])


# Probes paris-users -> alpha: 10 ms, with two 200 ms and one 120 ms sample in the
# last 15 minutes, and failed 5 s probes that must not count.
ALPHA_PROBES = [(t, 0.010, 1) for t in FRESH]
for _ago, _d, _s in ((60, 0.200, 1), (120, 0.200, 1), (180, 0.120, 1), (90, 5.0, 0), (150, 5.0, 0)):
    ALPHA_PROBES = [(t, _d, _s) if t == AT_S - _ago else (t, d, s) for t, d, s in ALPHA_PROBES]


def _p95_prometheus(values: list[float], q: float = 0.95) -> float:
    """quantile_over_time as Prometheus computes it (linear between closest ranks)."""
    ordered = sorted(values)
    rank = q * (len(ordered) - 1)
    low = int(rank)
    high = min(low + 1, len(ordered) - 1)
    return ordered[low] + (ordered[high] - ordered[low]) * (rank - low)


def dataset() -> str:
    om = OpenMetrics()
    # alpha: five nodes.
    #  a1 gpu node, tainted nvidia.com/gpu:NoSchedule (tolerated by default) -> counted
    #  a2 plain -> counted; a5 PreferNoSchedule -> counted
    #  a3 cordoned (unschedulable=1) -> excluded; a4 control-plane NoSchedule -> excluded
    _node(om, "alpha", "a1", FRESH, taints=(("nvidia.com/gpu", "NoSchedule"),),
          cpu=4, memory=16 * GI, pods=110, nvidia_com_gpu=2)
    _node(om, "alpha", "a2", FRESH, cpu=8, memory=32 * GI, pods=110)
    _node(om, "alpha", "a3", FRESH, unschedulable=1, cpu=16, memory=64 * GI, pods=110)
    _node(om, "alpha", "a4", FRESH, taints=(("node-role.kubernetes.io/control-plane", "NoSchedule"),),
          cpu=2, memory=8 * GI, pods=110)
    _node(om, "alpha", "a5", FRESH, taints=(("dedicated", "PreferNoSchedule"),),
          cpu=3.92, memory=8 * GI, pods=110)
    _pod(om, "alpha", "run", "a2", "Running", FRESH,
         {"app": {"cpu": 1.5, "memory": 2 * GI}, "sidecar": {"cpu": 0.25, "memory": 512 * MI}})
    _pod(om, "alpha", "pend-bound", "a1", "Pending", FRESH,
         {"app": {"cpu": 0.5, "memory": 1 * GI, "nvidia_com_gpu": 1}})
    _pod(om, "alpha", "pend-unbound", "", "Pending", FRESH, {"app": {"cpu": 1, "memory": 1 * GI}})
    _pod(om, "alpha", "done", "a2", "Succeeded", FRESH, {"app": {"cpu": 3, "memory": 8 * GI}})
    _pod(om, "alpha", "berth-web", "a2", "Running", FRESH,
         {"app": {"cpu": 2, "memory": 4 * GI}}, berth=True)
    _pod(om, "alpha", "on-cordoned", "a3", "Running", FRESH, {"app": {"cpu": 4, "memory": 4 * GI}})
    _pod(om, "alpha", "on-cp", "a4", "Running", FRESH, {"app": {"cpu": 0.5, "memory": 1 * GI}})
    _pod(om, "alpha", "small", "a5", "Running", FRESH, {"app": {"cpu": 0.1, "memory": 100 * MI}})
    # beta: one node, one pod.
    _node(om, "beta", "b1", FRESH, cpu=8, memory=16 * GI, pods=110)
    _pod(om, "beta", "db", "b1", "Running", FRESH, {"app": {"cpu": 2, "memory": 4 * GI}})
    # delta: last sample 3 minutes before AT (fresh for maxAge 5m, stale for 2m).
    recent = _times(1800, 180)
    _node(om, "delta", "d1", recent, cpu=6, memory=12 * GI, pods=50)
    # gamma: last sample 20 minutes before AT: stale.
    old = _times(3600, 1200)
    _node(om, "gamma", "g1", old, cpu=64, memory=256 * GI, pods=110)
    # extra: not in the bundle.
    _node(om, "extra-1", "x1", FRESH, cpu=2, memory=4 * GI, pods=110)
    # omega: labelled k8s_cluster instead of cluster (for the configurable label test).
    for resource, value in (("cpu", 12), ("memory", 24 * GI), ("pods", 20)):
        om.add("kube_node_status_allocatable",
               {"k8s_cluster": "omega", "node": "o1", "resource": resource, "unit": "x"},
               value, FRESH)
    # probes
    _probe(om, "paris-users", "alpha", ALPHA_PROBES)
    _probe(om, "paris-users", "beta", [(t, 5.0, 0) for t in FRESH])          # all fail
    _probe(om, "paris-users", "delta", [(t, 0.007, 1) for t in old])          # stale
    _probe(om, "paris-users", "extra-1", [(t, 0.003, 1) for t in FRESH])      # extra pair
    _probe(om, "lyon-users", "alpha", [(t, 0.004, 1) for t in FRESH])         # extra site
    return om.text()


def bundle(extra_docs: list[dict[str, Any]] | None = None) -> Bundle:
    def cluster(name: str, **capacity: Any) -> dict[str, Any]:
        return {"apiVersion": API, "kind": "Cluster", "metadata": {"name": name},
                "spec": {"capacity": capacity}}

    docs = [
        cluster("alpha", cpu="100", memory="100Gi", **{"nvidia.com/gpu": 8, "licenses": 3}),
        cluster("beta", cpu="1", memory="1Gi"),
        cluster("gamma", cpu="7", memory="7Gi"),
        cluster("delta", cpu="5", memory="5Gi"),
        cluster("missing-1", cpu="9", memory="9Gi"),
        {"apiVersion": API, "kind": "Site", "metadata": {"name": "paris-users"},
         "spec": {"latencyMs": {"alpha": 50, "beta": 5, "delta": 7, "gamma": 9}}},
        *(extra_docs or []),
    ]
    return load_documents(docs)


def source(**spec: Any) -> MetricsSource:
    return MetricsSource.model_validate(
        {"apiVersion": API, "kind": "MetricsSource", "metadata": {"name": "test"}, "spec": spec}
    )


@pytest.fixture(scope="module")
def prom(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    with running_prometheus(dataset(), tmp_path_factory.mktemp("prom")) as url:
        yield url


@pytest.fixture(scope="module")
def live(prom: str) -> LiveFleet:
    return fetch_live(bundle(), prom, at=AT)


# --- capacity ------------------------------------------------------------------------


def test_free_capacity_of_schedulable_nodes_minus_unmanaged_running_and_pending(
    live: LiveFleet,
) -> None:
    alpha = live.clusters["alpha"]
    # a1 + a2 + a5; a3 (cordoned) and a4 (control-plane taint) are excluded.
    assert alpha.allocatable == {
        "cpu": 4000 + 8000 + 3920,
        "memory": (16 + 32 + 8) * GI,
        "pods": 330,
        "nvidia.com/gpu": 2,
    }
    # run (1.5 + 0.25) + pend-bound 0.5 + pend-unbound 1 + small 0.1; not: done
    # (Succeeded), berth-web (Berth's own), on-cordoned and on-cp (excluded nodes).
    assert alpha.requested == {
        "cpu": 1750 + 500 + 1000 + 100,
        "memory": 2 * GI + 512 * MI + 1 * GI + 1 * GI + 100 * MI,
        "nvidia.com/gpu": 1,
        "pods": 4,
    }
    assert alpha.free() == {
        "cpu": 15920 - 3350,
        "memory": 56 * GI - (4 * GI + 612 * MI),
        "nvidia.com/gpu": 1,
        "pods": 326,
    }
    assert live.clusters["beta"].free() == {"cpu": 6000, "memory": 12 * GI, "pods": 109}


def test_apply_live_replaces_capacity_and_reports_file_only_resources(live: LiveFleet) -> None:
    original = bundle()
    out, report = apply_live(original, live, MetricsSource.default())
    alpha = next(c for c in out.clusters if c.name == "alpha")
    assert alpha.spec.capacity["cpu"] == 12570
    assert alpha.spec.capacity["nvidia.com/gpu"] == 1
    # "licenses" is not reported by any node: 0, with a warning that says so.
    assert alpha.spec.capacity["licenses"] == 0
    assert any("licenses" in w and "using 0" in w for w in report.warnings)
    # The original bundle is untouched.
    assert next(c for c in original.clusters if c.name == "alpha").spec.capacity["cpu"] == 100000
    assert "alpha" in report.updated and "beta" in report.updated

    kept, _ = apply_live(bundle(), live, source(keepFileResources=["licenses"]))
    assert next(c for c in kept.clusters if c.name == "alpha").spec.capacity["licenses"] == 3


def test_berth_pods_counted_when_managed_pods_disabled(prom: str) -> None:
    fleet = fetch_live(bundle(), prom, source=source(managedPods=None), at=AT)
    assert fleet.clusters["alpha"].requested["cpu"] == 3350 + 2000
    assert fleet.clusters["alpha"].requested["pods"] == 5


def test_tainted_gpu_node_excluded_when_its_taint_is_not_listed(prom: str) -> None:
    fleet = fetch_live(bundle(), prom, source=source(schedulableTaints=[]), at=AT)
    alpha = fleet.clusters["alpha"]
    assert "nvidia.com/gpu" not in alpha.allocatable
    assert alpha.allocatable["cpu"] == 8000 + 3920
    # pend-bound sat on the GPU node, so its request goes with it.
    assert alpha.requested["cpu"] == 3350 - 500


def test_cluster_label_is_configurable(prom: str, live: LiveFleet) -> None:
    assert "omega" not in live.clusters
    assert any("had no 'cluster'" in w for w in live.warnings)
    fleet = fetch_live(bundle(), prom, source=source(labels={"cluster": "k8s_cluster"}), at=AT)
    assert set(fleet.clusters) == {"omega"}
    assert fleet.clusters["omega"].allocatable == {"cpu": 12000, "memory": 24 * GI, "pods": 20}


# --- staleness, missing, extra -----------------------------------------------------


def test_stale_cluster_falls_back_to_the_file_and_says_so(live: LiveFleet) -> None:
    out, report = apply_live(bundle(), live, MetricsSource.default())
    gamma = next(c for c in out.clusters if c.name == "gamma")
    assert gamma.spec.capacity == {"cpu": 7000, "memory": 7 * GI}
    assert [s.name for s in report.stale] == ["gamma"]
    assert report.status_of("gamma") == "stale"
    assert any("gamma is stale" in w and "20m old" in w for w in report.warnings)


def test_stale_cluster_refused_when_configured(live: LiveFleet) -> None:
    with pytest.raises(LiveSourceError, match=r"gamma its newest sample is 20m old") as err:
        apply_live(bundle(), live, source(onStale="refuse"))
    assert err.value.exit_code == 3


def test_max_age_decides_staleness(live: LiveFleet) -> None:
    _, default = apply_live(bundle(), live, MetricsSource.default())
    assert "delta" in default.updated
    out, strict = apply_live(bundle(), live, source(maxAge="2m"))
    assert "delta" in [s.name for s in strict.stale]
    assert next(c for c in out.clusters if c.name == "delta").spec.capacity["cpu"] == 5000


def test_missing_and_extra_clusters_are_reported_never_used(live: LiveFleet) -> None:
    out, report = apply_live(bundle(), live, MetricsSource.default())
    assert report.missing == ["missing-1"]
    assert report.extra == ["extra-1"]
    assert "extra-1" not in {c.name for c in out.clusters}
    assert next(c for c in out.clusters if c.name == "missing-1").spec.capacity["cpu"] == 9000
    assert any("missing-1 has no live data" in w for w in report.warnings)
    assert any("extra-1" in w and "ignored" in w for w in report.warnings)
    with pytest.raises(LiveSourceError, match="missing-1 has no live data"):
        apply_live(bundle(), live, source(onMissing="refuse"))


# --- latency -------------------------------------------------------------------------


def test_latency_is_p95_of_successful_probes(live: LiveFleet) -> None:
    window = [d for t, d, s in ALPHA_PROBES if s == 1 and t >= AT_S - 900]
    expected = _p95_prometheus(window) * 1000
    assert live.latency[("paris-users", "alpha")].ms == pytest.approx(expected, abs=0.01)
    assert 10 < expected < 200  # neither the median nor the max, and no 5 s failures

    out, report = apply_live(bundle(), live, MetricsSource.default())
    site = out.sites[0].spec.latency_ms
    assert site["alpha"] == pytest.approx(expected, abs=0.01)
    # beta: every probe failed -> unreachable; delta: stale -> file; gamma: never probed -> file
    assert "beta" not in site
    assert site["delta"] == 7 and site["gamma"] == 9
    text = " ".join(report.warnings)
    assert "no probe paris-users->beta succeeded" in text
    assert "probes paris-users->delta are 20m old" in text
    assert "paris-users->gamma" in text
    assert "lyon-users->alpha" in text and "paris-users->extra-1" in text


def test_stale_latency_refused_when_configured(live: LiveFleet) -> None:
    fleet = LiveFleet(source=live.source, at=live.at,
                      clusters={k: v for k, v in live.clusters.items() if k != "gamma"},
                      latency=live.latency, latency_read=True)
    with pytest.raises(LiveSourceError, match="probes paris-users->delta are 20m old"):
        apply_live(bundle(), fleet, source(onStale="refuse"))


# --- failures ------------------------------------------------------------------------


def test_prometheus_down_is_a_live_source_error() -> None:
    url = f"http://user:s3cret@127.0.0.1:{free_port()}"
    started = time.monotonic()
    with pytest.raises(LiveSourceError) as err:
        fetch_live(bundle(), url, source=source(prometheus={"retries": 1, "backoff": "100ms"}),
                   at=AT)
    message = str(err.value)
    assert "127.0.0.1" in message and "could not connect" in message
    assert "2 attempt(s)" in message and "check that the URL is right" in message
    assert "s3cret" not in message and "user" not in message
    assert "\n" not in message
    assert time.monotonic() - started < 5


@pytest.fixture
def silent_server() -> Iterator[str]:
    """A TCP server that accepts connections and never answers (a hung Prometheus)."""
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen(16)
    held: list[socket.socket] = []
    stop = threading.Event()

    def accept() -> None:
        server.settimeout(0.1)
        while not stop.is_set():
            try:
                conn, _ = server.accept()
                held.append(conn)
            except OSError:
                continue

    thread = threading.Thread(target=accept, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.getsockname()[1]}"
    stop.set()
    thread.join()
    for conn in held:
        conn.close()
    server.close()


def test_slow_prometheus_gives_up_within_the_total_timeout(silent_server: str) -> None:
    cfg = source(prometheus={"timeout": "300ms", "retries": 5, "backoff": "100ms",
                             "totalTimeout": "1s"})
    started = time.monotonic()
    with pytest.raises(LiveSourceError, match=r"timed out|total limit of 1 s"):
        fetch_live(bundle(), silent_server, source=cfg, at=AT)
    assert time.monotonic() - started < 2.0


def test_bad_promql_names_the_query(prom: str) -> None:
    cfg = source(queries={"requested": "sum by ($cluster) (kube_pod_container_resource_requests"})
    with pytest.raises(LiveSourceError) as err:
        fetch_live(bundle(), prom, source=cfg, at=AT)
    message = str(err.value)
    assert "query 'requested' was rejected as invalid PromQL (HTTP 400" in message
    assert "parse error" in message and "spec.queries.requested" in message


@contextmanager
def http_server(answer: Callable[[str], tuple[int, bytes]]) -> Iterator[str]:
    """A real HTTP server on 127.0.0.1 whose GET answers are ``answer(path)``; yields its URL."""
    import http.server

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            status, body = answer(self.path)
            self.send_response(status)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args: object) -> None:
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_port}"
    finally:
        server.shutdown()
        server.server_close()


def test_not_prometheus_is_reported(tmp_path: Path) -> None:
    with http_server(lambda path: (503, b"<html>hello</html>")) as url:
        cfg = source(prometheus={"retries": 2, "backoff": "50ms"})
        with pytest.raises(LiveSourceError, match=r"got HTTP 503 \(3 attempt\(s\)"):
            fetch_live(bundle(), url, source=cfg, at=AT)


def test_an_http_server_that_is_not_prometheus(tmp_path: Path) -> None:
    def answer(path: str) -> tuple[int, bytes]:
        return 200, b'{"hello": "world"}' if path.startswith("/json") else b"<html>grafana</html>"

    with http_server(answer) as url:
        for prefix in ("", "/json"):
            with pytest.raises(LiveSourceError, match="not the Prometheus HTTP API"):
                fetch_live(bundle(), f"{url}{prefix}", at=AT)


@pytest.mark.parametrize(("freshness", "allocatable", "query"), [
    ("1e300", "4", "freshness"),  # a timestamp no datetime holds
    (str(AT_S), "1e300", "allocatable"),  # more cpu than the documented range
    (str(AT_S), "-5", "allocatable"),
], ids=["timestamp-out-of-range", "capacity-out-of-range", "capacity-negative"])
def test_a_malformed_answer_is_a_live_source_error_naming_the_query(
    freshness: str, allocatable: str, query: str
) -> None:
    """An HTTP server speaking Prometheus' API with values Berth cannot use: exit 3, naming the query."""
    import json
    from urllib.parse import parse_qs, urlsplit

    def answer(path: str) -> tuple[int, bytes]:
        promql = parse_qs(urlsplit(path).query).get("query", [""])[0]
        result: list[dict[str, Any]] = []
        if "timestamp(kube_node_status_allocatable)" in promql:
            result = [{"metric": {"cluster": "edge-1"}, "value": [AT_S, freshness]}]
        elif promql.startswith("sum by (cluster, resource)") and "kube_node_status_allocatable" in promql:
            result = [{"metric": {"cluster": "edge-1", "resource": "cpu"}, "value": [AT_S, allocatable]}]
        return 200, json.dumps({"status": "success", "data": {"resultType": "vector", "result": result}}).encode()

    with http_server(answer) as url, pytest.raises(LiveSourceError) as info:
        fetch_live(bundle(), url, at=AT)
    assert f"query {query!r} gave a value Berth cannot use" in str(info.value)
    assert info.value.exit_code == 3


def test_http_status_comes_from_the_response_not_from_text() -> None:
    """A body that reads like another status, a redirect to the real API, and a Prometheus error
    envelope: the status Berth reports is the response's own (httpx ``status_code``)."""
    def answer(path: str) -> tuple[int, bytes]:
        if path.startswith("/teapot"):
            return 418, b'{"status": "error", "errorType": "x", "error": "HTTP Status Code 503 (retry me)"}'
        if path.startswith("/envelope"):
            return 200, b'{"status": "error", "errorType": "execution", "error": "query was cancelled"}'
        return 200, b"{}"

    with http_server(answer) as url:
        cfg = source(prometheus={"retries": 2, "backoff": "50ms"})
        with pytest.raises(LiveSourceError) as teapot:
            fetch_live(bundle(), f"{url}/teapot", source=cfg, at=AT)
        # 418 is not retried (one attempt) and is reported as 418, whatever the body says.
        assert "failed with HTTP 418: HTTP Status Code 503 (retry me)" in str(teapot.value)
        assert "attempt" not in str(teapot.value)
        with pytest.raises(LiveSourceError, match="failed: query was cancelled"):
            fetch_live(bundle(), f"{url}/envelope", source=cfg, at=AT)
