"""Spec sections 1, 2.2, 3.3 and 4 (2026-12-01): what runs today is never lost by accident.

``NoSchedule`` keeps running replicas, a scale-down is not a move, a change that does not fit
keeps the current placement; through ``engine.planner.place`` (every strategy) and the CLI.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from engine.build import build_problem
from engine.planner import place
from engine.solvers.dispatch import solve_problem
from engine.solvers.solution import Deadline
from engine.verification import verify
from tests.builders import bundle_of, cluster, objective, workload
from tests.test_cli import run, write_bundle

TAINT = {"key": "maintenance", "value": "true", "effect": "NoSchedule"}


def _tainted(effect: str, **spec: object) -> dict:
    return cluster("a", taints=[{**TAINT, "effect": effect}], price={"cpu": "0.01"}, **spec)


# --- 1. NoSchedule keeps running replicas ---------------------------------------------------


@pytest.mark.parametrize("max_moves", [None, 0, 3])
def test_noschedule_keeps_running_replicas(max_moves: int | None) -> None:
    docs = [_tainted("NoSchedule"), cluster("b", price={"cpu": "0.05"}), workload("web", 4)]
    current = {"default/web": {"a": 3, "b": 1}}
    plan = place(bundle_of(*docs), current=current, max_moves=max_moves)
    assert plan.status.solver in ("Optimal", "Feasible")
    assert plan.assignment() == {"default/web": {"a": 3, "b": 1}}
    assert plan.moves == [] and plan.status.objective.moves == 0
    assert verify(bundle_of(*docs), plan, current=current, max_moves=max_moves) == []


def test_noschedule_forbids_new_replicas_beyond_current() -> None:
    # a is cheapest, but under NoSchedule it may keep 2 and get none more
    docs = [_tainted("NoSchedule"), cluster("b", price={"cpu": "0.05"}), workload("web", 6)]
    current = {"default/web": {"a": 2, "b": 2}}
    plan = place(bundle_of(*docs), current=current)
    assert plan.assignment() == {"default/web": {"a": 2, "b": 4}}
    # the verifier refuses a plan that grows there
    bad = plan.model_copy(deep=True)
    bad.placements[0].clusters = {"a": 3, "b": 3}
    assert [v.code for v in verify(bundle_of(*docs), bad, current=current)] == ["Untolerated"]
    assert verify(bundle_of(*docs), bad, current=None)[0].code == "Untolerated"


def test_noexecute_evicts() -> None:
    docs = [_tainted("NoExecute"), cluster("b", price={"cpu": "0.05"}), workload("web", 4)]
    current = {"default/web": {"a": 3, "b": 1}}
    plan = place(bundle_of(*docs), current=current)
    assert plan.assignment() == {"default/web": {"b": 4}}
    bad = plan.model_copy(deep=True)
    bad.placements[0].clusters = {"a": 3, "b": 1}
    assert "Untolerated" in {v.code for v in verify(bundle_of(*docs), bad, current=current)}


def test_noschedule_kept_by_the_large_path() -> None:
    # the construction strategy (engine.solvers.construct) honours the same pair bound as the model
    docs = [_tainted("NoSchedule"), cluster("b", price={"cpu": "0.05"}), workload("web", 6)]
    current = {"default/web": {"a": 2, "b": 2}}
    problem = build_problem(bundle_of(*docs), current=current)
    from engine.solvers.large import solve_large

    sol = solve_large(problem, Deadline(2.0))
    got = {problem.cluster_names[c]: int(n) for c, n in zip(problem.pair_c, sol.y, strict=True) if n}
    assert got["a"] <= 2 and sum(got.values()) == 6


def test_noschedule_keeps_a_duplicated_copy() -> None:
    dup = {"replicaScheduling": {"replicaSchedulingType": "Duplicated"}}
    from tests.builders import policy

    docs = [_tainted("NoSchedule"), cluster("b"), cluster("c"), policy("dup", **dup),
            workload("agent", 1, policy="dup")]
    current = {"default/agent": {"a": 1, "b": 1, "c": 1}}
    plan = place(bundle_of(*docs), current=current)
    assert plan.assignment() == {"default/agent": {"a": 1, "b": 1, "c": 1}}
    # without it running there, a broadcast skips the tainted cluster
    plan = place(bundle_of(*docs))
    assert plan.assignment() == {"default/agent": {"b": 1, "c": 1}}


def test_cli_noschedule_taint_does_not_move_what_runs(tmp_path: Path) -> None:
    bundle = write_bundle(tmp_path, _tainted("NoSchedule"), cluster("b", price={"cpu": "0.05"}),
                          workload("web", 4))
    current = tmp_path / "current.json"
    current.write_text(json.dumps({"placements": [{"workload": "default/web", "clusters": {"a": 4}}]}))
    out = tmp_path / "plan.json"
    result = run("place", str(bundle), "--current", str(current), "--output", str(out), "--max-moves", "0")
    assert result.returncode == 0, result.stderr
    plan = json.loads(out.read_text())
    assert plan["placements"] == [{"workload": "default/web", "clusters": {"a": 4}}]
    assert plan["moves"] == []
    assert run("verify", str(bundle), str(out), "--current", str(current)).returncode == 0


# --- 2. a scale-down is not a move ------------------------------------------------------------


@pytest.mark.parametrize("max_moves", [0, None])
def test_scale_down_is_not_a_move(max_moves: int | None) -> None:
    docs = [cluster("a"), cluster("b"), workload("web", 2)]
    current = {"default/web": {"a": 2, "b": 2}}
    plan = place(bundle_of(*docs), current=current, max_moves=max_moves)
    assert plan.status.solver in ("Optimal", "Feasible")
    assert plan.status.objective.moves == 0
    assert sum(plan.assignment()["default/web"].values()) == 2
    assert verify(bundle_of(*docs), plan, current=current, max_moves=0) == []


def test_scale_down_then_move_counts_only_the_move() -> None:
    # 4 on a -> 2 wanted, a now only fits 1: one replica moves, the other two are removed
    docs = [cluster("a", capacity={"cpu": "1"}), cluster("b"), workload("web", 2)]
    current = {"default/web": {"a": 4}}
    plan = place(bundle_of(*docs), current=current, max_moves=1)
    assert plan.status.solver in ("Optimal", "Feasible")
    assert plan.assignment() == {"default/web": {"a": 1, "b": 1}}
    assert plan.status.objective.moves == 1
    assert place(bundle_of(*docs), current=current, max_moves=0).status.solver == "Infeasible"


def test_scale_down_of_a_duplicated_workload_is_not_a_move() -> None:
    from tests.builders import policy

    docs = [cluster("a"), cluster("b"), cluster("c"),
            policy("dup", replicaScheduling={"replicaSchedulingType": "Duplicated"}, clusters={"min": 1, "max": 2}),
            workload("agent", 2, policy="dup")]
    current = {"default/agent": {"a": 3, "b": 3}}
    plan = place(bundle_of(*docs), current=current, max_moves=0)
    assert plan.status.solver in ("Optimal", "Feasible")
    assert plan.assignment() == {"default/agent": {"a": 2, "b": 2}}
    assert plan.status.objective.moves == 0


def test_verifier_counts_moves_by_the_new_formula() -> None:
    docs = [cluster("a"), cluster("b"), workload("web", 2)]
    b = bundle_of(*docs)
    shrink = {"placements": [{"workload": "default/web", "clusters": {"a": 2}}], "unplaced": []}
    assert verify(b, shrink, current={"default/web": {"a": 2, "b": 2}}, max_moves=0) == []
    moved = {"placements": [{"workload": "default/web", "clusters": {"b": 2}}], "unplaced": []}
    assert [v.code for v in verify(b, moved, current={"default/web": {"a": 2}}, max_moves=1)] == ["MovesBudget"]
    gone = {"placements": [], "unplaced": [{"workload": "default/web", "reasons": []}]}
    assert [v.code for v in verify(b, gone, current={"default/web": {"a": 2}}, max_moves=1)] == ["MovesBudget"]


def test_cli_scale_down_with_max_moves_zero(tmp_path: Path) -> None:
    bundle = write_bundle(tmp_path, cluster("a"), cluster("b"), workload("web", 2), objective(maxMoves=0))
    current = tmp_path / "current.json"
    current.write_text(json.dumps({"placements": [{"workload": "default/web", "clusters": {"a": 2, "b": 2}}]}))
    out = tmp_path / "plan.json"
    result = run("place", str(bundle), "--current", str(current), "--output", str(out))
    assert result.returncode == 0, result.stderr
    plan = json.loads(out.read_text())
    assert plan["status"]["solver"] in ("Optimal", "Feasible")
    assert plan["status"]["objective"]["moves"] == 0
    assert sum(plan["placements"][0]["clusters"].values()) == 2


# --- 7. the evaluator with nothing eligible ---------------------------------------------------


def test_nothing_eligible_with_current_replicas_does_not_crash(tmp_path: Path) -> None:
    from tests.builders import policy

    docs = [cluster("a", labels={"tier": "cloud"}), policy("edge", clusterAffinity={"labelSelector": {
        "matchLabels": {"tier": "edge"}}}), workload("web", 2, policy="edge")]
    bundle = write_bundle(tmp_path, *docs)
    current = tmp_path / "current.json"
    current.write_text(json.dumps({"placements": [{"workload": "default/web", "clusters": {"a": 2}}]}))
    out = tmp_path / "plan.json"
    result = run("place", str(bundle), "--current", str(current), "--output", str(out))
    assert result.returncode == 0, result.stderr
    plan = json.loads(out.read_text())
    assert plan["placements"] == [] and plan["unplaced"][0]["workload"] == "default/web"
    assert plan["status"]["objective"]["moves"] == 2
    assert solve_problem(build_problem(bundle_of(*docs), current={"default/web": {"a": 2}})).y.size == 0


# --- 5. region, zone and provider given only as labels -----------------------------------------


def test_topology_given_only_as_labels_is_the_field(tmp_path: Path) -> None:
    from tests.builders import policy

    region = "topology.kubernetes.io/region"
    docs = [cluster("eu-1", labels={region: "eu"}), cluster("eu-2", labels={region: "eu"}),
            cluster("us-1", labels={region: "us"}), cluster("ap-1", region="ap"),
            policy("spread", fieldSelector=None, clusterAffinity={"fieldSelector": {"matchExpressions": [
                {"key": "region", "operator": "In", "values": ["eu", "us"]}]}},
                spreadConstraints=[{"spreadByField": "region", "minGroups": 2, "maxGroups": 2}]),
            workload("web", 4, policy="spread")]
    docs[4]["spec"].pop("fieldSelector")
    bundle = write_bundle(tmp_path, *docs)
    out = tmp_path / "plan.json"
    result = run("place", str(bundle), "--output", str(out))
    assert result.returncode == 0, result.stderr
    plan = json.loads(out.read_text())
    used = plan["placements"][0]["clusters"]
    assert "ap-1" not in used and "us-1" in used and sum(used.values()) == 4
    assert run("verify", str(bundle), str(out)).returncode == 0
    # the field is the label's value for every reader
    assert bundle_of(*docs).clusters[0].spec.region == "eu"


# --- 6. a workload whose plan fails verification is left unplaced, the rest is planned ----------


def _corrupting(monkeypatch: pytest.MonkeyPatch, victim: str) -> None:
    """Inject an engine bug: the solution gives ``victim`` one replica too many on its first cluster."""
    import engine.planner as planner

    real = planner.solve_problem

    def buggy(problem, **kwargs):  # type: ignore[no-untyped-def]
        sol = real(problem, **kwargs)
        w = problem.workload_keys.index(victim)
        sl = problem.pairs_of(w)
        first = sl.start + int(sol.y[sl].argmax())
        sol.y[first] += 1
        return sol

    monkeypatch.setattr(planner, "solve_problem", buggy)


def test_a_workload_failing_verification_is_left_unplaced(monkeypatch: pytest.MonkeyPatch) -> None:
    from tests.builders import policy

    docs = [cluster("a"), cluster("b"), workload("web", 2), workload("db", 2),
            policy("near-db", affinity={"workloads": ["db"]}), workload("cache", 1, policy="near-db")]
    _corrupting(monkeypatch, "default/db")
    plan = place(bundle_of(*docs))
    assert sorted(plan.assignment()) == ["default/web"]
    unplaced = {u.workload: u.reasons[0] for u in plan.unplaced}
    assert unplaced["default/db"].code == "InternalError"
    assert "AllOrNothing" in unplaced["default/db"].message
    assert unplaced["default/cache"].code == "InternalError" and "affinity" in unplaced["default/cache"].message
    assert any("failed verification" in w for w in plan.status.warnings)
    assert verify(bundle_of(*docs), plan) == []


def test_cli_says_so_on_stderr_and_exits_0(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    from typer.testing import CliRunner

    from adapters.cli.app import app

    bundle = write_bundle(tmp_path, cluster("a"), workload("web", 2), workload("db", 2))
    _corrupting(monkeypatch, "default/db")
    out = tmp_path / "plan.json"
    result = CliRunner().invoke(app, ["place", str(bundle), "--output", str(out)])
    assert result.exit_code == 0, result.output
    assert "InternalError" in result.stderr and "default/db" in result.stderr
    plan = json.loads(out.read_text())
    assert [p["workload"] for p in plan["placements"]] == ["default/web"]


# --- 3. a change that does not fit keeps what runs (spec 4) -----------------------------------


def test_scale_up_that_does_not_fit_keeps_the_running_replicas() -> None:
    docs = [cluster("a", capacity={"cpu": "3"}), cluster("b", capacity={"cpu": "3"}), workload("web", 8),
            workload("other", 1)]
    current = {"default/web": {"a": 2, "b": 2}}
    plan = place(bundle_of(*docs), current=current)
    assert plan.assignment()["default/web"] == {"a": 2, "b": 2}
    assert plan.moves == []
    [entry] = plan.not_applied
    assert (entry.workload, entry.kept_replicas, entry.wanted_replicas) == ("default/web", 4, 8)
    assert entry.reasons[0].code == "ChangeNotApplied"
    assert "InsufficientCapacity" in [r.code for r in entry.reasons[1:]]
    assert "default/web" not in [u.workload for u in plan.unplaced]
    # it counts as placed with its kept replicas, and the rest is planned around it
    assert plan.status.objective.placed_by_priority == {"0": 5}
    assert sum(plan.assignment()["default/other"].values()) == 1
    assert verify(bundle_of(*docs), plan, current=current) == []


def test_scale_up_with_max_moves_zero_is_not_a_wipe() -> None:
    docs = [cluster("a", capacity={"cpu": "3"}), cluster("b", capacity={"cpu": "3"}), workload("web", 8),
            workload("db", 2)]
    current = {"default/web": {"a": 2, "b": 2}, "default/db": {"a": 1, "b": 1}}
    plan = place(bundle_of(*docs), current=current, max_moves=0)
    assert plan.status.solver in ("Optimal", "Feasible")
    assert plan.assignment() == {"default/web": {"a": 2, "b": 2}, "default/db": {"a": 1, "b": 1}}
    assert [n.workload for n in plan.not_applied] == ["default/web"]
    assert verify(bundle_of(*docs), plan, current=current, max_moves=0) == []


def test_smaller_quota_keeps_what_still_fits_and_removes_what_does_not() -> None:
    from tests.builders import tenant

    docs = [cluster("a"), tenant("shop", quota={"cpu": "4"}), workload("web", 6, namespace="shop")]
    # scaled 4 -> 6 over a quota of 4: kept at 4
    plan = place(bundle_of(*docs), current={"shop/web": {"a": 4}})
    assert plan.assignment() == {"shop/web": {"a": 4}}
    assert plan.not_applied[0].reasons[0].code == "ChangeNotApplied"
    # the quota is now below what runs: the current replicas themselves no longer fit, removed
    docs[1] = tenant("shop", quota={"cpu": "3"})
    plan = place(bundle_of(*docs), current={"shop/web": {"a": 4}})
    assert plan.assignment() == {} and plan.not_applied == []
    assert plan.unplaced[0].workload == "shop/web"


def test_only_noexecute_or_a_gone_cluster_removes_running_replicas() -> None:
    docs = [_tainted("NoExecute", capacity={"cpu": "8"}), cluster("b", capacity={"cpu": "2"}), workload("web", 8)]
    plan = place(bundle_of(*docs), current={"default/web": {"a": 2, "b": 2}})
    assert plan.assignment() == {} and plan.not_applied == []
    docs = [cluster("b", capacity={"cpu": "2"}), workload("web", 8)]
    plan = place(bundle_of(*docs), current={"default/web": {"gone": 2, "b": 2}})
    assert plan.assignment() == {} and plan.not_applied == []
    # a NoSchedule taint keeps them
    docs = [_tainted("NoSchedule", capacity={"cpu": "8"}), cluster("b", capacity={"cpu": "2"}), workload("web", 8)]
    plan = place(bundle_of(*docs), current={"default/web": {"a": 2, "b": 2}})
    assert plan.assignment() == {"default/web": {"a": 2, "b": 2}}


def test_priority_still_preempts_a_running_workload() -> None:
    docs = [cluster("a", capacity={"cpu": "4"}), workload("vip", 4, priority=10), workload("bulk", 6)]
    plan = place(bundle_of(*docs), current={"default/bulk": {"a": 4}})
    assert plan.assignment() == {"default/vip": {"a": 4}} and plan.not_applied == []


def test_verifier_checks_a_kept_workload_at_its_kept_replicas() -> None:
    docs = [cluster("a", capacity={"cpu": "3"}), cluster("b", capacity={"cpu": "3"}), workload("web", 8)]
    b = bundle_of(*docs)
    current = {"default/web": {"a": 2, "b": 2}}
    kept = {"placements": [{"workload": "default/web", "clusters": {"a": 2, "b": 2}}], "unplaced": [],
            "notApplied": [{"workload": "default/web", "reasons": [], "keptReplicas": 4, "wantedReplicas": 8}]}
    assert verify(b, kept, current=current) == []
    # without notApplied the same placement breaks all-or-nothing
    assert [v.code for v in verify(b, {**kept, "notApplied": []}, current=current)] == ["AllOrNothing"]
    # a kept workload stays where it runs
    moved = {**kept, "placements": [{"workload": "default/web", "clusters": {"a": 1, "b": 3}}]}
    assert [v.code for v in verify(b, moved, current=current)] == ["NotApplied"]


def test_cli_shows_and_verifies_not_applied(tmp_path: Path) -> None:
    bundle = write_bundle(tmp_path, cluster("a", capacity={"cpu": "3"}), cluster("b", capacity={"cpu": "3"}),
                          workload("web", 8))
    current = tmp_path / "current.json"
    current.write_text(json.dumps({"placements": [{"workload": "default/web", "clusters": {"a": 2, "b": 2}}]}))
    out = tmp_path / "plan.json"
    result = run("place", str(bundle), "--current", str(current), "--output", str(out), "--max-moves", "0")
    assert result.returncode == 0, result.stderr
    assert "Not applied" in result.stdout and "ChangeNotApplied" in result.stdout
    plan = json.loads(out.read_text())
    assert plan["placements"] == [{"workload": "default/web", "clusters": {"a": 2, "b": 2}}]
    assert plan["notApplied"][0]["keptReplicas"] == 4 and plan["notApplied"][0]["wantedReplicas"] == 8
    assert run("verify", str(bundle), str(out), "--current", str(current)).returncode == 0


# --- 4. Duplicated with spread maxGroups: every eligible cluster of the groups chosen ---------


def _dup_by_region(max_groups: int = 1) -> list[dict]:
    from tests.builders import policy

    return [cluster("eu-1", region="eu"), cluster("eu-2", region="eu"), cluster("us-1", region="us"),
            policy("dup", replicaScheduling={"replicaSchedulingType": "Duplicated"},
                   spreadConstraints=[{"spreadByField": "region", "minGroups": 1, "maxGroups": max_groups}]),
            workload("agent", 1, policy="dup")]


def test_duplicated_with_max_groups_copies_to_every_cluster_of_the_chosen_groups() -> None:
    docs = _dup_by_region()
    plan = place(bundle_of(*docs))
    # one region, every eligible cluster of it: eu has the most copies to place
    assert plan.assignment() == {"default/agent": {"eu-1": 1, "eu-2": 1}}
    assert verify(bundle_of(*docs), plan) == []
    half = {"placements": [{"workload": "default/agent", "clusters": {"eu-1": 1}}], "unplaced": []}
    assert [v.code for v in verify(bundle_of(*docs), half)] == ["Broadcast"]
    us = {"placements": [{"workload": "default/agent", "clusters": {"us-1": 1}}], "unplaced": []}
    assert verify(bundle_of(*docs), us) == []


def test_duplicated_with_max_groups_by_the_large_path() -> None:
    from engine.solvers.large import solve_large

    docs = _dup_by_region()
    problem = build_problem(bundle_of(*docs))
    sol = solve_large(problem, Deadline(2.0))
    got = {problem.cluster_names[c]: int(n) for c, n in zip(problem.pair_c, sol.y, strict=True) if n}
    assert got == {"eu-1": 1, "eu-2": 1}


def test_cli_large_fleet_with_a_duplicated_max_groups_workload(tmp_path: Path) -> None:
    from tests.builders import policy

    # 150 clusters x 140 workloads = 21,000 pairs: above engine.solvers.exact.LARGE_PAIRS
    clusters = [cluster(f"c{i}", region=f"r{i % 3}", capacity={"cpu": "64"}) for i in range(150)]
    docs = [*clusters, policy("dup", replicaScheduling={"replicaSchedulingType": "Duplicated"},
                              spreadConstraints=[{"spreadByField": "region", "maxGroups": 1}]),
            workload("agent", 1, cpu="100m", policy="dup"),
            *(workload(f"w{i}", 2, cpu="100m") for i in range(139))]
    bundle = write_bundle(tmp_path, *docs)
    out = tmp_path / "plan.json"
    result = run("place", str(bundle), "--output", str(out), "--time-limit", "5")
    assert result.returncode == 0, result.stderr
    plan = json.loads(out.read_text())
    agent = next(p for p in plan["placements"] if p["workload"] == "default/agent")["clusters"]
    assert len(agent) == 50 and len({int(c[1:]) % 3 for c in agent}) == 1
    assert plan["unplaced"] == []
