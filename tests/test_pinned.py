"""``maxMoves: 0`` solved as pinned placement + the new workloads alone (engine.solvers.pinned).

The shortcut must give the same plan quality as solving the whole problem: the
same replicas at every priority, the same tiers and the same weighted cost (both
proved optimal on these small fleets), and every plan must verify.
"""

from __future__ import annotations

import numpy as np
import pytest

from benchmarks.generate import Instance
from engine.build import build_problem
from engine.documents.fields import API_VERSION as API
from engine.documents.load import load_documents
from engine.objective import evaluate
from engine.planner import place
from engine.solvers.dispatch import solve_problem
from engine.solvers.pinned import pinned_placement, solve_pinned
from engine.solvers.solution import Deadline


def _assignment(problem, y, keep) -> dict[str, dict[str, int]]:  # type: ignore[no-untyped-def]
    out: dict[str, dict[str, int]] = {}
    for j in np.nonzero(y)[0].tolist():
        w = int(problem.pair_w[j])
        if keep[w]:
            out.setdefault(problem.workload_keys[w], {})[problem.cluster_names[int(problem.pair_c[j])]] = int(y[j])
    return out


def _committed(bundle, share: float, seed: int):  # type: ignore[no-untyped-def]
    """A current placement: part of an optimal plan, closed under affinity (followers' partners kept)."""
    p = build_problem(bundle)
    y = solve_problem(p, time_limit=10).y
    placed = np.bincount(p.pair_w, weights=y, minlength=p.num_workloads) > 0
    rng = np.random.default_rng(seed)
    keep = placed & (rng.random(p.num_workloads) < share)
    changed = True
    while changed:  # a kept follower needs its partner kept
        changed = False
        for a, b in zip(p.affinity_from.tolist(), p.affinity_to.tolist(), strict=True):
            if keep[a] and not keep[b]:
                keep[a] = False
                changed = True
    return _assignment(p, y, keep)


@pytest.mark.parametrize("seed", [1, 2, 3, 4])
def test_same_optimum_as_the_whole_problem(seed: int, monkeypatch: pytest.MonkeyPatch) -> None:
    kind = "edge" if seed % 2 else "cloud"
    bundle = load_documents(Instance("pin", kind, 40, 10, 0.9, seed=seed).documents())
    current = _committed(bundle, 0.7, seed)
    problem = build_problem(bundle, current=current, max_moves=0)
    assert pinned_placement(problem) is not None
    fast = solve_pinned(problem, Deadline(20), solve=solve_problem)
    assert fast is not None
    monkeypatch.setattr("engine.solvers.dispatch.solve_pinned", lambda *a, **k: None)  # the whole-problem solve
    whole = solve_problem(problem, time_limit=20)
    assert fast.status == whole.status == "Optimal"
    a, b = evaluate(problem, fast.y), evaluate(problem, whole.y)
    assert a.placed_by_priority == b.placed_by_priority
    assert a.tier == b.tier
    assert a.moves == b.moves == 0
    assert a.weighted == pytest.approx(b.weighted, abs=1e-6)
    # the levels describe the whole problem, pinned replicas included
    by_name = {lv.name: lv for lv in fast.levels}
    for k, v in a.placed_by_priority.items():
        assert by_name[f"priority:{k}"].value == v
    assert by_name["weighted"].value == pytest.approx(a.weighted, abs=1e-4)  # model units are 1e-6


def test_plan_through_place_verifies_and_keeps_every_pinned_replica() -> None:
    bundle = load_documents(Instance("pin", "edge", 60, 12, 0.9, seed=7).documents())
    current = _committed(bundle, 0.8, 7)
    plan = place(bundle, current=current, max_moves=0, time_limit=10)  # verified inside
    got = plan.assignment()
    for key, spread in current.items():
        assert got[key] == spread
    assert plan.moves == []
    assert plan.status.gap is not None and plan.status.gap <= 1e-6


