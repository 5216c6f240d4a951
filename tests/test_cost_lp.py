"""The cost LP of a fixed placement (engine.solvers.cost_lp: warm column generation in one HiGHS
model) against the same LP written out whole and solved by scipy's ``linprog``, independently: the
same minimum (converged), and a layout that keeps every row."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from engine.build import build_problem
from engine.documents.bundle import Bundle
from engine.objective import pair_weights, placed_workloads
from engine.problem import UNLIMITED, usage
from engine.solvers.cost_lp import column_generation
from engine.solvers.dispatch import solve_problem
from engine.solvers.solution import Deadline
from tests.test_property import fleets


def _linprog_minimum(p, y, flex):  # type: ignore[no-untyped-def]
    """min weight . x over the flexible workloads' pairs: sum x = replicas placed per workload, capacity
    and quota left by the others, tier sum at most the plan's, 0 <= x <= pair_ub; ``None``: infeasible."""
    import scipy.sparse as sp
    from scipy.optimize import linprog

    cols = np.nonzero(flex[p.pair_w] & (p.pair_ub > 0))[0]
    if not len(cols):
        return None
    fixed = placed_workloads(p, y) & ~flex
    cap = np.where(p.capacity == UNLIMITED, UNLIMITED, p.capacity - usage(p, y, fixed))
    rows, rhs = [], []
    ws = np.nonzero(flex)[0]
    eq = sp.csr_matrix((np.ones(len(cols)), (np.searchsorted(ws, p.pair_w[cols]), np.arange(len(cols)))),
                       shape=(len(ws), len(cols)))
    totals = np.bincount(p.pair_w, weights=y, minlength=p.num_workloads)[ws]
    for r in range(len(p.resource_names)):
        for c in np.nonzero(cap[:, r] != UNLIMITED)[0]:
            rows.append(np.where(p.pair_c[cols] == c, p.request[p.pair_w[cols], r], 0.0))
            rhs.append(max(cap[c, r], 0))
        for t in range(len(p.tenant_names)):
            if p.quota[t, r] == UNLIMITED:
                continue
            used = sum(int(y[j]) * int(p.request[p.pair_w[j], r]) for j in np.nonzero(y)[0]
                       if fixed[p.pair_w[j]] and p.tenant[p.pair_w[j]] == t)
            rows.append(np.where(p.tenant[p.pair_w[cols]] == t, p.request[p.pair_w[cols], r], 0.0))
            rhs.append(max(p.quota[t, r] - used, 0))
    on = flex[p.pair_w]
    rows.append(p.pair_tier[cols].astype(float))
    rhs.append(float((y[on] * p.pair_tier[on]).sum()))
    res = linprog(pair_weights(p)[cols], A_ub=np.array(rows), b_ub=np.array(rhs, dtype=float), A_eq=eq, b_eq=totals,
                  bounds=np.stack([np.zeros(len(cols)), p.pair_ub[cols].astype(float)], axis=1), method="highs")
    return float(res.fun) if res.status == 0 else None


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(bundle=fleets(max_workloads=6), seed=st.integers(0, 1000))
def test_the_warm_cost_lp_reaches_the_minimum_of_the_whole_lp(bundle: Bundle, seed: int) -> None:
    p = build_problem(bundle)
    y = solve_problem(p, time_limit=5).y
    placed = placed_workloads(p, y)
    flex = placed & (np.random.default_rng(seed).random(p.num_workloads) < 0.7)
    if not flex.any():
        return
    lower = np.zeros(p.num_pairs, dtype=np.int64)
    totals = np.bincount(p.pair_w, weights=y, minlength=p.num_workloads).astype(np.int64)
    with pytest.MonkeyPatch.context() as mp:
        # one first column per workload (and those in use): the pricing, not the first columns, must reach it
        mp.setattr("engine.solvers.cost_lp._CANDIDATES", 1)
        ours = column_generation(p, y, flex, flex, lower, deadline=Deadline(20), rounds=100, exact=True,
                                 totals=totals)
    theirs = _linprog_minimum(p, y, flex)
    assert ours is not None and theirs is not None  # the plan itself is a point of the LP
    assert abs(ours - theirs) <= 1e-6 * max(1.0, abs(theirs)), (ours, theirs)
    layout = column_generation(p, y, flex, flex, lower, deadline=Deadline(20), rounds=100, totals=totals)
    assert layout is not None
    x = layout.x
    assert (x >= -1e-7).all() and (x <= p.pair_ub + 1e-7).all()
    ws = np.nonzero(flex)[0]
    assert np.allclose(np.bincount(p.pair_w, weights=np.where(flex[p.pair_w], x, 0.0), minlength=p.num_workloads)[ws],
                       totals[ws], atol=1e-6)


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(bundle=fleets(max_workloads=6))
def test_the_masters_duals_prove_its_minimum(bundle: Bundle) -> None:
    """Strong duality on every column at once: the objective of the dual prices HiGHS returns (rows at
    their bounds, each column at its bound by the sign of its reduced cost, priced as column generation
    prices pairs) equals the LP's minimum, so the signs and the row order of the duals are right."""
    from engine.solvers.cost_lp import _Columns, _Rows
    from engine.solvers.master import Master

    p = build_problem(bundle)
    y = solve_problem(p, time_limit=5).y
    flex = placed_workloads(p, y)
    if not flex.any():
        return
    cols = np.nonzero(flex[p.pair_w] & (p.pair_ub > 0))[0]
    n_r = len(p.resource_names)
    cap = np.where(p.capacity == UNLIMITED, UNLIMITED, p.capacity)
    lim_c = [np.nonzero(cap[:, r] != UNLIMITED)[0] for r in range(n_r)]
    lim_t = [np.nonzero(p.quota[:, r] != UNLIMITED)[0] for r in range(n_r)]
    weight = pair_weights(p)
    totals = np.bincount(p.pair_w, weights=y, minlength=p.num_workloads).astype(np.int64)
    tier_now = float((y * p.pair_tier).sum())
    rows = _Rows(p, cap=cap, quota=p.quota.copy(), lim_c=lim_c, lim_t=lim_t, weight=weight, tier_now=tier_now,
                 lower=np.zeros(p.num_pairs, dtype=np.int64), upper=p.pair_ub, totals=totals)
    ws = np.nonzero(flex)[0]
    row_of_w = np.full(p.num_workloads, -1, dtype=np.int64)
    row_of_w[ws] = np.arange(len(ws))
    matrix = _Columns(rows, row_of_w, len(ws))
    master = Master(matrix, weight)
    master.add(cols)
    solved = master.solve(20.0)
    assert solved is not None
    x, (u_w, v_cap, v_quota, v_tier) = solved[0], matrix.duals(solved[1])
    primal = float(weight[cols] @ x[cols])
    reduced = weight[cols] - u_w[row_of_w[p.pair_w[cols]]] - v_tier * p.pair_tier[cols]
    dual = float(totals[ws] @ u_w) + v_tier * tier_now
    for r in range(n_r):
        price = np.zeros(p.num_clusters)
        price[lim_c[r]] = v_cap[r]
        reduced -= p.request[p.pair_w[cols], r] * price[p.pair_c[cols]]
        dual += float(v_cap[r] @ np.maximum(cap[lim_c[r], r], 0))
        qprice = np.zeros(max(len(p.tenant_names), 1))
        qprice[lim_t[r]] = v_quota[r]
        t = p.tenant[p.pair_w[cols]]
        reduced -= np.where(t >= 0, p.request[p.pair_w[cols], r] * qprice[np.maximum(t, 0)], 0.0)
        dual += float(v_quota[r] @ np.maximum(p.quota[lim_t[r], r], 0))
    dual += float(np.minimum(reduced, 0.0) @ p.pair_ub[cols])
    assert abs(primal - dual) <= 1e-6 * max(1.0, abs(primal)), (primal, dual)
