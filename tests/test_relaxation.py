"""The LP relaxation without a matrix over every pair (engine.solvers.relaxation).

Column generation asks two things of the matrix: its columns over a few pairs, and ``A^T duals``
over all of them. Both are made by gathers; here they are checked against what the rows mean
(replicas per workload, capacity used per cluster, quota used per tenant, the moves rows, the level
rows), computed from the plan by :func:`engine.problem.usage` and plain sums, and against each other.
"""

from __future__ import annotations

import numpy as np
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from engine.build import build_problem
from engine.documents.bundle import Bundle
from engine.problem import UNLIMITED, usage
from engine.solvers.relaxation import Relaxation
from tests.test_property import fleets


def _current(data: st.DataObject, bundle: Bundle) -> dict[str, dict[str, int]]:
    """What runs today: a few replicas of some workloads on any clusters (eligible or not)."""
    bare = build_problem(bundle)
    current: dict[str, dict[str, int]] = {}
    for key in bare.workload_keys:
        if data.draw(st.booleans()):
            on = data.draw(st.lists(st.sampled_from(bare.cluster_names), max_size=2, unique=True))
            current[key] = {c: data.draw(st.integers(1, 3)) for c in on}
    return current


def _random_y(problem, seed: int) -> np.ndarray:  # type: ignore[no-untyped-def]
    rng = np.random.default_rng(seed)
    return rng.integers(0, np.maximum(problem.pair_ub, 0) + 1).astype(float)


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(data=st.data(), bundle=fleets(), seed=st.integers(0, 1000))
def test_the_columns_are_what_the_rows_mean(data: st.DataObject, bundle: Bundle, seed: int) -> None:
    current = _current(data, bundle)
    problem = build_problem(bundle, current=current)
    p = problem
    relax = Relaxation(p)
    values = sorted(set(p.priority.tolist()))
    level = np.searchsorted(values, p.priority[p.pair_w])
    relax.fix_levels(level, np.zeros(len(values)), 0.0 if (p.pair_tier > 0).any() else None)
    y = _random_y(p, seed)
    moved = relax.cur_n  # any value: the moves columns
    x = np.concatenate([y, moved])
    rows = relax.columns(np.arange(relax.n_cols)) @ x
    n_w, n_c, n_t, n_r = p.num_workloads, p.num_clusters, len(p.tenant_names), len(p.resource_names)
    assert np.allclose(rows[:n_w], np.bincount(p.pair_w, weights=y, minlength=n_w))
    used = usage(p, y.astype(np.int64))
    at = n_w
    for r in range(n_r):
        expect = np.where(p.capacity[:, r] != UNLIMITED, used[:, r], 0)
        assert np.allclose(rows[at: at + n_c], expect)
        at += n_c
    for r in range(n_r):
        per_tenant = np.zeros(n_t)
        t = p.tenant[p.pair_w]
        np.add.at(per_tenant, t[t >= 0], (y * p.request[p.pair_w, r])[t >= 0])
        limited = p.quota[:, r] != UNLIMITED if n_t else np.zeros(0, dtype=bool)
        assert np.allclose(rows[at: at + n_t], np.where(limited, per_tenant, 0))
        at += n_t
    n_m = len(relax.cur_pair)
    assert np.allclose(rows[at: at + n_m], moved + y[relax.cur_pair])
    at += n_m
    assert np.allclose(rows[at: at + len(values)], np.bincount(level, weights=y, minlength=len(values)))
    at += len(values)
    if (p.pair_tier > 0).any():
        assert np.isclose(rows[at], float((y * p.pair_tier).sum()))
        at += 1
    assert at == relax.n_rows


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(data=st.data(), bundle=fleets(), seed=st.integers(0, 1000))
def test_pricing_is_the_transpose_of_the_columns(data: st.DataObject, bundle: Bundle, seed: int) -> None:
    current = _current(data, bundle)
    problem = build_problem(bundle, current=current)
    relax = Relaxation(problem)
    if seed % 2:
        values = sorted(set(problem.priority.tolist()))
        relax.fix_levels(np.searchsorted(values, problem.priority[problem.pair_w]), np.ones(len(values)), 1.0)
    duals = np.random.default_rng(seed).normal(size=relax.n_rows)
    whole = relax.columns(np.arange(relax.n_cols))
    assert np.allclose(relax.price(duals), whole.T @ duals)
    some = np.sort(np.random.default_rng(seed + 1).choice(relax.n_cols, size=relax.n_cols // 2, replace=False))
    assert np.allclose(relax.columns(some).toarray(), whole[:, some].toarray())


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(bundle=fleets(max_workloads=6), seed=st.integers(0, 1000))
def test_the_cheapest_replicas_are_the_lp_minimum(bundle: Bundle, seed: int) -> None:
    """The bound without capacity rows (``_cheapest_replicas``, a greedy over each workload's cheapest
    units) against the same LP solved by HiGHS: equal minima, or both without a solution."""
    from scipy.optimize import linprog

    from engine.objective import most_copies
    from engine.solvers.bound import _cheapest_replicas

    p = build_problem(bundle)
    rng = np.random.default_rng(seed)
    cost = rng.normal(size=p.num_pairs).round(2)
    ub = p.pair_ub.astype(float)
    w_cap = (p.replicas * most_copies(p)).astype(float)
    values = sorted(set(p.priority.tolist()))
    level = np.searchsorted(values, p.priority)
    reachable = np.bincount(level[p.pair_w], weights=np.minimum(ub, w_cap[p.pair_w]), minlength=len(values))
    counts = np.floor(reachable * rng.uniform(0.0, 1.3, size=len(values)))
    ours = _cheapest_replicas(p, cost, ub, w_cap, level, counts)
    if p.num_pairs == 0:
        assert ours is None if counts.any() else ours == 0.0
        return
    a_ub = np.zeros((p.num_workloads, p.num_pairs))
    a_ub[p.pair_w, np.arange(p.num_pairs)] = 1.0
    a_eq = np.zeros((len(values), p.num_pairs))
    a_eq[level[p.pair_w], np.arange(p.num_pairs)] = 1.0
    res = linprog(cost, A_ub=a_ub, b_ub=w_cap, A_eq=a_eq, b_eq=counts, bounds=np.stack([np.zeros_like(ub), ub], 1),
                  method="highs")
    if res.status == 2:
        assert ours is None
    else:
        assert res.status == 0 and ours is not None
        assert abs(ours - res.fun) <= 1e-6 * max(1.0, abs(res.fun))