def test_new_follower_stays_on_its_pinned_partners_clusters() -> None:
    docs = [
        {"kind": "Cluster", "metadata": {"name": n}, "spec": {"capacity": {"cpu": "8", "memory": "16Gi"},
                                                            "price": {"cpu": p}}}
        for n, p in (("a", "1.0"), ("b", "2.0"), ("c", "0.1"))
    ] + [
        {"kind": "PlacementPolicy", "metadata": {"name": "near-db", "namespace": "shop"},
         "spec": {"affinity": {"workloads": ["db"]}, "antiAffinity": {"workloads": ["noisy"]}}},
        {"kind": "Workload", "metadata": {"name": "db", "namespace": "shop"},
         "spec": {"replicas": 2, "resources": {"cpu": "1"}}},
        {"kind": "Workload", "metadata": {"name": "noisy", "namespace": "shop"},
         "spec": {"replicas": 1, "resources": {"cpu": "1"}}},
        {"kind": "Workload", "metadata": {"name": "api", "namespace": "shop"},
         "spec": {"replicas": 2, "resources": {"cpu": "1"}, "policy": "near-db"}},
    ]
    bundle = load_documents([{"apiVersion": API, **d} for d in docs])
    # db runs on a and b; noisy on a: api must follow db and avoid noisy, so b only (c is cheapest)
    current = {"shop/db": {"a": 1, "b": 1}, "shop/noisy": {"a": 1}}
    problem = build_problem(bundle, current=current, max_moves=0)
    solution = solve_pinned(problem, Deadline(5), solve=solve_problem)
    assert solution is not None
    plan = place(bundle, current=current, max_moves=0, time_limit=5)
    assert plan.assignment()["shop/api"] == {"b": 2}


@pytest.mark.parametrize("change", ["replicas raised", "over capacity", "moves allowed"])
def test_falls_back_when_the_shortcut_is_not_exact(change: str) -> None:
    docs = [
        {"kind": "Cluster", "metadata": {"name": "a"}, "spec": {"capacity": {"cpu": "4"}}},
        {"kind": "Cluster", "metadata": {"name": "b"}, "spec": {"capacity": {"cpu": "4"}}},
        {"kind": "Workload", "metadata": {"name": "web", "namespace": "shop"},
         "spec": {"replicas": 3 if change == "replicas raised" else 2,
                  "resources": {"cpu": "3" if change == "over capacity" else "1"}}},
    ]
    problem = build_problem(load_documents([{"apiVersion": API, **d} for d in docs]), current={"shop/web": {"a": 2}},
                            max_moves=None if change == "moves allowed" else 0)
    assert pinned_placement(problem) is None
    assert solve_pinned(problem, Deadline(5), solve=solve_problem) is None


def test_frozen_keeps_a_duplicated_workload_below_its_most_copies_as_it_is() -> None:
    # "cache" is Duplicated to 1..2 clusters and runs on one; with moves budget 0 alone, section 3
    # adds a copy (more replicas at its priority, and nothing moves); the service freezes what it
    # has committed, so there it stays on one cluster and only the new workload is placed
    docs = [
        {"kind": "Cluster", "metadata": {"name": n}, "spec": {"capacity": {"cpu": "4"}}} for n in ("a", "b")
    ] + [
        {"kind": "PlacementPolicy", "metadata": {"name": "copies", "namespace": "shop"},
         "spec": {"replicaScheduling": {"replicaSchedulingType": "Duplicated"}, "clusters": {"min": 1, "max": 2}}},
        {"kind": "Workload", "metadata": {"name": "cache", "namespace": "shop"},
         "spec": {"replicas": 1, "resources": {"cpu": "1"}, "policy": "copies"}},
        {"kind": "Workload", "metadata": {"name": "web", "namespace": "shop"},
         "spec": {"replicas": 2, "resources": {"cpu": "1"}}},
    ]
    bundle = load_documents([{"apiVersion": API, **d} for d in docs])
    current = {"shop/cache": {"a": 1}}
    problem = build_problem(bundle, current=current, max_moves=0)
    assert pinned_placement(problem) is None  # it could still grow: not a constant
    assert pinned_placement(problem, frozen=True) is not None
    grown = place(bundle, current=current, max_moves=0, time_limit=5)
    assert grown.assignment()["shop/cache"] == {"a": 1, "b": 1}
    frozen = place(bundle, current=current, max_moves=0, time_limit=5, freeze_current=True)  # verified inside
    assert frozen.assignment()["shop/cache"] == {"a": 1}
    assert sum(frozen.assignment()["shop/web"].values()) == 2
