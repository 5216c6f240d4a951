"""Live inputs on the shapes real monitoring stacks have (issue 17), against real Prometheus servers.

Three servers, each backfilled with ``promtool`` and queried at ``AT``:

- ``global``: a global query layer (Thanos, Mimir, federation): every series carries ``cluster``.
- ``east`` and ``west``: each cluster's own Prometheus. Their ``external_labels`` would set
  the cluster, but queries do not see those, so their series carry no ``cluster`` label.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from typer.testing import CliRunner

from adapters.cli.app import app
from adapters.prometheus import fetch_live
from engine.documents.bundle import Bundle
from engine.documents.live import MetricsSource
from engine.documents.load import load_documents
from engine.errors import LiveSourceError
from engine.live import LiveFleet, apply_live
from tests.prom_fixture import OpenMetrics, free_port, running_prometheus
from tests.test_prometheus import AT, GI, _node, _pod, _times

API = "placement.berth.dev/v1alpha1"
FRESH = _times(1800, 0)


def _probes(om: OpenMetrics, labels: dict[str, str], points: list[tuple[float, float, int]]) -> None:
    labels = {"job": "blackbox", "instance": "target.example", **labels}
    om.series("probe_duration_seconds", labels, [(t, d) for t, d, _ in points])
    om.series("probe_success", labels, [(t, float(s)) for t, _, s in points])


def global_layer() -> str:
    om = OpenMetrics()
    _node(om, "north", "n1", FRESH, cpu=8, memory=32 * GI, pods=110)
    _pod(om, "north", "api", "n1", "Running", FRESH, {"app": {"cpu": 2, "memory": 4 * GI}})
    # east has its own Prometheus: what the global layer says of it must not be used.
    _node(om, "east", "e1", FRESH, cpu=100, memory=100 * GI, pods=110)
    _probes(om, {"site": "lisbon", "cluster": "east"}, [(t, 0.5, 1) for t in FRESH])
    # lisbon -> north: every probe succeeded, the last one 40 minutes before AT.
    _probes(om, {"site": "lisbon", "cluster": "north"},
            [(t, 0.010, 1) for t in _times(3600, 2400)])
    # madrid -> north: HTTP probes; 250 ms in all, of which the TCP connect is 8 ms.
    http = {"job": "blackbox-http", "site": "madrid", "cluster": "north"}
    _probes(om, http, [(t, 0.250, 1) for t in FRESH])
    for phase, seconds in (("resolve", 0.1), ("connect", 0.008), ("tls", 0.12), ("processing", 0.02)):
        om.add("probe_http_duration_seconds", {"instance": "target.example", **http, "phase": phase},
               seconds, FRESH)
    # porto -> north: ICMP probes; 50 ms in all (a slow resolver), a 4 ms round trip.
    icmp = {"job": "blackbox-icmp", "site": "porto", "cluster": "north"}
    _probes(om, icmp, [(t, 0.050, 1) for t in FRESH])
    for phase, seconds in (("resolve", 0.045), ("setup", 0.001), ("rtt", 0.004)):
        om.add("probe_icmp_duration_seconds", {"instance": "target.example", **icmp, "phase": phase},
               seconds, FRESH)
    return om.text()


def own_east() -> str:
    om = OpenMetrics()
    _node(om, "", "e1", FRESH, cpu=16, memory=64 * GI, pods=110)
    _pod(om, "", "shop", "e1", "Running", FRESH, {"app": {"cpu": 4, "memory": 8 * GI}})
    _probes(om, {"site": "lisbon"}, [(t, 0.020, 1) for t in FRESH])
    return om.text()


def own_west() -> str:
    om = OpenMetrics()
    _node(om, "", "w1", FRESH, cpu=4, memory=8 * GI, pods=50)
    return om.text()


def documents(spec: dict[str, Any] | None = None) -> list[dict[str, Any]]:
    def cluster(name: str, cpu: str) -> dict[str, Any]:
        return {"apiVersion": API, "kind": "Cluster", "metadata": {"name": name},
                "spec": {"capacity": {"cpu": cpu, "memory": "16Gi"}}}

    docs = [
        cluster("north", "1"), cluster("east", "2"), cluster("west", "3"),
        {"apiVersion": API, "kind": "Site", "metadata": {"name": "lisbon"},
         "spec": {"latencyMs": {"north": 33, "east": 44, "west": 55}}},
        *({"apiVersion": API, "kind": "Site", "metadata": {"name": site},
           "spec": {"latencyMs": {"north": 99}}} for site in ("madrid", "porto")),
        {"apiVersion": API, "kind": "Workload", "metadata": {"name": "web", "namespace": "shop"},
         "spec": {"replicas": 1, "resources": {"cpu": "500m", "memory": "1Gi"}}},
    ]
    if spec is not None:
        docs.append({"apiVersion": API, "kind": "MetricsSource", "metadata": {"name": "live"},
                     "spec": spec})
    return docs


def bundle(spec: dict[str, Any] | None = None) -> Bundle:
    return load_documents(documents(spec))


def source(**spec: Any) -> MetricsSource:
    return MetricsSource.model_validate(
        {"apiVersion": API, "kind": "MetricsSource", "metadata": {"name": "test"}, "spec": spec}
    )


@pytest.fixture(scope="module")
def servers(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, str]]:
    with (
        running_prometheus(global_layer(), tmp_path_factory.mktemp("global")) as glob,
        running_prometheus(own_east(), tmp_path_factory.mktemp("east")) as east,
        running_prometheus(own_west(), tmp_path_factory.mktemp("west")) as west,
    ):
        yield {"global": glob, "east": east, "west": west}


@pytest.fixture(scope="module")
def mixed(servers: dict[str, str]) -> LiveFleet:
    """The global layer for north, east's and west's own Prometheus for them."""
    cfg = source(prometheus={"clusters": {"east": servers["east"], "west": {"url": servers["west"]}}})
    return fetch_live(bundle(), servers["global"], source=cfg, at=AT)


# --- probes older than the window (maxAge longer than the window) -------------------


def test_probes_older_than_the_window_are_stale_not_unreachable(servers: dict[str, str]) -> None:
    cfg = source(maxAge="1h")
    live = fetch_live(bundle(), servers["global"], source=cfg, at=AT)
    out, report = apply_live(bundle(), live, cfg)
    lisbon = next(s for s in out.sites if s.name == "lisbon").spec.latency_ms
    assert lisbon["north"] == 33  # the bundle's value: not removed as unreachable
    text = " ".join(report.warnings)
    assert "north is unreachable" not in text
    assert "probes lisbon->north are 40m old, older than the latency window 15m" in text
    with pytest.raises(LiveSourceError, match="lisbon->north are 40m old, older than the latency window"):
        apply_live(bundle(), live, source(maxAge="1h", onStale="refuse"))


# --- one cluster's own Prometheus given as the global layer -------------------------


def test_no_series_with_the_cluster_label_is_an_error_naming_query_and_label(
    servers: dict[str, str],
) -> None:
    with pytest.raises(LiveSourceError) as err:
        fetch_live(bundle(), servers["east"], at=AT)
    message = str(err.value)
    assert err.value.exit_code == 3
    assert "query 'freshness' returned 1 series" in message
    assert "carries the cluster label 'cluster'" in message
    assert "external_labels" in message and "spec.prometheus.clusters" in message


def test_fleet_against_a_clusters_own_prometheus_exits_3_and_writes_nothing(
    servers: dict[str, str], tmp_path: Path
) -> None:
    bundle_file = tmp_path / "bundle.yaml"
    bundle_file.write_text(yaml.safe_dump_all(documents()))
    out = tmp_path / "fleet.yaml"
    result = CliRunner().invoke(
        app, ["fleet", str(bundle_file), "--prometheus", servers["east"], "--at", AT.isoformat(),
              "--output", str(out)],
        env={"COLUMNS": "300"},
    )
    assert result.exit_code == 3, result.output
    assert "query 'freshness'" in result.output and "label 'cluster'" in result.output
    assert not out.exists()


# --- a map of per-cluster Prometheus servers ----------------------------------------


def test_each_cluster_from_its_own_prometheus(mixed: LiveFleet) -> None:
    assert set(mixed.clusters) == {"north", "east", "west"}
    assert mixed.clusters["north"].free() == {"cpu": 6000, "memory": 28 * GI, "pods": 109}
    # east: its own Prometheus (16 cores, a 4-core pod), not the global layer's 100 cores.
    assert mixed.clusters["east"].free() == {"cpu": 12000, "memory": 56 * GI, "pods": 109}
    assert mixed.clusters["west"].free() == {"cpu": 4000, "memory": 8 * GI, "pods": 50}
    # east's probes come from its own Prometheus (20 ms), not the global layer's 500 ms.
    assert mixed.latency[("lisbon", "east")].ms == pytest.approx(20.0)
    out, report = apply_live(bundle(), mixed, MetricsSource.default())
    assert sorted(report.updated) == ["east", "north", "west"]
    assert next(s for s in out.sites if s.name == "lisbon").spec.latency_ms["east"] == 20


def test_per_cluster_map_alone_in_the_bundle(servers: dict[str, str], tmp_path: Path) -> None:
    """No global URL at all: ``berth fleet`` reads each cluster's own Prometheus."""
    bundle_file = tmp_path / "bundle.yaml"
    spec = {"prometheus": {"clusters": {"east": servers["east"], "west": servers["west"]}}}
    bundle_file.write_text(yaml.safe_dump_all(documents(spec)))
    out = tmp_path / "fleet.yaml"
    result = CliRunner().invoke(
        app, ["fleet", str(bundle_file), "--at", AT.isoformat(), "--output", str(out)],
        env={"COLUMNS": "200"},
    )
    assert result.exit_code == 0, result.output
    caps = {d["metadata"]["name"]: d["spec"]["capacity"] for d in yaml.safe_load_all(out.read_text())}
    assert caps["east"]["cpu"] == "12" and caps["west"]["cpu"] == "4"
    assert caps["north"]["cpu"] == "1"  # no source for north: the bundle's value
    assert "north has no live data" in result.output


