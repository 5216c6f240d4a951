"""Explanation messages carry the numbers as the bundle wrote them (issue 13)."""

from __future__ import annotations

from typing import Any

from engine.bundle import load_documents
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
