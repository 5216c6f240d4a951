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
from engine.solvers.master import Master
from engine.solvers.solution import Deadline

if TYPE_CHECKING:
    import scipy.sparse as sp
else:
    sp = lazy_module("scipy.sparse")

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
    master: Master | None = None
    matrix: _Columns | None = None
    lagrangian = -np.inf
    lp = _Rows(p, cap=cap, quota=quota, lim_c=lim_c, lim_t=lim_t, weight=weight, tier_now=tier_now, lower=lower,
               upper=p.pair_ub if upper is None else upper, totals=p.replicas if totals is None else totals)
    for _ in range(rounds):
        if deadline.expired():
            break
        if not len(cols):
            return None
        if master is None or matrix is None:
            matrix = _Columns(lp, row_of_w, len(flex_ids))
            master = Master(matrix, weight)
        master.add(np.setdiff1d(cols, master.cols, assume_unique=True))
        solved = master.solve(max(deadline.remaining(), 0.1))
        latest = None if solved is None else (solved[0], matrix.duals(solved[1]))
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


class _Columns:
    """The cost LP's rows and columns for the warm HiGHS model of :class:`engine.solvers.master.Master`
    (one model across the rounds of :func:`column_generation`, each round adding its new columns and
    solving from the last basis; scipy's ``linprog`` built and solved every round anew, and importing
    ``scipy.optimize`` cost 0.4 s of every command).

    Rows: one equality per flexible workload (its replicas), capacity per limited (cluster, resource)
    and quota per limited (tenant, resource) at most what is left, and the tier sum at most ``tier_now``.
    Columns: every pair, between ``lower`` and ``upper``.
    """

    def __init__(self, lp: _Rows, row_of_w: IntArray, n_workload_rows: int) -> None:
        p = lp.problem
        self.lp, self.row_of_w, self.n_workload_rows = lp, row_of_w, n_workload_rows
        n_r = len(p.resource_names)
        totals = lp.totals[np.nonzero(row_of_w >= 0)[0]].astype(float)
        hi: list[FloatArray] = [totals]
        self.cap_row: list[IntArray] = []
        self.quota_row: list[IntArray] = []
        start = n_workload_rows
        for r in range(n_r):
            row = np.full(p.num_clusters, -1, dtype=np.int64)
            row[lp.lim_c[r]] = start + np.arange(len(lp.lim_c[r]))
            self.cap_row.append(row)
            start += len(lp.lim_c[r])
            hi.append(np.maximum(lp.cap[lp.lim_c[r], r], 0).astype(float))
        for r in range(n_r):
            row = np.full(max(len(p.tenant_names), 1), -1, dtype=np.int64)
            row[lp.lim_t[r]] = start + np.arange(len(lp.lim_t[r]))
            self.quota_row.append(row)
            start += len(lp.lim_t[r])
            hi.append(np.maximum(lp.quota[lp.lim_t[r], r], 0).astype(float))
        self.tier_row = start
        hi.append(np.array([lp.tier_now]))
        self.row_hi = np.concatenate(hi)
        self.n_rows = len(self.row_hi)
        self.row_lo = np.concatenate([totals, np.full(self.n_rows - n_workload_rows, -np.inf)])
        self.n_cols = p.num_pairs
        self.lb = lp.lower.astype(float)
        self.ub = lp.upper.astype(float)

    def columns(self, cols: IntArray) -> sp.csc_matrix:
        """The matrix of the pairs ``cols``: 1 in its workload's row, its request in its cluster's and its
        tenant's rows where they limit, its tier in the tier row."""
        p = self.lp.problem
        cw, cc = p.pair_w[cols], p.pair_c[cols]
        n = len(cols)
        rows, where, vals = [self.row_of_w[cw]], [np.arange(n)], [np.ones(n)]
        t = p.tenant[cw]
        for r in range(len(p.resource_names)):
            coef = p.request[cw, r].astype(float)
            for row in (self.cap_row[r][cc], np.where(t >= 0, self.quota_row[r][np.maximum(t, 0)], -1)):
                ok = (row >= 0) & (coef > 0)
                rows.append(row[ok])
                where.append(np.nonzero(ok)[0])
                vals.append(coef[ok])
        tier = p.pair_tier[cols].astype(float)
        rows.append(np.full(int((tier != 0).sum()), self.tier_row))
        where.append(np.nonzero(tier != 0)[0])
        vals.append(tier[tier != 0])
        return sp.csc_matrix((np.concatenate(vals), (np.concatenate(rows), np.concatenate(where))),
                             shape=(self.n_rows, n))

    def duals(self, dual: FloatArray) -> Duals:
        """The master's row duals split into the rows of :class:`Duals`."""
        lp, n_r = self.lp, len(self.lp.problem.resource_names)
        return Duals(dual[: self.n_workload_rows], [dual[self.cap_row[r][lp.lim_c[r]]] for r in range(n_r)],
                     [dual[self.quota_row[r][lp.lim_t[r]]] for r in range(n_r)], float(dual[self.tier_row]))