def test_an_unreachable_clusters_prometheus_makes_that_cluster_stale(servers: dict[str, str]) -> None:
    dead = f"http://127.0.0.1:{free_port()}"
    cfg = source(prometheus={"retries": 0, "clusters": {"east": servers["east"], "west": dead}})
    live = fetch_live(bundle(), None, source=cfg, at=AT)
    assert "could not connect" in (live.clusters["west"].error or "")
    out, report = apply_live(bundle(), live, cfg)
    assert [s.name for s in report.stale] == ["west"]
    assert next(c for c in out.clusters if c.name == "west").spec.capacity["cpu"] == 3000
    assert "east" in report.updated
    with pytest.raises(LiveSourceError, match="west could not be read"):
        apply_live(bundle(), live, source(onStale="refuse"))


def test_a_rejected_query_on_a_clusters_own_prometheus_stops_the_fetch(servers: dict[str, str]) -> None:
    cfg = source(prometheus={"clusters": {"east": servers["east"]}},
                 queries={"podsUsed": "count by ($cluster) (kube_pod_info"})
    with pytest.raises(LiveSourceError, match="'podsUsed' was rejected as invalid PromQL"):
        fetch_live(bundle(), None, source=cfg, at=AT)


# --- requests as kube-scheduler counts them, HA pairs counted once ------------------

