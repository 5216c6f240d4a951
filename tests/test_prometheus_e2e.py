"""End to end: bundle + a real Prometheus -> plan for the live capacities; ``berth fleet``.

The file says edge-a has 10 free cores; Prometheus says other tenants' pods
use 7 of them. The plan made against Prometheus must fit the live numbers
(checked by the independent verifier) and differ from the plan for the file.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
import yaml
from typer.testing import CliRunner

from adapters.cli.app import app
from adapters.prometheus import fetch_live
from engine.documents.live import MetricsSource
from engine.documents.load import load_bundle, load_documents
from engine.live import apply_live
from tests.prom_fixture import OpenMetrics, free_port, running_prometheus

API = "placement.berth.dev/v1alpha1"
GI = 2**30
AT_S = (int(time.time()) // 60) * 60 - 3 * 3600
AT = datetime.fromtimestamp(AT_S, UTC)
FRESH = range(AT_S - 600, AT_S + 1, 30)
OLD = range(AT_S - 3000, AT_S - 1800 + 1, 30)

DOCS: list[dict[str, Any]] = [
    {"apiVersion": API, "kind": "Cluster", "metadata": {"name": "edge-a"},
     "spec": {"region": "eu", "capacity": {"cpu": "10", "memory": "40Gi"},
              "price": {"cpu": "0.01"}}},
    {"apiVersion": API, "kind": "Cluster", "metadata": {"name": "edge-b"},
     "spec": {"region": "eu", "capacity": {"cpu": "10", "memory": "40Gi"},
              "price": {"cpu": "0.05"}}},
    {"apiVersion": API, "kind": "Cluster", "metadata": {"name": "edge-c"},
     "spec": {"region": "eu", "capacity": {"cpu": "4", "memory": "8Gi"},
              "price": {"cpu": "0.09"}}},
    {"apiVersion": API, "kind": "Workload", "metadata": {"name": "web", "namespace": "shop"},
     "spec": {"replicas": 4, "resources": {"cpu": "2", "memory": "1Gi"}}},
]


def dataset() -> str:
    om = OpenMetrics()
    for cluster, cpu, times in (("edge-a", 12, FRESH), ("edge-b", 12, FRESH), ("edge-c", 64, OLD)):
        for resource, value, unit in (("cpu", cpu, "core"), ("memory", 48 * GI, "byte"),
                                      ("pods", 110, "integer")):
            om.add("kube_node_status_allocatable",
                   {"cluster": cluster, "node": "n1", "resource": resource, "unit": unit},
                   value, times)
        om.add("kube_node_spec_unschedulable", {"cluster": cluster, "node": "n1"}, 0, times)
    # edge-a: a POS system uses 9 of 12 cores -> 3 free; edge-b: 1 of 12 -> 11 free.
    for cluster, used in (("edge-a", 9), ("edge-b", 1)):
        base = {"cluster": cluster, "namespace": "pos", "pod": "pos-0"}
        om.add("kube_pod_info", {**base, "node": "n1"}, 1, FRESH)
        om.add("kube_pod_status_phase", {**base, "phase": "Running"}, 1, FRESH)
        for resource, value, unit in (("cpu", used, "core"), ("memory", 4 * GI, "byte")):
            om.add("kube_pod_container_resource_requests",
                   {**base, "container": "c", "node": "n1", "resource": resource, "unit": unit},
                   value, FRESH)
    return om.text()


@pytest.fixture(scope="module")
def prom(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    with running_prometheus(dataset(), tmp_path_factory.mktemp("prom-e2e")) as url:
        yield url


def test_plan_for_live_capacities_differs_and_is_valid(prom: str) -> None:
    from engine.planner import place
    from engine.verification import verify

    bundle = load_documents(DOCS)
    file_plan = place(bundle, time_limit=10)
    assert file_plan.assignment() == {"shop/web": {"edge-a": 4}}  # cheapest, fits 8 of 10

    live = fetch_live(bundle, prom, at=AT)
    applied, report = apply_live(bundle, live, MetricsSource.default())
    caps = {c.name: c.spec.capacity["cpu"] for c in applied.clusters}
    assert caps == {"edge-a": 3000, "edge-b": 11000, "edge-c": 4000}  # edge-c: stale -> file
    live_plan = place(applied, time_limit=10, warnings=report.warnings)

    assert live_plan.status.solver == "Optimal"
    assert live_plan.assignment() == {"shop/web": {"edge-a": 1, "edge-b": 3}}
    assert live_plan.assignment() != file_plan.assignment()
    assert verify(applied, live_plan) == []
    # The file's plan would overcommit edge-a now: the verifier says so.
    assert verify(applied, file_plan) != []
    assert any("edge-c is stale" in w for w in live_plan.status.warnings)


def test_fleet_command_table_and_snapshot(prom: str, tmp_path: Path) -> None:
    bundle_file = tmp_path / "bundle.yaml"
    bundle_file.write_text(yaml.safe_dump_all(DOCS))
    out = tmp_path / "fleet.yaml"
    result = CliRunner().invoke(
        app, ["fleet", str(bundle_file), "--prometheus", prom, "--at", AT.isoformat(),
              "--output", str(out)],
        env={"COLUMNS": "200"},
    )
    assert result.exit_code == 0, result.output
    assert "STALE" in result.output and "edge-c" in result.output
    assert "75%" in result.output  # edge-a cpu: 9 of 12 requested
    snap = load_bundle([out])
    caps = {c.name: c.spec.capacity for c in snap.clusters}
    assert caps["edge-a"] == {"cpu": 3000, "memory": 44 * GI, "pods": 109}
    assert caps["edge-c"] == {"cpu": 4000, "memory": 8 * GI}
    edge_a = next(c for c in snap.clusters if c.name == "edge-a")
    assert edge_a.spec.price == {"cpu": 0.01}  # the rest of the document is kept
    assert edge_a.metadata.annotations["placement.berth.dev/capacity-source"] == "live"


def test_fleet_command_dead_prometheus_exits_3(tmp_path: Path) -> None:
    bundle_file = tmp_path / "bundle.yaml"
    bundle_file.write_text(yaml.safe_dump_all(DOCS))
    out = tmp_path / "fleet.yaml"
    result = CliRunner().invoke(
        app, ["fleet", str(bundle_file), "--prometheus", f"http://127.0.0.1:{free_port()}",
              "--output", str(out)],
    )
    assert result.exit_code == 3
    assert "could not connect" in result.output
    assert "Traceback" not in result.output
    assert not out.exists()


def test_example_live_metrics_for_the_edge_retail_fleet(tmp_path: Path) -> None:
    """The data ``make demo-live`` serves stages a stale, a missing and an extra cluster."""
    import importlib.util

    root = Path(__file__).resolve().parents[1]
    spec = importlib.util.spec_from_file_location("generate", root / "examples/live/generate.py")
    assert spec is not None and spec.loader is not None
    generate = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(generate)
    paths = [root / "examples/edge-retail", root / "examples/live/metrics-source.yaml"]
    text = generate.generate([str(p) for p in paths[:1]], AT_S, 10)
    bundle = load_bundle(paths)
    with running_prometheus(text, tmp_path) as url:
        live = fetch_live(bundle, url, at=AT)
    applied, report = apply_live(bundle, live, MetricsSource.default())
    assert [s.name for s in report.stale] == [generate.STALE]
    assert report.missing == [generate.MISSING]
    assert report.extra == [generate.EXTRA]
    assert len(report.updated) == len(bundle.clusters) - 2
    before = {c.name: c.spec.capacity for c in bundle.clusters}
    after = {c.name: c.spec.capacity for c in applied.clusters}
    assert after["edge-paris-1"]["cpu"] < before["edge-paris-1"]["cpu"]  # busy store
    assert after["cloud-us-1"]["nvidia.com/gpu"] == before["cloud-us-1"]["nvidia.com/gpu"] - 2
    paris = next(s for s in applied.sites if s.name == "paris-shoppers").spec.latency_ms
    assert paris["edge-paris-1"] > 5 * 3.4  # congested uplink
