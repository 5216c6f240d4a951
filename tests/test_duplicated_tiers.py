"""Spec 2.6 (2026-12-01): Duplicated with ``clusterAffinities`` puts a copy on every eligible cluster
of ONE tier, the first that can take all copies; a later tier is used only when no earlier one can
(as Karmada). Through ``engine.planner.place``, the large-fleet path, the verifier and the CLI.
"""

from __future__ import annotations

import json
from pathlib import Path

from engine.build import build_problem
from engine.planner import place
from engine.solvers.large import solve_large
from engine.solvers.solution import Deadline
from engine.verification import verify
from tests.builders import bundle_of, cluster, policy, workload
from tests.test_cli import run, write_bundle

EDGE, CLOUD = {"site": "edge"}, {"site": "cloud"}


def _docs(edge_2: str = "4", cloud_2: str = "4") -> list[dict]:
    """Two tiers of two clusters each; ``edge_2`` / ``cloud_2``: cpu of the second cluster of each."""
    return [cluster("e1", labels=EDGE, capacity={"cpu": "4"}), cluster("e2", labels=EDGE, capacity={"cpu": edge_2}),
            cluster("c1", labels=CLOUD, capacity={"cpu": "4"}), cluster("c2", labels=CLOUD, capacity={"cpu": cloud_2}),
            policy("tiers", replicaScheduling={"replicaSchedulingType": "Duplicated"},
                   clusterAffinities=[{"affinityName": "edge", "labelSelector": {"matchLabels": EDGE}},
                                      {"affinityName": "cloud", "labelSelector": {"matchLabels": CLOUD}}]),
            workload("agent", 2, cpu="1", policy="tiers")]


def _plan(workload_clusters: dict[str, int]) -> dict:
    return {"placements": [{"workload": "default/agent", "clusters": workload_clusters}], "unplaced": []}


def test_copies_only_on_the_first_tier_when_it_takes_them_all() -> None:
    docs = _docs()
    plan = place(bundle_of(*docs))
    assert plan.assignment() == {"default/agent": {"e1": 2, "e2": 2}}
    assert verify(bundle_of(*docs), plan) == []


def test_a_later_tier_takes_every_copy_when_the_first_cannot() -> None:
    docs = _docs(edge_2="1")  # e2 has no room for a copy of 2 x 1 cpu
    plan = place(bundle_of(*docs))
    assert plan.assignment() == {"default/agent": {"c1": 2, "c2": 2}}
    assert verify(bundle_of(*docs), plan) == []


def test_no_tier_takes_every_copy_unplaced_naming_the_tiers() -> None:
    docs = _docs(edge_2="1", cloud_2="1")
    plan = place(bundle_of(*docs))
    assert plan.assignment() == {}
    (unplaced,) = plan.unplaced
    reason = unplaced.reasons[0]
    assert reason.code == "InsufficientCapacity"
    assert "one tier" in reason.message and "edge: 1 of 2" in reason.message and "cloud: 1 of 2" in reason.message
    assert sorted(reason.clusters) == ["c2", "e2"]


def test_the_verifier_rejects_copies_across_tiers() -> None:
    bundle = bundle_of(*_docs())
    every = verify(bundle, _plan({"e1": 2, "e2": 2, "c1": 2, "c2": 2}))
    assert [v.code for v in every] == ["Broadcast"] and "edge, cloud" in every[0].message
    assert [v.code for v in verify(bundle, _plan({"e1": 2, "c1": 2}))] == ["Broadcast", "Broadcast"]
    # c2 of the tier missing, and the edge tier could take every copy
    assert [v.code for v in verify(bundle, _plan({"c1": 2}))] == ["Broadcast", "Broadcast"]
    # one whole tier, but a later one while the first can take every copy (spec 2.6)
    assert [v.code for v in verify(bundle, _plan({"c1": 2, "c2": 2}))] == ["Broadcast"]
    assert verify(bundle, _plan({"e1": 2, "e2": 2})) == []


def test_the_large_path_tries_tiers_in_order() -> None:
    for edge_2, expected in (("4", {"e1": 2, "e2": 2}), ("1", {"c1": 2, "c2": 2})):
        problem = build_problem(bundle_of(*_docs(edge_2=edge_2)))
        sol = solve_large(problem, Deadline(2.0))
        got = {problem.cluster_names[c]: int(n) for c, n in zip(problem.pair_c, sol.y, strict=True) if n}
        assert got == expected


def test_cli_places_and_verifies_one_tier(tmp_path: Path) -> None:
    bundle = write_bundle(tmp_path, *_docs(edge_2="1"))
    out = tmp_path / "plan.json"
    result = run("place", str(bundle), "--output", str(out))
    assert result.returncode == 0, result.stderr
    assert json.loads(out.read_text())["placements"] == [{"workload": "default/agent", "clusters": {"c1": 2, "c2": 2}}]
    assert run("verify", str(bundle), str(out)).returncode == 0


def test_a_bigger_later_tier_is_not_taken_while_the_first_can_take_every_copy() -> None:
    """Counting each copy, three cloud copies would beat two edge copies at the priority level;
    spec 2.6 still puts them on the first tier, because it can take them all."""
    docs = [*_docs(), cluster("c3", labels=CLOUD, capacity={"cpu": "4"})]
    plan = place(bundle_of(*docs))
    assert plan.assignment() == {"default/agent": {"e1": 2, "e2": 2}}
    assert verify(bundle_of(*docs), plan) == []


def test_a_later_tier_when_another_workload_fills_the_first() -> None:
    """The first tier cannot take every copy once a higher-priority workload fills one of its clusters."""
    docs = [*_docs(), cluster("c3", labels=CLOUD, capacity={"cpu": "4"}),
            policy("only-e2", clusterAffinity={"clusterNames": ["e2"]}),
            workload("big", 1, cpu="3", policy="only-e2", priority=100)]
    plan = place(bundle_of(*docs))
    assert plan.assignment() == {"default/big": {"e2": 1}, "default/agent": {"c1": 2, "c2": 2, "c3": 2}}
    assert verify(bundle_of(*docs), plan) == []


def test_the_verifier_rejects_a_later_tier_while_the_first_can_take_every_copy() -> None:
    docs = [*_docs(), cluster("c3", labels=CLOUD, capacity={"cpu": "4"})]
    violations = verify(bundle_of(*docs), _plan({"c1": 2, "c2": 2, "c3": 2}))
    assert [v.code for v in violations] == ["Broadcast"]
    assert "earlier tier edge" in violations[0].message
    # with e2 full, the cloud tier is right
    full = [*_docs(edge_2="1"), cluster("c3", labels=CLOUD, capacity={"cpu": "4"})]
    assert verify(bundle_of(*full), _plan({"c1": 2, "c2": 2, "c3": 2})) == []