MI = 2**20


def _twice(om: OpenMetrics, metric: str, labels: dict[str, str], value: float) -> None:
    """The same series scraped from two replicas of its exporter (an HA pair)."""
    for instance in ("10.0.0.1:8080", "10.0.0.2:8080"):
        om.add(metric, {**labels, "instance": instance}, value, FRESH)


def requests_data() -> str:
    om = OpenMetrics()
    # ksm-only: kube-state-metrics (an HA pair), no kube-scheduler resource metrics.
    for resource, value in (("cpu", 16), ("memory", 64 * GI), ("pods", 110)):
        _twice(om, "kube_node_status_allocatable",
               {"cluster": "ksm-only", "node": "k1", "resource": resource}, value)
    _twice(om, "kube_node_spec_unschedulable", {"cluster": "ksm-only", "node": "k1"}, 0)
    web = {"cluster": "ksm-only", "namespace": "shop", "pod": "web"}
    _twice(om, "kube_pod_info", {**web, "node": "k1"}, 1)
    _twice(om, "kube_pod_status_phase", {**web, "phase": "Running"}, 1)
    # app containers 1 + 0.5 cpu, 1Gi + 256Mi; sidecar init container 0.25 cpu, 128Mi;
    # init container 3 cpu, 512Mi; overhead 0.1 cpu, 64Mi.
    for kind, container, cpu, memory in (
        ("container", "app", 1, 1 * GI), ("container", "log", 0.5, 256 * MI),
        ("init_container", "proxy", 0.25, 128 * MI), ("init_container", "migrate", 3, 512 * MI),
    ):
        for resource, value in (("cpu", cpu), ("memory", memory)):
            _twice(om, f"kube_pod_{kind}_resource_requests",
                   {**web, "container": container, "node": "k1", "resource": resource}, value)
    _twice(om, "kube_pod_init_container_info", {**web, "container": "proxy", "restart_policy": "Always"}, 1)
    _twice(om, "kube_pod_init_container_info", {**web, "container": "migrate"}, 1)
    _twice(om, "kube_pod_overhead_cpu_cores", web, 0.1)
    _twice(om, "kube_pod_overhead_memory_bytes", web, 64 * MI)
    # with-scheduler: kube-scheduler's kube_pod_resource_request (two scheduler replicas)
    # wins over kube-state-metrics, whose container requests miss the pod-level resources.
    for resource, value in (("cpu", 8), ("memory", 16 * GI), ("pods", 110)):
        _twice(om, "kube_node_status_allocatable",
               {"cluster": "with-scheduler", "node": "s1", "resource": resource}, value)
    for name, phase, cpu, memory, labels in (
        ("db", "Running", 2.5, 3 * GI, {}),
        ("done", "Succeeded", 4, 4 * GI, {}),
        ("berth-web", "Running", 1, 1 * GI, {"label_app_kubernetes_io_managed_by": "berth"}),
    ):
        pod = {"cluster": "with-scheduler", "namespace": "shop", "pod": name}
        _twice(om, "kube_pod_info", {**pod, "node": "s1"}, 1)
        _twice(om, "kube_pod_status_phase", {**pod, "phase": phase}, 1)
        _twice(om, "kube_pod_labels", {**pod, **labels}, 1)
        for resource, value in (("cpu", cpu), ("memory", memory)):
            _twice(om, "kube_pod_container_resource_requests",
                   {**pod, "container": "c", "node": "s1", "resource": resource}, value / 4)
            _twice(om, "kube_pod_resource_request",
                   {**pod, "node": "s1", "resource": resource, "scheduler": "default-scheduler",
                    "priority": "0"}, value)
    return om.text()


