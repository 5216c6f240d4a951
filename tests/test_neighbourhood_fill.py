"""The neighbourhoods' exact shortcut for one cluster-count workload (engine.solvers.neighbourhood):
wherever it answers, its placement is valid and as cheap as CP-SAT's proved optimum of the same
problem; where it cannot be sure it answers ``None`` and CP-SAT decides."""

from __future__ import annotations

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from engine import build_problem, evaluate
from engine.problem import restrict
from engine.solvers.exact import solve_exact
from engine.solvers.incremental import fill_counted
from engine.solvers.solution import Deadline
from tests.builders import bundle_of, cluster, policy, workload


@st.composite
def counted(draw: st.DrawFn) -> tuple[list[dict], int, int]:
    n = draw(st.integers(1, 7))
    docs = [cluster(f"c{i}", capacity={"cpu": str(draw(st.integers(0, 6)))},
                    price={"cpu": f"{draw(st.integers(1, 9)) / 100:.2f}"}) for i in range(n)]
    least = draw(st.integers(1, 3))
    most = draw(st.integers(least, 5))
    per = draw(st.integers(1, 4))
    replicas = draw(st.integers(1, 10))
    docs.append(policy("p", clusters={"min": least, "max": most}, replicaScheduling={"maxPerCluster": per}))
    docs.append(workload("w", replicas, cpu="1", policy="p"))
    return docs, least, most


@settings(max_examples=150, deadline=None)
@given(counted())
def test_the_fill_is_valid_and_as_cheap_as_cp_sat(case: tuple[list[dict], int, int]) -> None:
    docs, least, most = case
    p = build_problem(bundle_of(*docs))
    # as a neighbourhood sees it: the pairs' bounds capped by the room left (here the whole capacity)
    sub = restrict(p, np.ones(1, dtype=bool), capacity=p.capacity)
    filled = fill_counted(sub)
    y = None if filled is None else filled.y
    best = solve_exact(sub, Deadline(20), workers=1)
    assert best.status == "Optimal"
    if y is None:
        return
    used = int((y > 0).sum())
    assert int(y.sum()) == int(sub.replicas[0]) and least <= used <= most
    assert (y <= sub.pair_ub).all() and (y >= 0).all()
    assert int(best.y.sum()) == int(sub.replicas[0])  # CP-SAT places it too
    assert evaluate(sub, y).weighted <= evaluate(sub, best.y).weighted + 1e-6


def test_fewer_clusters_than_the_minimum_start_from_one_replica_each() -> None:
    """3 replicas, at most 3 a cluster, at least 2 clusters: the plain fill would put all 3 on the
    cheapest cluster; the shortcut puts 2 there and 1 on the next cheapest."""
    docs = [cluster("a", capacity={"cpu": "8"}, price={"cpu": "0.01"}),
            cluster("b", capacity={"cpu": "8"}, price={"cpu": "0.02"}),
            cluster("c", capacity={"cpu": "8"}, price={"cpu": "0.03"}),
            policy("p", clusters={"min": 2, "max": 4}, replicaScheduling={"maxPerCluster": 3}),
            workload("w", 3, cpu="1", policy="p")]
    p = build_problem(bundle_of(*docs))
    filled = fill_counted(restrict(p, np.ones(1, dtype=bool), capacity=p.capacity))
    y = None if filled is None else filled.y
    assert y is not None
    assert dict(zip([p.cluster_names[c] for c in p.pair_c], y.tolist(), strict=True)) == {"a": 2, "b": 1, "c": 0}
