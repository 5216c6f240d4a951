"""Explanation messages carry the numbers as the bundle wrote them (issue 13)."""

from __future__ import annotations

from typing import Any

from engine.documents.load import load_documents
from engine.planner import place

API = "placement.berth.dev/v1alpha1"


def _cluster(name: str, zone: str, cpu: str = "16") -> dict[str, Any]:
    return {"apiVersion": API, "kind": "Cluster", "metadata": {"name": name},
            "spec": {"zone": zone, "capacity": {"cpu": cpu, "memory": "64Gi"}}}


def _reasons(docs: list[dict[str, Any]]) -> list[tuple[str, str]]:
    plan = place(load_documents(docs), time_limit=5)
    return [(r.code, r.message) for u in plan.unplaced for r in u.reasons]


def test_quota_is_shown_as_written_not_rounded_to_the_requests_divisor() -> None:
    # requests of 2 cores make the solver unit 2 cores; the quota of 5 cores must not read as 4
    docs = [_cluster("c1", "a"),
            {"apiVersion": API, "kind": "Tenant", "metadata": {"name": "shop"}, "spec": {"quota": {"cpu": "5"}}},
            {"apiVersion": API, "kind": "Workload", "metadata": {"name": "web", "namespace": "shop"},
             "spec": {"replicas": 3, "resources": {"cpu": "2"}}}]
    [(code, message)] = _reasons(docs)
    assert code == "QuotaExceeded"
    assert "cpu quota of 5;" in message and "needs 6" in message


def test_spread_with_fewer_replicas_than_groups_says_so() -> None:
    docs = [_cluster("c1", "a"), _cluster("c2", "b"), _cluster("c3", "c"),
            {"apiVersion": API, "kind": "PlacementPolicy", "metadata": {"name": "p"},
             "spec": {"spreadConstraints": [{"spreadByField": "zone", "minGroups": 3}]}},
            {"apiVersion": API, "kind": "Workload", "metadata": {"name": "web"},
             "spec": {"replicas": 2, "policy": "p", "resources": {"cpu": "1"}}}]
    [(code, message)] = _reasons(docs)
    assert code == "SpreadUnsatisfiable"
    assert "needs 3 group(s) but the workload has only 2 replica(s)" in message


def _workload(name: str, replicas: int, cpu: str) -> dict[str, Any]:
    return {"apiVersion": API, "kind": "Workload", "metadata": {"name": name},
            "spec": {"replicas": replicas, "resources": {"cpu": cpu}}}


def test_infeasible_counts_the_replicas_that_must_leave() -> None:
    # w0 ran on c1, which left the fleet: with maxMoves 0 no plan exists, and 2 replicas must move
    docs = [_cluster("c2", "a"), _workload("w0", 2, "1")]
    plan = place(load_documents(docs), current={"default/w0": {"c1": 2}}, max_moves=0, time_limit=5)
    assert plan.status.solver == "Infeasible"
    [reason] = plan.unplaced[0].reasons
    assert reason.code == "MovesBudget"
    assert "at least 2 replica(s) must leave" in reason.message and "maxMoves 0" in reason.message


def test_moves_budget_is_the_reason_when_the_spent_budget_blocks() -> None:
    # e must leave the departed c0 (1 move: the whole budget) and fills c2; b fits only if a moves aside
    docs = [_cluster("c1", "a", cpu="2"), _cluster("c2", "b", cpu="2"),
            _workload("a", 2, "1"), _workload("d", 1, "1"), _workload("e", 1, "1"), _workload("b", 1, "2")]
    current = {"default/a": {"c1": 2}, "default/d": {"c2": 1}, "default/e": {"c0": 1}}
    plan = place(load_documents(docs), current=current, max_moves=1, time_limit=5)
    assert plan.status.solver != "Infeasible"
    assert [u.workload for u in plan.unplaced] == ["default/b"]
    [reason] = plan.unplaced[0].reasons
    assert reason.code == "MovesBudget", reason
    assert "maxMoves 1" in reason.message


def test_infeasible_counts_replicas_evicted_by_a_noexecute_taint() -> None:
    # c1 stays in the fleet but now evicts w0 (NoExecute): its 2 replicas must leave, not "0"
    tainted = _cluster("c1", "a")
    tainted["spec"]["taints"] = [{"key": "maintenance", "value": "true", "effect": "NoExecute"}]
    docs = [tainted, _cluster("c2", "b"), _workload("w0", 2, "1")]
    plan = place(load_documents(docs), current={"default/w0": {"c1": 2}}, max_moves=0, time_limit=5)
    assert plan.status.solver == "Infeasible"
    [reason] = plan.unplaced[0].reasons
    assert "at least 2 replica(s) must leave" in reason.message
