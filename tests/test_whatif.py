"""What-if: scenario edits (pure) and ``berth whatif`` on a Dask LocalCluster with 2 workers + report."""

from __future__ import annotations

import contextlib
import json
import socket
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import matplotlib.image
import pytest
import yaml
from typer.testing import CliRunner

from adapters.cli.app import app
from engine.documents.load import load_documents
from engine.documents.scenario import Scenario
from engine.errors import InputError
from engine.scenario import apply_scenario, expand
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


@contextlib.contextmanager
def _dask_default_port_taken() -> Iterator[None]:
    """Hold Dask's default dashboard port 8787 (if someone else holds it already, that is the same)."""
    with socket.socket() as sock:
        try:
            sock.bind(("", 8787))
            sock.listen()
        except OSError:
            pass
        yield


def test_whatif_on_dask_with_report(tmp_path: Path) -> None:
    (tmp_path / "fleet.yaml").write_text(yaml.safe_dump_all(FLEET), encoding="utf-8")
    (tmp_path / "scenarios.yaml").write_text(yaml.safe_dump_all(SCENARIOS), encoding="utf-8")
    report = tmp_path / "report"
    out = tmp_path / "results.json"
    with _dask_default_port_taken():  # another Dask (or berth whatif) on the machine must not matter
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
    assert sweep[0]["unplacedReplicas"] == data["baseline"]["unplacedReplicas"]
    assert sweep[2]["unplacedReplicas"] >= sweep[0]["unplacedReplicas"]
    # each scenario's bound over every plan at its replicas (spec 5), shown under that name
    assert data["baseline"]["bound"] is not None and data["baseline"]["bound"] <= data["baseline"]["weighted"] + 1e-6
    # the table's cell (folded into a narrow terminal, so read from the function that writes it)
    from adapters.cli.whatif import _weighted

    assert f"bound (all plans) {data['baseline']['bound']}" in _weighted(data["baseline"])
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


EXAMPLES = Path(__file__).resolve().parent.parent / "examples"


def _section(md: str, title: str) -> str:
    start = md.index(f"## {title}\n")
    end = md.find("\n## ", start + 1)
    return md[start:end if end >= 0 else None]


def test_example_report_is_safe_to_decide_from(tmp_path: Path) -> None:
    """The shipped example scenarios: every resource, removed/added clusters, unplaced demand named."""
    report, out = tmp_path / "report", tmp_path / "results.json"
    result = CliRunner().invoke(app, [
        "whatif", str(EXAMPLES / "edge-retail"), "--scenario", str(EXAMPLES / "whatif" / "scenarios.yaml"),
        "--report", str(report), "--output", str(out), "--workers", "2", "--time-limit", "2"])
    assert result.exit_code == 0, result.output
    data = json.loads(out.read_text())
    base = data["baseline"]
    by_name = {r["name"]: r for r in data["scenarios"]}
    # one way of counting replicas: placed by priority (copies of Duplicated) adds up to placed replicas
    assert base["placedReplicas"] == sum(base["placedReplicasByPriority"].values())
    for s in [base, *(r["summary"] for r in data["scenarios"])]:
        for field in ("placedReplicasByPriority", "unplacedReplicasByPriority"):
            assert [int(k) for k in s[field]] == sorted((int(k) for k in s[field]), reverse=True)
    # the unchanged x1.0 point is the baseline: nothing moves, nothing stops, same numbers
    same = by_name["black-friday[factor=1]"]["summary"]
    assert (same["movedReplicas"], same["stoppedReplicas"]) == (0, 0)
    for key in ("placedReplicas", "unplacedReplicas", "cost", "latency", "utilisation"):
        assert same[key] == base[key], key
    # losing a region: capacity lost, workloads unplaced and named, never read as a saving
    lose = by_name["lose-eu-west"]
    assert len(lose["delta"]["removedClusters"]) == 7 and lose["delta"]["capacity"]["cpu"] < 0
    newly = [u["workload"] for u in lose["delta"]["newlyUnplaced"]]
    assert newly and lose["delta"]["unplacedReplicas"] > 0
    md = (report / "report.md").read_text()
    html = (report / "report.html").read_text()
    section = _section(md, "Scenario lose-eu-west")
    assert "Capacity lost: 7 cluster(s) removed" in section
    assert all(name in section for name in newly)
    assert "saving" not in section or "is not a saving" in section
    if lose["delta"]["cost"] < 0:
        assert "is not a saving: it falls because" in section
    assert "(+1 added)" in md  # store-rack-prices-up adds regional-us-east-3
    assert "regional-us-east-3" in _section(md, "Scenario store-rack-prices-up")
    # every resource, with units; cost per hour beside the demand left unplaced
    for resource in ("cpu", "memory", "nvidia.com/gpu", "pods"):
        assert f"### {resource}\n" in _section(md, "Utilisation per region")
        assert f"| {resource} |" in section
    assert "cores" in section and "GiB" in section
    overview = _section(md, "Scenarios").splitlines()
    header = next(line for line in overview if line.startswith("| scenario"))
    cols = [c.strip() for c in header.strip("|").split("|")]
    assert cols.index("cost per hour (Δ)") == cols.index("left unplaced (Δ)") + 1
    priorities = [line.split("|")[1].strip() for line in section.split("### Replicas by priority")[1].splitlines()
                  if line.startswith("| ") and line.split("|")[1].strip().isdigit()]
    assert priorities == ["1000", "100", "50", "0"]
    sweep = _section(md, "Sweep black-friday")
    assert "| 1 | " in sweep and "| 0 | 0 |" in sweep.split("| 1 | ")[1].splitlines()[0]
    assert sorted(p.name for p in report.glob("*.png")) == [
        "sweep-black-friday.png", "utilisation-lose-eu-west.png", "utilisation-store-rack-prices-up.png"]
    for name in ("sweep-black-friday.png", "utilisation-lose-eu-west.png"):
        assert f"]({name})" in md and f'src="{name}"' in html


