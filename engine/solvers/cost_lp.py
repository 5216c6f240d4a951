"""The cost LP of a fixed placement: column generation over HiGHS, and its Lagrangian bound.

Step 2 of the cost refinement (:mod:`engine.solvers.refine`): minimise the weighted cost of the
movable workloads, ``sum_c y[w, c] = replicas[w]``, capacity and quota per resource, ``tier <=
tier now``, over each workload's cheapest candidate pairs plus those it uses now; columns with a
negative reduced cost are added and the LP re-solved (a few rounds). :mod:`engine.solvers.bound`
runs the same LP with ``exact=True`` for the proved bound of a placement.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Literal, NamedTuple, overload

import numpy as np

from engine.lazy import lazy_module
from engine.objective import pair_weights, placed_workloads
from engine.problem import UNLIMITED, BoolArray, FloatArray, IntArray, Problem, usage
from engine.solvers.solution import Deadline

if TYPE_CHECKING:
    import scipy.sparse as sp
    from scipy import optimize
else:
    sp = lazy_module("scipy.sparse")
    optimize = lazy_module("scipy.optimize")

__all__ = ["Duals", "LpLayout", "column_generation"]

#: cheapest pairs per free workload in the first LP round (pricing adds the rest). 12 made the rounds
#: and the rounding slow enough that, on a busy machine, a 2000 x 300 cloud fleet at 95% lost its
#: whole refinement to the deadline (gap 2.8% instead of 0.9%); 6 solves the same instances in 2.0 s
#: within 0.1% of the cost, where 12 needed 2.4 s
_CANDIDATES = 6


class Duals(NamedTuple):
    """The LP's dual prices: one per flexible workload (its replicas row), per resource over the
    clusters and over the tenants whose capacity or quota is limited, and the tier row."""

    workload: FloatArray
    capacity: list[FloatArray]
    quota: list[FloatArray]
    tier: float


@dataclass(frozen=True)
class LpLayout:
    """The LP's replicas per pair (fractional, ``x``; non-zero only on ``cols``), the capacity the
    flexible workloads had (``cap``, (C, R)) and the weighted cost per pair: what rounding needs."""

    x: FloatArray
    cols: IntArray
    cap: IntArray
    weight: FloatArray


@dataclass(frozen=True)
class _Rows:
    """The LP's shared rows and its column bounds: what the flexible workloads have left of capacity
    (``cap``, (C, R)) and quota (``quota``, (T, R)), which of those limit (``lim_c``/``lim_t`` per
    resource), the tier sum they may not exceed, replicas per pair between ``lower`` and ``upper``,
    and ``totals`` replicas per workload."""

    problem: Problem
    cap: IntArray
    quota: IntArray
    lim_c: list[IntArray]
    lim_t: list[IntArray]
    weight: FloatArray
    tier_now: float
    lower: IntArray
    upper: IntArray
    totals: IntArray


def _candidates(p: Problem, cols_ok: BoolArray, score: FloatArray, y: IntArray, k: int) -> IntArray:
    """Pair indices: the ``k`` cheapest eligible pairs of each flexible workload, and those in use."""
    idx = np.nonzero(cols_ok)[0]
    order = idx[np.lexsort((score[idx], p.pair_w[idx]))]
    w_sorted = p.pair_w[order]
    first = np.searchsorted(w_sorted, w_sorted, side="left")
    rank = np.arange(len(order)) - first
    keep = order[(rank < k) | (y[order] > 0)]
    return np.sort(keep)


@overload
def column_generation(problem: Problem, y: IntArray, flex: BoolArray, free: BoolArray, lower: IntArray, *,
                      deadline: Deadline, rounds: int, exact: Literal[False] = False, upper: IntArray | None = None,
                      totals: IntArray | None = None) -> LpLayout | None: ...


@overload
def column_generation(problem: Problem, y: IntArray, flex: BoolArray, free: BoolArray, lower: IntArray, *,
                      deadline: Deadline, rounds: int, exact: Literal[True], upper: IntArray | None = None,
                      totals: IntArray | None = None) -> float | None: ...


def column_generation(problem: Problem, y: IntArray, flex: BoolArray, free: BoolArray, lower: IntArray, *,
                      deadline: Deadline, rounds: int, exact: bool = False, upper: IntArray | None = None,
                      totals: IntArray | None = None) -> LpLayout | float | None:
    """LP over the pairs of ``flex`` workloads; only ``free`` ones get new columns by pricing.

    Returns the LP's layout; with ``exact``, a lower bound on the LP's minimum instead (the minimum
    itself when column generation converges). ``None``: no LP solution in time."""
    p = problem
    n_r = len(p.resource_names)
    placed = placed_workloads(p, y)
    pair_flex = flex[p.pair_w]
    weight = pair_weights(p)
    # capacity and quota left by the workloads that keep their placement
    fixed_w = placed & ~flex
    cap = np.where(p.capacity == UNLIMITED, UNLIMITED, p.capacity - usage(p, y, fixed_w))
    quota = p.quota.copy()
    for t in range(len(p.tenant_names)):
        mine = fixed_w[p.pair_w] & (p.tenant[p.pair_w] == t)
        for r in range(n_r):
            if quota[t, r] != UNLIMITED:
                quota[t, r] -= int((y[mine] * p.request[p.pair_w[mine], r]).sum())
    tier_now = float((y[pair_flex] * p.pair_tier[pair_flex]).sum())

    pair_free = free[p.pair_w]
    cols = np.union1d(_candidates(p, pair_free & (p.pair_ub > 0), weight, y, _CANDIDATES),
                      np.nonzero(pair_flex & ~pair_free & (y > 0))[0])
    flex_ids = np.nonzero(flex)[0]
    row_of_w = np.full(p.num_workloads, -1, dtype=np.int64)
    row_of_w[flex_ids] = np.arange(len(flex_ids))
    lim_c = [np.nonzero(cap[:, r] != UNLIMITED)[0] for r in range(n_r)]
    lim_t = [np.nonzero(quota[:, r] != UNLIMITED)[0] for r in range(n_r)]

    solution: tuple[FloatArray, Duals] | None = None
    converged = False
    lagrangian = -np.inf
    lp = _Rows(p, cap=cap, quota=quota, lim_c=lim_c, lim_t=lim_t, weight=weight, tier_now=tier_now, lower=lower,
               upper=p.pair_ub if upper is None else upper, totals=p.replicas if totals is None else totals)
    for _ in range(rounds):
        if deadline.expired():
            break
        latest = _solve_lp(lp, cols, row_of_w, len(flex_ids), time_limit=max(deadline.remaining(), 0.1))
        if latest is None:
            if solution is None:
                return None
            break  # out of time in this round: the last round's optimum over its columns stands
        solution = latest
        _, duals = solution
        if deadline.expired() and not exact:
            break  # no time for another round: pricing alone takes seconds over millions of pairs
        # pricing: reduced cost of every flexible pair not yet a column
        u_w, v_cap, v_quota, v_tier = duals
        reduced = weight - u_w[row_of_w[p.pair_w]] - v_tier * p.pair_tier
        for r in range(n_r):
            price = np.zeros(p.num_clusters)
            price[lim_c[r]] = v_cap[r]
            reduced -= p.request[p.pair_w, r] * price[p.pair_c]
            qprice = np.zeros(max(len(p.tenant_names), 1))
            if len(lim_t[r]):
                qprice[lim_t[r]] = v_quota[r]
            has_t = p.tenant[p.pair_w] >= 0
            reduced[has_t] -= p.request[p.pair_w[has_t], r] * qprice[p.tenant[p.pair_w[has_t]]]
        new = pair_free & (p.pair_ub > 0) & (reduced < -1e-7)
        new[cols] = False
        if exact:
            lagrangian = max(lagrangian, _lagrangian(lp, duals, pair_flex))
        if not new.any():
            converged = True
            break
        cols = np.union1d(cols, _candidates(p, new, reduced, np.zeros_like(y), _CANDIDATES))
    if solution is None:
        return None
    if exact:
        # converged: the LP optimum; otherwise the best Lagrangian bound met on the way (also valid)
        return float((solution[0] * weight).sum()) if converged else lagrangian
    return LpLayout(solution[0], cols, cap, weight)


def _lagrangian(lp: _Rows, duals: Duals, pair_flex: BoolArray) -> float:
    """A lower bound on the LP from any dual prices of its shared rows (Lagrangian relaxation).

    With capacity, quota and tier rows priced at ``-v >= 0``, what is left splits by
    workload: each fills its replicas on its cheapest priced pairs within the
    bounds. Every pair of the workload counts, not only the LP's columns, so the
    bound holds before column generation has converged.
    """
    p, weight, lim_c, lim_t, cap, quota = lp.problem, lp.weight, lp.lim_c, lp.lim_t, lp.cap, lp.quota
    lower, upper, totals = lp.lower, lp.upper, lp.totals
    _, v_cap, v_quota, v_tier = duals
    v_tier = min(float(v_tier), 0.0)
    priced = weight - v_tier * p.pair_tier
    constant = v_tier * lp.tier_now
    has_t = p.tenant[p.pair_w] >= 0
    for r in range(len(p.resource_names)):
        price = np.zeros(p.num_clusters)
        price[lim_c[r]] = np.minimum(v_cap[r], 0.0)
        priced = priced - p.request[p.pair_w, r] * price[p.pair_c]
        constant += float((price[lim_c[r]] * np.maximum(cap[lim_c[r], r], 0)).sum())
        qprice = np.zeros(max(len(p.tenant_names), 1))
        if len(lim_t[r]):
            qprice[lim_t[r]] = np.minimum(v_quota[r], 0.0)
            constant += float((qprice[lim_t[r]] * np.maximum(quota[lim_t[r], r], 0)).sum())
        priced[has_t] -= p.request[p.pair_w[has_t], r] * qprice[p.tenant[p.pair_w[has_t]]]
    idx = np.nonzero(pair_flex & (upper > 0))[0]
    lo = lower[idx].astype(float)
    room = np.maximum(upper[idx] - lower[idx], 0).astype(float)
    order = np.lexsort((priced[idx], p.pair_w[idx]))
    w_sorted = p.pair_w[idx][order]
    room_sorted = room[order]
    before = np.cumsum(room_sorted) - room_sorted
    first = np.searchsorted(w_sorted, w_sorted, side="left")
    before -= (np.cumsum(room_sorted) - room_sorted)[first]
    need = totals[w_sorted] - np.bincount(p.pair_w[idx], weights=lo, minlength=p.num_workloads)[w_sorted]
    take = np.clip(need - before, 0, room_sorted)
    return float((priced[idx] * lo).sum() + (priced[idx][order] * take).sum()) + constant


def _solve_lp(lp: _Rows, cols: IntArray, row_of_w: IntArray, n_rows: int, *,
              time_limit: float) -> tuple[FloatArray, Duals] | None:
    """The LP over ``cols`` with HiGHS: (x per pair, duals), or ``None`` (infeasible or out of time).
    ``row_of_w`` is the replicas row of each flexible workload (-1: not in the LP), ``n_rows`` their number."""
    p, lim_c, lim_t, cap, quota = lp.problem, lp.lim_c, lp.lim_t, lp.cap, lp.quota
    n = len(cols)
    if n == 0:
        return None
    cw = p.pair_w[cols]
    a_eq = sp.csr_matrix((np.ones(n), (row_of_w[cw], np.arange(n))), shape=(n_rows, n))
    b_eq = lp.totals[np.nonzero(row_of_w >= 0)[0]].astype(float)
    blocks = []
    rhs = []
    n_r = len(p.resource_names)
    for r in range(n_r):
        coef = p.request[cw, r].astype(float)
        pos = np.full(p.num_clusters, -1)
        pos[lim_c[r]] = np.arange(len(lim_c[r]))
        rows = pos[p.pair_c[cols]]
        ok = (rows >= 0) & (coef > 0)
        blocks.append(sp.csr_matrix((coef[ok], (rows[ok], np.nonzero(ok)[0])), shape=(len(lim_c[r]), n)))
        rhs.append(np.maximum(cap[lim_c[r], r], 0).astype(float))
    for r in range(n_r):
        coef = p.request[cw, r].astype(float)
        pos = np.full(max(len(p.tenant_names), 1), -1)
        pos[lim_t[r]] = np.arange(len(lim_t[r]))
        t = p.tenant[cw]
        rows = np.where(t >= 0, pos[np.maximum(t, 0)], -1)
        ok = (rows >= 0) & (coef > 0)
        blocks.append(sp.csr_matrix((coef[ok], (rows[ok], np.nonzero(ok)[0])), shape=(len(lim_t[r]), n)))
        rhs.append(np.maximum(quota[lim_t[r], r], 0).astype(float))
    blocks.append(sp.csr_matrix(p.pair_tier[cols].astype(float)[None, :]))
    rhs.append(np.array([lp.tier_now]))
    a_ub = sp.vstack(blocks).tocsr()
    b_ub = np.concatenate(rhs)
    bounds = np.stack([lp.lower[cols].astype(float), lp.upper[cols].astype(float)], axis=1)
    res = optimize.linprog(lp.weight[cols], A_ub=a_ub, b_ub=b_ub, A_eq=a_eq, b_eq=b_eq, bounds=bounds,
                           method="highs-ds", options={"presolve": True, "time_limit": time_limit})
    if res.status != 0:
        return None
    marg = res.ineqlin.marginals
    v_cap, v_quota = [], []
    k = 0
    for r in range(n_r):
        v_cap.append(marg[k:k + len(lim_c[r])])
        k += len(lim_c[r])
    for r in range(n_r):
        v_quota.append(marg[k:k + len(lim_t[r])])
        k += len(lim_t[r])
    v_tier = float(marg[k])
    x = np.zeros(p.num_pairs)
    x[cols] = res.x
    return x, Duals(res.eqlin.marginals, v_cap, v_quota, v_tier)