@pytest.fixture(scope="module")
def requests_live(tmp_path_factory: pytest.TempPathFactory) -> LiveFleet:
    with running_prometheus(requests_data(), tmp_path_factory.mktemp("requests")) as url:
        return fetch_live(bundle(), url, at=AT)


def test_init_containers_sidecars_and_overhead_count_as_the_scheduler_counts(
    requests_live: LiveFleet,
) -> None:
    cluster = requests_live.clusters["ksm-only"]
    assert cluster.allocatable == {"cpu": 16000, "memory": 64 * GI, "pods": 110}  # not doubled
    # cpu: max(1 + 0.5 + 0.25 sidecar, 3 init) + 0.1 overhead = 3.1;
    # memory: max(1Gi + 256Mi + 128Mi, 512Mi) + 64Mi = 1472Mi; one pod.
    assert cluster.requested == {"cpu": 3100, "memory": 1472 * MI, "pods": 1}


def test_kube_schedulers_requests_win_where_they_exist(requests_live: LiveFleet) -> None:
    cluster = requests_live.clusters["with-scheduler"]
    assert cluster.allocatable == {"cpu": 8000, "memory": 16 * GI, "pods": 110}
    # db only: done has Succeeded, berth-web is Berth's own; not ksm's quarter of it.
    assert cluster.requested == {"cpu": 2500, "memory": 3 * GI, "pods": 1}


# --- latency: which blackbox series measures the path, per site ---------------------


def _latencies(url: str, **latency: Any) -> dict[str, float | None]:
    live = fetch_live(bundle(), url, source=source(latency=latency), at=AT)
    return {site: live.latency[(site, "north")].ms for site in ("madrid", "porto")}


def test_latency_presets_per_site(servers: dict[str, str]) -> None:
    # The default: the whole probe, DNS and TLS included.
    assert _latencies(servers["global"]) == pytest.approx({"madrid": 250, "porto": 50})
    # HTTP connect phase for every site, the ICMP round trip for porto.
    assert _latencies(servers["global"], probe="http-connect", sites={"porto": "icmp"}) == (
        pytest.approx({"madrid": 8, "porto": 4})
    )
    # Any selector: madrid's TLS handshake.
    got = _latencies(servers["global"], sites={"madrid": 'probe_http_duration_seconds{phase="tls"}'})
    assert got == pytest.approx({"madrid": 120, "porto": 50})


def test_latency_preset_reaches_the_plan(servers: dict[str, str]) -> None:
    cfg = source(latency={"sites": {"porto": "icmp"}})
    live = fetch_live(bundle(), servers["global"], source=cfg, at=AT)
    out, _ = apply_live(bundle(), live, cfg)
    assert next(s for s in out.sites if s.name == "porto").spec.latency_ms["north"] == 4


def test_unknown_latency_preset_is_bad_input() -> None:
    from engine.errors import InputError

    with pytest.raises(InputError, match=r"spec\.latency\.sites: expected a preset") as err:
        load_documents(documents({"latency": {"sites": {"porto": "ping rtt"}}}))
    assert err.value.exit_code == 2
