"""The ``berth`` command as a user runs it: place, verify, moves, exit codes."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from engine.documents.load import load_bundle
from engine.planner import place
from engine.verification import verify
from tests.builders import bundle_of, cluster, objective, workload

BERTH = str(Path(sys.executable).parent / "berth")
EXAMPLES = Path(__file__).resolve().parent.parent / "examples"


def run(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([BERTH, *args], capture_output=True, text=True, timeout=300)


def write_bundle(tmp_path: Path, *docs: dict) -> Path:
    path = tmp_path / "bundle.json"
    path.write_text(json.dumps(list(docs)), encoding="utf-8")
    return path


def test_place_writes_plan_and_verify_accepts_it(tmp_path: Path) -> None:
    bundle = write_bundle(tmp_path, cluster("a"), cluster("b"), workload("web", 3))
    out = tmp_path / "plan.json"
    result = run("place", str(bundle), "--output", str(out))
    assert result.returncode == 0, result.stderr
    plan = json.loads(out.read_text())
    assert plan["kind"] == "PlacementPlan" and plan["apiVersion"] == "placement.berth.dev/v1alpha1"
    assert plan["metadata"]["inputDigest"].startswith("sha256:")
    assert plan["status"]["solver"] == "Optimal" and plan["status"]["gap"] == 0.0
    assert sum(plan["placements"][0]["clusters"].values()) == 3
    assert "Cluster utilisation" in result.stdout and "Placements" in result.stdout
    # the summary names what its bound covers (spec 5): every plan with these replicas, not this placement
    assert f"bound (all plans) {plan['status']['bound']}" in " ".join(result.stdout.split())  # wrapped lines
    assert "bound at this placement" not in " ".join(result.stdout.split())  # the exact path proves it over every plan
    checked = run("verify", str(bundle), str(out))
    assert checked.returncode == 0 and "valid" in checked.stdout


def test_verify_lists_every_violation_and_exits_1(tmp_path: Path) -> None:
    bundle = write_bundle(tmp_path, cluster("a", capacity={"cpu": "2"}), workload("web", 3), workload("db", 1))
    bad = {"placements": [{"workload": "default/web", "clusters": {"a": 2, "ghost": 1}}], "unplaced": []}
    plan = tmp_path / "bad.json"
    plan.write_text(json.dumps(bad))
    result = run("verify", str(bundle), str(plan))
    assert result.returncode == 1
    for code in ("UnknownCluster", "MissingWorkload"):
        assert code in result.stdout


def test_unplaced_is_a_result_not_an_error(tmp_path: Path) -> None:
    bundle = write_bundle(tmp_path, cluster("a", capacity={"cpu": "1"}), workload("huge", 4))
    out = tmp_path / "plan.json"
    result = run("place", str(bundle), "--output", str(out))
    assert result.returncode == 0
    plan = json.loads(out.read_text())
    assert plan["unplaced"][0]["reasons"][0]["code"] == "InsufficientCapacity"
    assert "1 eligible cluster(s) have 1 free cpu; 4 needed" in plan["unplaced"][0]["reasons"][0]["message"]


def test_current_placement_costs_moves_and_lists_them(tmp_path: Path) -> None:
    docs = [cluster("old", price={"cpu": "0.05"}), cluster("new", price={"cpu": "0.01"}), workload("web", 4)]
    bundle = write_bundle(tmp_path, *docs)
    current = tmp_path / "current.json"
    current.write_text(json.dumps({"placements": [{"workload": "default/web", "clusters": {"old": 4}}]}))
    out = tmp_path / "plan.json"
    # saving 0.04/h per replica is less than a move costs (0.2): stay
    assert run("place", str(bundle), "--current", str(current), "--output", str(out)).returncode == 0
    plan = json.loads(out.read_text())
    assert plan["placements"][0]["clusters"] == {"old": 4} and plan["moves"] == []
    # with moves free, everything moves, and the moves are listed
    assert run("place", str(bundle), "--current", str(current), "--output", str(out),
               "--weight", "moves=0").returncode == 0
    plan = json.loads(out.read_text())
    assert plan["placements"][0]["clusters"] == {"new": 4}
    assert plan["moves"] == [{"workload": "default/web", "from": "old", "to": "new", "replicas": 4}]
    assert plan["status"]["objective"]["moves"] == 4


def test_max_moves_budget_is_honoured() -> None:
    docs = [cluster("old", price={"cpu": "1"}), cluster("new", price={"cpu": "0"}), workload("web", 4),
            objective(maxMoves=1)]
    current = {"default/web": {"old": 4}}
    plan = place(bundle_of(*docs), current=current)
    assert plan.assignment()["default/web"] == {"old": 3, "new": 1}
    assert plan.status.objective.moves == 1
    assert verify(bundle_of(*docs), plan, current=current) == []


def test_budget_too_small_to_repair_is_infeasible() -> None:
    # the current cluster shrank: 2 replicas must move, the budget allows 1
    docs = [cluster("a", capacity={"cpu": "2"}), cluster("b"), workload("web", 4), objective(maxMoves=1)]
    plan = place(bundle_of(*docs), current={"default/web": {"a": 4}})
    assert plan.status.solver == "Infeasible"
    assert plan.unplaced[0].reasons[0].code == "MovesBudget"


def test_lower_priority_never_displaces_higher(tmp_path: Path) -> None:
    docs = [cluster("a", capacity={"cpu": "4"}), workload("vip", 4, priority=10), workload("bulk", 4)]
    plan = place(bundle_of(*docs), current={"default/bulk": {"a": 4}})
    assert plan.assignment() == {"default/vip": {"a": 4}}
    assert [m.model_dump(by_alias=True) for m in plan.moves] == [
        {"workload": "default/bulk", "from": "a", "to": None, "replicas": 4}]


def test_weight_override_is_validated(tmp_path: Path) -> None:
    bundle = write_bundle(tmp_path, cluster("a"), workload("web", 1))
    result = run("place", str(bundle), "--weight", "speed=3")
    assert result.returncode == 2 and "--weight" in result.stderr


@pytest.mark.parametrize(("example", "unplaced"), [
    ("edge-retail", {"retail/ar-try-on", "payments/fraud-model-retrain", "analytics/backfill-reindex"}),
    ("telco-mec", {"mec-apps/model-retraining"}),
])
def test_golden_examples(example: str, unplaced: set[str]) -> None:
    bundle = load_bundle([EXAMPLES / example])
    plan = place(bundle, time_limit=60)
    assert plan.status.solver == "Optimal"
    assert verify(bundle, plan) == []
    keys = {w.key for w in bundle.workloads}
    assert {p.workload for p in plan.placements} | {u.workload for u in plan.unplaced} == keys
    assert {u.workload for u in plan.unplaced} == unplaced
    for u in plan.unplaced:
        assert all(r.message for r in u.reasons)


def test_short_time_limit_still_gives_a_full_valid_plan() -> None:
    # from 300 pairs on the solver starts from the construction and never returns less than it,
    # so a tight limit (what-if sweeps on a busy machine) cannot end with nothing placed
    bundle = load_bundle([EXAMPLES / "edge-retail"])
    plan = place(bundle, time_limit=1.0)
    assert plan.status.solver in ("Optimal", "Feasible")
    assert verify(bundle, plan) == []
    assert len(plan.placements) >= 55
