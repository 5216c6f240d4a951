"""What-if: scenario edits (pure) and ``berth whatif`` on a Dask LocalCluster with 2 workers + report."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import matplotlib.image
import pytest
import yaml
from typer.testing import CliRunner

from adapters.cli.app import app
from engine.bundle import load_documents
from engine.errors import InputError
from engine.scenario import Scenario, apply_scenario, expand
from tests.api_fixture import API, cluster, workload

FLEET = [
    cluster("eu-1", "eu", "4"), cluster("eu-2", "eu", "4"),
    cluster("us-1", "us", "4", price="0.08"), cluster("us-2", "us", "4", price="0.08"),
    {"apiVersion": API, "kind": "Site", "metadata": {"name": "users"},
     "spec": {"latencyMs": {"eu-1": 5, "eu-2": 6, "us-1": 80, "us-2": 85}}},
    workload("web", "shop", replicas=4, priority=100),
    workload("api", "shop", replicas=3),
    workload("batch", "ops", replicas=2, cpu="2"),
]


def _scenario(name: str, spec: dict[str, Any]) -> dict[str, Any]:
    return {"apiVersion": API, "kind": "Scenario", "metadata": {"name": name}, "spec": spec}


SCENARIOS = [
    _scenario("lose-eu", {"edits": [{"removeClusters": {"regions": ["eu"]}}]}),
    _scenario("demand", {"edits": [{"scaleDemand": {"workloads": {"namespaces": ["shop"]}, "factor": 1}}],
                         "sweep": {"parameter": "edits[0].scaleDemand.factor", "from": 1, "to": 3, "steps": 3}}),
    _scenario("typo", {"edits": [{"removeClusters": {"regions": ["mars"]}}]}),
]


def test_edits_touch_a_copy_only() -> None:
    bundle = load_documents(FLEET)
    edits = [{"removeClusters": {"clusterNames": ["eu-1"]}},
             {"scaleCapacity": {"clusters": {"regions": ["us"]}, "factor": 0.5, "resources": ["cpu"]}},
             {"addClusters": [{"like": "eu-2", "metadata": {"name": "eu-3"}}]},
             {"changePrices": {"set": {"cpu": "0.5"}, "clusters": {"clusterNames": ["us-1"]}}}]
    edited, notes = apply_scenario(bundle, Scenario.model_validate(_scenario("x", {"edits": edits})))
    names = {c.metadata.name: c for c in edited.clusters}
    assert "eu-1" not in names and "eu-1" not in edited.sites[0].spec.latency_ms
    assert names["us-2"].spec.capacity["cpu"] == 2000
    assert names["eu-3"].spec.capacity == names["eu-2"].spec.capacity
    assert edited.sites[0].spec.latency_ms["eu-3"] == 6
    assert names["us-1"].spec.price["cpu"] == 0.5
    assert len(notes) == 4
    assert {c.metadata.name for c in bundle.clusters} == {"eu-1", "eu-2", "us-1", "us-2"}  # untouched
    points = expand(Scenario.model_validate(SCENARIOS[1]))
    assert [p[2] for p in points] == [1.0, 2.0, 3.0]
    assert [w.spec.replicas for w in apply_scenario(bundle, points[2][1])[0].workloads[:2]] == [12, 9]
    with pytest.raises(InputError, match="matches no cluster"):
        apply_scenario(bundle, Scenario.model_validate(SCENARIOS[2]))


def test_whatif_on_dask_with_report(tmp_path: Path) -> None:
    (tmp_path / "fleet.yaml").write_text(yaml.safe_dump_all(FLEET), encoding="utf-8")
    (tmp_path / "scenarios.yaml").write_text(yaml.safe_dump_all(SCENARIOS), encoding="utf-8")
    report = tmp_path / "report"
    out = tmp_path / "results.json"
    result = CliRunner().invoke(app, [
        "whatif", str(tmp_path / "fleet.yaml"), "--scenario", str(tmp_path / "scenarios.yaml"),
        "--report", str(report), "--output", str(out), "--workers", "2", "--time-limit", "2"])
    assert result.exit_code == 1, result.output  # "typo" failed; the others finished
    data = json.loads(out.read_text())
    by_name = {r["name"]: r for r in data["scenarios"]}
    assert "matches no cluster" in by_name["typo"]["error"]
    lose = by_name["lose-eu"]["summary"]
    assert lose["clusters"] == 2 and "eu" not in lose["regionUtilisation"]
    assert lose["movedReplicas"] > 0  # the baseline used eu, which is gone
    sweep = [by_name[f"demand[factor={v}]"]["summary"] for v in (1, 2, 3)]
    assert sweep[0]["unplaced"] == data["baseline"]["unplaced"]
    assert sweep[2]["unplaced"] >= sweep[0]["unplaced"]
    md = (report / "report.md").read_text()
    html = (report / "report.html").read_text()
    pngs = sorted(p.name for p in report.glob("*.png"))
    assert pngs == ["sweep-demand.png", "utilisation-lose-eu.png"]
    for name in pngs:
        assert name in md and name in html
        data_png = (report / name).read_bytes()
        assert data_png.startswith(b"\x89PNG\r\n\x1a\n")
        assert matplotlib.image.imread(report / name).shape[0] > 100
    assert "typo" in md and "http" not in html.lower().replace("<!doctype html><html>", "")