def test_duplicated_counts_each_copy_placed_or_not() -> None:
    """Spec 3.1: a Duplicated workload's replicas are counted per copy, also when it is unplaced."""
    from engine.planner import place
    from engine.summary import summarize

    policy = {"apiVersion": API, "kind": "PlacementPolicy", "metadata": {"name": "everywhere", "namespace": "ops"},
              "spec": {"replicaScheduling": {"replicaSchedulingType": "Duplicated"}}}
    agent = workload("agent", "ops", replicas=2, cpu="100m")
    agent["spec"]["policy"] = "everywhere"
    huge = workload("huge", "ops", replicas=3, cpu="3")
    huge["spec"]["policy"] = "everywhere"  # 3 x 3 cpu on each of 4 clusters of 4 cpu: cannot fit
    bundle = load_documents([*FLEET, policy, agent, huge])
    s = summarize(bundle, place(bundle, time_limit=5))
    assert [u["workload"] for u in s["unplacedList"]] == ["ops/huge"]
    assert s["unplacedList"][0]["replicas"] == 3 * 4
    assert s["unplacedReplicasByPriority"] == {"0": 12}
    assert s["placedReplicas"] == sum(s["placedReplicasByPriority"].values()) == 4 + 3 + 2 + 2 * 4  # agent x4


def test_report_html_is_autoescaped(tmp_path: Path) -> None:
    from adapters.report import write_report
    from engine.planner import place
    from engine.summary import summarize

    bundle = load_documents(FLEET)
    baseline = summarize(bundle, place(bundle, time_limit=5))
    write_report(tmp_path, baseline, [{"name": "evil", "value": None, "error": "<script>alert(1)</script>"}])
    html = (tmp_path / "report.html").read_text()
    assert "<script>" not in html and "&lt;script&gt;alert(1)&lt;/script&gt;" in html
    assert "<script>alert(1)</script>" in (tmp_path / "report.md").read_text()


def test_demand_that_does_not_fit_a_running_workload_is_counted_unplaced() -> None:
    """Spec 4 keeps a running workload at its current replicas; the replicas it wants beyond are unplaced demand."""
    from engine.planner import place
    from engine.scenario import solve_scenario

    bundle = load_documents(FLEET)
    base = place(bundle, time_limit=5)
    grow = Scenario.model_validate(_scenario("grow", {"edits": [
        {"scaleDemand": {"workloads": {"names": ["shop/web"]}, "factor": 5}}]}))  # 20 x 1 cpu > 16 cpu
    s = solve_scenario(bundle, grow, current=base.assignment(), time_limit=5)
    assert [(u["workload"], u["keptReplicas"], u["wantedReplicas"]) for u in s["notAppliedList"]] == [
        ("shop/web", 4, 20)]
    assert s["placedReplicas"] + s["unplacedReplicas"] == 20 + 3 + 2  # web as asked, api, batch
    assert s["unplacedReplicasByReason"].get("ChangeNotApplied") == 16
