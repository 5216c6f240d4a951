"""Lower bounds: the LP relaxation of a :class:`~engine.problem.Problem`, and the weighted level's bounds.

:func:`solve_lp` bounds every level of the whole problem. Two bounds on the weighted level of a
plan (spec section 5):

* :func:`bound_over_plans`: over **every** plan with the same replicas per priority and the same
  tier sum, whichever workloads those are (the plan's ``status.bound``): the LP over all
  workloads with those sums fixed, bounded by Lagrangian relaxation at every round;
* :func:`cost_bound_at`: over the plans placing the plan's own workloads with the same
  replicas each (``status.boundAtPlacement``): how much a better layout of that choice could gain.

:func:`prove_weighted` adds them to a plan whose solve proved none (the large path, or an exact
solve that ran out of time).

The LP relaxation is built vectorised.

Variables are the replicas ``y[p]`` of every eligible pair (continuous in
``[0, pair_ub]``) plus, with a current placement, ``moved[k] >= current - y``.
Rows: per workload ``sum y <= replicas`` (``replicas * copies`` for
Duplicated), capacity per (cluster, resource) and quota per (tenant,
resource). Booleans are relaxed away: cluster counts, spread, co-location and
all-or-nothing disappear, and an Aggregated workload pays ``clusters * y / ub``
for its clusters (``used >= y / ub``). Every plan of spec section 2 is a point
of this LP, so its optimum bounds every level from the right side.

The levels of spec section 3 are solved in order with GLOP, each fixed (within
a tolerance) as a row before the next. The matrix is assembled once with
``scipy.sparse`` and handed to OR-Tools' model builder in one call.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

from engine.lazy import lazy_module
from engine.moves import scale_down_credit
from engine.objective import evaluate, most_copies, pair_weights, placed_workloads
from engine.problem import UNLIMITED, Problem
from engine.solvers.cost_lp import column_generation
from engine.solvers.solution import Deadline, LevelResult, Solution
from policies import registry as concerns
from policies import replica_shape

if TYPE_CHECKING:
    import scipy.optimize as optimize
    import scipy.sparse as sp
else:
    sp = lazy_module("scipy.sparse")
    optimize = lazy_module("scipy.optimize")

__all__ = ["PROVE_PAIRS", "LpResult", "bound_over_plans", "cost_bound_at", "prove_weighted", "solve_lp",
           "weighted_constant"]

_STEP = 10.0
_DEBUG = bool(__import__("os").environ.get("BERTH_LP_DEBUG"))


class _Lp:
    """The static part of the LP: columns, bounds and the constraint rows."""

    def __init__(self, problem: Problem, keep: int = 8, *, with_rows: bool = True) -> None:
        """``with_rows=False``: only the columns, their bounds and the moves terms (no matrix built)."""
        p = problem
        n_p = p.num_pairs
        self.p = p
        # moved[k] >= current[k] - y[j] for current pairs that are still eligible, of Divided
        # workloads: they move ``sum moved - credit * placed`` (spec 3.3), linear with
        # placed = sum y / replicas; a Duplicated one moves min(removed, added) >= 0, relaxed to 0
        self.credit = np.zeros(n_p)
        self.constant_moves = 0.0
        if len(p.current_total):
            j = p.pair_index(p.current_w, p.current_c)
            split = replica_shape.divided(p)
            divided = split[p.current_w]
            self.cur_pair = j[(j >= 0) & divided]
            self.cur_n = p.current_n[(j >= 0) & divided].astype(float)
            gone = p.current_gone.astype(float) + np.bincount(
                p.current_w[(j < 0) & divided], weights=p.current_n[(j < 0) & divided], minlength=p.num_workloads)
            self.constant_moves = p.weights.moves * float(gone[split].sum())
            per = scale_down_credit(p) / np.maximum(p.replicas, 1)
            self.credit = np.where(split[p.pair_w], -p.weights.moves * per[p.pair_w], 0.0)
        else:
            self.cur_pair = np.zeros(0, np.int64)
            self.cur_n = np.zeros(0)
        n_m = len(self.cur_pair)
        self.n_cols = n_p + n_m
        self.lb = np.zeros(self.n_cols)
        self.ub = np.concatenate([p.pair_ub.astype(float), self.cur_n])
        if not with_rows:
            return

        rows: list[np.ndarray] = []
        cols: list[np.ndarray] = []
        vals: list[np.ndarray] = []
        lo: list[np.ndarray] = []
        hi: list[np.ndarray] = []
        n_rows = 0
        # per workload: sum_c y <= replicas (x copies for Duplicated)
        w_cap = (p.replicas * most_copies(p)).astype(float)
        rows.append(p.pair_w.astype(np.int64))
        cols.append(np.arange(n_p))
        vals.append(np.ones(n_p))
        lo.append(np.zeros(p.num_workloads))
        hi.append(w_cap)
        n_rows += p.num_workloads
        # capacity and quota: sum request * y <= limit
        for limit_of, key_of in ((p.capacity, p.pair_c), (p.quota, p.tenant[p.pair_w])):
            n_k = limit_of.shape[0]
            for r in range(len(p.resource_names)):
                req = p.request[p.pair_w, r].astype(float)
                key = key_of.astype(np.int64)
                ok = (req > 0) & (key >= 0)
                ok[ok] &= limit_of[key[ok], r] != UNLIMITED
                rows.append(n_rows + key[ok])
                cols.append(np.nonzero(ok)[0])
                vals.append(req[ok])
                lim = limit_of[:, r].astype(float)
                lo.append(np.full(n_k, -np.inf))
                hi.append(np.where(limit_of[:, r] == UNLIMITED, np.inf, lim))
                n_rows += n_k
        # moved[k] + y[j] >= current[k]
        if n_m:
            k = np.arange(n_m)
            rows += [n_rows + k, n_rows + k]
            cols += [n_p + k, self.cur_pair]
            vals += [np.ones(n_m), np.ones(n_m)]
            lo.append(self.cur_n)
            hi.append(np.full(n_m, np.inf))
            n_rows += n_m
        self.matrix = sp.csr_matrix(
            (np.concatenate(vals), (np.concatenate(rows), np.concatenate(cols))), shape=(n_rows, self.n_cols)
        )
        self.row_lo = np.concatenate(lo)
        self.row_hi = np.concatenate(hi)
        self.csc = self.matrix.tocsc()
        self.batch = max(2000, 2 * p.num_workloads)
        self.active = self._initial_columns(keep)

    def _initial_columns(self, keep: int) -> np.ndarray:
        """The ``keep`` cheapest pairs of each workload (all of a broadcast one), and current pairs."""
        p = self.p
        active = np.zeros(self.n_cols, dtype=bool)
        active[p.num_pairs :] = True
        active[self.cur_pair] = True
        score = p.pair_tier * 1e9 + pair_weights(p)
        order = np.lexsort((score, p.pair_w))  # by workload, then cheapest first
        starts = np.searchsorted(p.pair_w[order], np.arange(p.num_workloads))
        rank = np.arange(p.num_pairs) - starts[p.pair_w[order]]
        need = replica_shape.lp_columns(p, keep)
        active[order[rank < need[p.pair_w[order]]]] = True
        return active

    def combined(self) -> tuple[np.ndarray, dict[str, float]]:
        """One minimisation objective that orders the levels by weight (a guide, not exact).

        ``weighted + M_tier * tier - sum_k M_k * placed_k``, each weight a
        factor ``_STEP`` above what the levels below it can change per replica.
        """
        p = self.p
        c = np.zeros(self.n_cols)
        per = pair_weights(p) + self.credit
        agg = p.aggregated[p.pair_w]
        per[agg] += p.weights.clusters / np.maximum(p.pair_ub[agg], 1)
        c[: p.num_pairs] = per
        c[p.num_pairs :] = p.weights.moves
        span = float(np.abs(per).max()) if len(per) else 1.0
        span = max(span, p.weights.moves, 1e-3)
        weights: dict[str, float] = {}
        m = _STEP * span
        if p.pair_tier.any():
            weights["tier"] = m
            c[: p.num_pairs] += m * p.pair_tier
            m *= _STEP * (1 + float(p.pair_tier.max()))
        pair_prio = p.priority[p.pair_w]
        for value in sorted(set(p.priority.tolist())):
            weights[f"priority:{value}"] = m
            c[: p.num_pairs] -= m * (pair_prio == value)
            m *= _STEP
        return c, weights

    def solve(self, objective: np.ndarray, deadline: Deadline) -> tuple[str, np.ndarray, float, float]:
        """Minimise by column generation over the pairs: few columns per workload, priced vectorised.

        Returns status, ``x``, the objective value and a Lagrangian lower bound
        on the objective over *all* columns (valid whatever the status).
        """
        ub = self.ub
        lo, hi = self.row_lo, self.row_hi
        x = np.zeros(self.n_cols)
        obj = float("nan")
        bound = -np.inf
        status = "NOT_SOLVED"
        from ortools.linear_solver.python import model_builder_helper as mbh  # an extension: not lazy_module

        for _ in range(100):
            cols = np.nonzero(self.active)[0]
            model = mbh.ModelBuilderHelper()
            model.fill_model_from_sparse_data(
                self.lb[cols], ub[cols], objective[cols], lo, hi,  # type: ignore[arg-type]  # stub: ndarray[float64[m, 1]]
                sp.csr_matrix(self.csc[:, cols]),
            )
            solver = mbh.ModelSolverHelper("glop")
            solver.set_time_limit_in_seconds(max(deadline.remaining(), 0.1))
            t0 = time.monotonic()
            solver.solve(model)
            if _DEBUG:
                print("lp", len(cols), round(time.monotonic() - t0, 3), solver.status(), solver.objective_value())
            if not solver.has_solution():
                break
            status = "OPTIMAL" if solver.status() == mbh.SolveStatus.OPTIMAL else "FEASIBLE"
            x = np.zeros(self.n_cols)
            x[cols] = np.asarray(solver.variable_values())
            obj = solver.objective_value()
            duals = np.asarray(solver.dual_values())
            # weak duality: a ">= lo" row needs a dual >= 0, a "<= hi" row a dual <= 0
            duals = np.where(np.isfinite(lo), duals, np.minimum(duals, 0.0))
            duals = np.where(np.isfinite(hi), duals, np.maximum(duals, 0.0))
            reduced = objective - self.matrix.T @ duals
            rows = np.where(duals > 0, duals * np.where(np.isfinite(lo), lo, 0.0),
                            duals * np.where(np.isfinite(hi), hi, 0.0))
            bound = max(bound, float(np.minimum(reduced, 0.0) @ ub + rows.sum()))
            if status != "OPTIMAL" or deadline.expired():
                break
            gain = -reduced
            gain[self.active | (ub <= 0)] = 0.0
            better = np.nonzero(gain > 1e-9 * max(1.0, float(np.abs(objective).max())))[0]
            if not len(better):
                break
            if len(better) > self.batch:
                better = better[np.argpartition(-gain[better], self.batch)[: self.batch]]
            self.active[better] = True
        return status, x, obj, bound


@dataclass
class LpResult:
    """The combined LP: its solution and what is needed to bound any plan's weighted cost."""

    y: np.ndarray
    placed: dict[str, float]
    tier: float
    weights: dict[str, float]
    bound_total: float
    status: str
    seconds: float

    constant_moves: float = 0.0


def solve_lp(problem: Problem, *, time_limit: float = 30.0, keep: int = 8) -> LpResult:
    """Solve the combined LP relaxation (see :meth:`_Lp.combined`) within ``time_limit`` seconds."""
    deadline = Deadline(time_limit)
    p = problem
    lp = _Lp(p, keep)
    c, weights = lp.combined()
    status, x, _, bound = lp.solve(c, deadline)
    y = x[: p.num_pairs]
    pair_prio = p.priority[p.pair_w]
    placed = {f"priority:{v}": float(y[pair_prio == v].sum()) for v in sorted(set(p.priority.tolist()), reverse=True)}
    return LpResult(y=y, placed=placed, tier=float((y * p.pair_tier).sum()), weights=weights,
                    bound_total=bound, status=status, seconds=deadline.elapsed(),
                    constant_moves=lp.constant_moves)


def cost_bound_at(problem: Problem, y: np.ndarray, *, deadline: Deadline) -> float | None:
    """A lower bound on the weighted cost of any plan placing the same workloads.

    The LP relaxation with the placed set fixed, every placed workload free to
    split (spread, bounds, counts and co-location relaxed, which only lowers
    the minimum), capacity and quota kept, tier no worse; solved to optimality
    by column generation. When that has not converged by ``deadline``
    (millions of pairs), the best Lagrangian bound from the dual prices of the
    rounds so far, which is valid at any round. ``None`` when no round finished.
    """
    placed = placed_workloads(problem, y)
    if not placed.any():
        return 0.0
    pp = problem
    lower = np.zeros(pp.num_pairs, dtype=np.int64)
    # valid cuts for any plan with the same replicas per workload: with at least k clusters
    # (count or spread groups), no cluster holds more than replicas - (k - 1) * minPerCluster
    k = concerns.fewest_clusters_all(pp)
    upper = replica_shape.most_per_pair(pp, k)
    totals = np.bincount(pp.pair_w, weights=y, minlength=pp.num_workloads).astype(np.int64)
    bound = column_generation(pp, y, placed, placed, lower, upper=upper, totals=totals, deadline=deadline,
                               rounds=50, exact=True)
    if bound is None:
        return None
    # Aggregated workloads also pay ``clusters`` per cluster used, and any plan uses at least
    # ``k`` clusters (one, or the count / spread minimum) for each placed one
    clusters_used = int(k[placed & pp.aggregated].sum())
    return bound + pp.weights.clusters * clusters_used


def weighted_constant(problem: Problem) -> float:
    """The part of the weighted cost no plan can change, which the weighted level leaves out: moves of
    replicas on clusters that left the fleet or on pairs that are no longer eligible."""
    p = problem
    inelig = 0.0
    if len(p.current_w):
        idx = p.pair_index(p.current_w, p.current_c)
        inelig = float(p.current_n[idx < 0].sum())
    return p.weights.moves * (float(p.fixed_moves) + inelig)


def bound_over_plans(problem: Problem, y: np.ndarray, *, deadline: Deadline, keep: int = 8,
                     lp: bool = True) -> float | None:
    """A proved lower bound on the weighted cost (section 3.3, constants included) of **every** plan
    that places as many replicas at each priority as ``y`` and has the same tier sum.

    The LP relaxation over all workloads (:class:`_Lp`: each workload at most its replicas, every
    copy; capacity and quota kept; all-or-nothing, counts, spread and co-location relaxed away;
    moves and Aggregated clusters relaxed linearly, never above their true value) with one more
    row per priority (``sum y = the plan's replicas there``) and one for the tier sum. Every such
    plan is a point of it, so its minimum bounds them all. Column generation from the cheapest
    pairs of each workload and the plan's own pairs (so the first round is feasible); after every
    round the dual prices give a Lagrangian bound (capacity, quota, moves, priority and tier rows
    priced, each workload then fills its replicas on its cheapest priced pairs, over **all** its
    pairs), valid whether or not column generation has converged. Before any round, and alone when
    ``deadline`` leaves too little for one (:data:`LP_SECONDS_PER_PAIR`) or without ``lp``, the same
    LP without its capacity, quota, moves and tier rows (:func:`_cheapest_replicas`). ``None`` when
    no plan has ``y``'s replicas per priority.
    """
    p = problem
    # one LP round at 384k pairs took 1.5-3 s on 2 busy cores (the matrix 0.5-1 s, HiGHS 1-2 s): with
    # less time than that it would be cut short for nothing, and only the bound without an LP is made
    lp_fits = lp and deadline.remaining() >= LP_SECONDS_PER_PAIR * p.num_pairs
    relaxation = _Lp(p, keep, with_rows=lp_fits)
    n_p = p.num_pairs
    objective = np.zeros(relaxation.n_cols)
    per = pair_weights(p) + relaxation.credit
    agg = p.aggregated[p.pair_w]
    per[agg] += p.weights.clusters / np.maximum(p.pair_ub[agg], 1)
    objective[:n_p] = per
    objective[n_p:] = p.weights.moves
    w_cap = (p.replicas * most_copies(p)).astype(float)
    values = sorted(set(p.priority.tolist()))
    pair_prio = np.searchsorted(values, p.priority[p.pair_w])
    counts = np.bincount(pair_prio, weights=y, minlength=len(values)).astype(float)
    best = _cheapest_replicas(p, objective[:n_p], relaxation.ub[:n_p], w_cap, pair_prio, counts)
    if lp_fits:
        rounds = _lp_rounds(p, relaxation, y, objective, w_cap, pair_prio, counts, deadline)
        if rounds is not None and np.isfinite(rounds):
            best = rounds if best is None else max(best, rounds)
    if best is None or not np.isfinite(best):
        return None
    # the LP leaves out the replicas of Divided workloads on clusters gone or pairs no longer eligible,
    # moved by every plan (a Duplicated one may not move them: min(removed, added) can be 0); a float
    # safety margin keeps the bound below the exact LP minimum
    total = best + relaxation.constant_moves
    return total - 1e-7 * max(1.0, abs(total))


#: seconds per eligible pair that one round of :func:`bound_over_plans`'s LP needs at least
LP_SECONDS_PER_PAIR = 4e-6


def _lp_rounds(p: Problem, lp: _Lp, y: np.ndarray, objective: np.ndarray, w_cap: np.ndarray,
               pair_prio: np.ndarray, counts: np.ndarray, deadline: Deadline) -> float | None:
    """Column generation over ``lp`` with the priority and tier rows of :func:`bound_over_plans`: the
    best Lagrangian bound of its rounds (without the constant moves), or ``None``."""
    n_p = p.num_pairs
    # one row per priority value (equal to the plan's replicas there) and one for the tier sum
    extra_rows = [pair_prio, np.zeros(0, np.int64)]
    extra_cols = [np.arange(n_p), np.zeros(0, np.int64)]
    extra_vals = [np.ones(n_p), np.zeros(0)]
    lo = [counts]
    tiered = np.nonzero(p.pair_tier > 0)[0]
    if len(tiered):
        extra_rows[1] = np.full(len(tiered), len(counts))
        extra_cols[1] = tiered
        extra_vals[1] = p.pair_tier[tiered].astype(float)
        lo.append(np.array([float((y * p.pair_tier).sum())]))
    n_extra = len(counts) + (1 if len(tiered) else 0)
    extra = sp.csr_matrix((np.concatenate(extra_vals), (np.concatenate(extra_rows), np.concatenate(extra_cols))),
                          shape=(n_extra, lp.n_cols))
    lp.matrix = sp.vstack([lp.matrix, extra]).tocsr()
    lp.csc = lp.matrix.tocsc()
    lp.row_lo = np.concatenate([lp.row_lo, *lo])
    lp.row_hi = np.concatenate([lp.row_hi, *lo])
    lp.row_lo[: p.num_workloads] = -np.inf  # sum y >= 0 holds anyway: one-sided rows for HiGHS
    lp.active[: n_p] |= y > 0  # the plan itself is a point of the first round's LP

    def lagrangian(duals: np.ndarray) -> float:
        # the workload rows (the first W) stay in the subproblem; every other row is priced
        prices = duals.copy()
        prices[: p.num_workloads] = 0.0
        reduced = objective - lp.matrix.T @ prices
        rows = np.where(prices > 0, prices * np.where(np.isfinite(lp.row_lo), lp.row_lo, 0.0),
                        prices * np.where(np.isfinite(lp.row_hi), lp.row_hi, 0.0))
        value = float(rows.sum()) + float(np.minimum(reduced[n_p:], 0.0) @ lp.ub[n_p:])
        # each workload: up to its replicas on its cheapest pairs of negative priced cost
        r = reduced[:n_p]
        neg = np.nonzero(r < 0)[0]
        order = neg[np.lexsort((r[neg], p.pair_w[neg]))]
        ws = p.pair_w[order]
        room = lp.ub[order]
        before = np.cumsum(room) - room
        before -= before[np.searchsorted(ws, ws, side="left")]
        take = np.clip(w_cap[ws] - before, 0.0, room)
        return value + float((r[order] * take).sum())

    return _column_generation(lp, objective, deadline, lagrangian)


def _cheapest_replicas(p: Problem, cost: np.ndarray, ub: np.ndarray, w_cap: np.ndarray, pair_prio: np.ndarray,
                       counts: np.ndarray) -> float | None:
    """The least cost of placing ``counts[k]`` replicas at each priority (index ``k``) on any pairs,
    each workload at most ``w_cap`` and each pair at most ``ub``, ignoring capacity, quota, moves and
    tiers: the LP of :func:`bound_over_plans` with those rows dropped, solved exactly by taking the
    cheapest replicas first (each workload's pairs are a chain, so greedy is optimal). ``None`` when
    the counts cannot be met at all (no plan has them)."""
    order = np.lexsort((cost, p.pair_w))  # by workload, cheapest pair first
    ws = p.pair_w[order]
    room = ub[order].astype(float)
    before = np.cumsum(room) - room
    before -= before[np.searchsorted(ws, ws, side="left")]
    units = np.clip(w_cap[ws] - before, 0.0, room)  # what the workload can put there, its cap counted
    total = 0.0
    for k, need in enumerate(counts.tolist()):
        if not need:
            continue
        mine = np.nonzero((pair_prio[order] == k) & (units > 0))[0]
        cheapest = mine[np.argsort(cost[order][mine], kind="stable")]
        took = np.cumsum(units[cheapest])
        if not len(took) or took[-1] < need - 1e-9:
            return None
        last = int(np.searchsorted(took, need - 1e-9))
        amount = units[cheapest[: last + 1]].copy()
        amount[-1] -= took[last] - need
        total += float((cost[order][cheapest[: last + 1]] * amount).sum())
    return total


def _column_generation(lp: _Lp, objective: np.ndarray, deadline: Deadline,
                       lagrangian: Callable[[np.ndarray], float]) -> float | None:
    """Minimise ``objective`` over ``lp`` by column generation (HiGHS dual simplex, which solved these
    LPs in about half GLOP's time); the best ``lagrangian(duals)`` of the rounds, or ``None`` when no
    round finished by ``deadline``.

    Each round adds the columns of most negative reduced cost (``lp.batch`` of them; adding each
    workload's six best instead made every round slower and converged later at 2,000 x 300).
    """
    lo, hi, ub = lp.row_lo, lp.row_hi, lp.ub
    eq = np.isfinite(lo) & np.isfinite(hi) & (lo == hi)
    upper = np.isfinite(hi) & ~eq
    lower = np.isfinite(lo) & ~eq
    best: float | None = None
    scale = max(1.0, float(np.abs(objective).max())) if len(objective) else 1.0
    for _ in range(100):
        if deadline.expired():
            break
        cols = np.nonzero(lp.active)[0]
        if not len(cols):  # nothing can be placed or moved: zero prices give the (exact) bound
            return lagrangian(np.zeros(len(lo)))
        a = sp.csr_matrix(lp.csc[:, cols])
        res = optimize.linprog(objective[cols], A_ub=sp.vstack([a[upper], -a[lower]]).tocsr(),
                               b_ub=np.concatenate([hi[upper], -lo[lower]]), A_eq=a[eq], b_eq=lo[eq],
                               bounds=np.stack([lp.lb[cols], ub[cols]], axis=1), method="highs-ds",
                               options={"presolve": True, "time_limit": max(deadline.remaining(), 0.05)})
        if res.status != 0:
            break  # out of time (or numerical trouble): the rounds so far stand
        duals = np.zeros(len(lo))
        marg = res.ineqlin.marginals
        n_up = int(upper.sum())
        duals[upper] += np.minimum(marg[:n_up], 0.0)
        duals[lower] -= np.minimum(marg[n_up:], 0.0)
        duals[eq] = res.eqlin.marginals
        value = lagrangian(duals)
        best = value if best is None else max(best, value)
        if deadline.expired():
            break
        reduced = objective - lp.matrix.T @ duals
        new = ~lp.active & (ub > 0) & (reduced < -1e-9 * scale)
        if not new.any():
            break  # converged: no column can improve the LP
        better = np.nonzero(new)[0]
        if len(better) > lp.batch:
            better = better[np.argpartition(reduced[better], lp.batch)[: lp.batch]]
        lp.active[better] = True
    return best


#: above this many pairs one column-generation round takes longer than the few seconds the bound gets
#: (10,000 x 1,000: 6.3M pairs, no round in 5 s, and 10 s more end to end for nothing): there the plan's
#: bound is the one without an LP
PROVE_PAIRS = 2_000_000


def prove_weighted(problem: Problem, solution: Solution, *, deadline: Deadline) -> Solution:
    """Add proved lower bounds on the weighted level to a plan whose solve proved none.

    The large path proves nothing by itself, and an exact solve cut short by the time limit may
    not have proved its weighted level. First :func:`bound_over_plans` (the level's bound: over
    every plan with the same replicas per priority and tier), with most of ``deadline``; then, when
    the solve proved no weighted level at all (the large path) and time is left,
    :func:`cost_bound_at` at the plan's own choice of workloads (``bound_at_placement``, never below
    the first: every plan at this placement is one of those plans). Column generation need not
    converge: the Lagrangian bound of the rounds so far is valid at every round. The solution is
    returned unchanged when it already has a proved bound, places nothing, or no round finished.
    """
    if solution.status != "Feasible" or not solution.y.any():
        return solution
    weighted_level = next((lv for lv in solution.levels if lv.name == "weighted"), None)
    if weighted_level is not None and np.isfinite(weighted_level.bound):
        return solution
    t0 = time.monotonic()
    constant = weighted_constant(problem)
    weighted = float(evaluate(problem, solution.y).weighted)
    # above PROVE_PAIRS only the bound without an LP (no LP round fits the few seconds there); the
    # first round starts from 4 pairs per workload: as good a first bound as 8, in less time
    lp = problem.num_pairs <= PROVE_PAIRS
    over = bound_over_plans(problem, solution.y, deadline=deadline.slice(0.75) if weighted_level is None else deadline,
                            keep=4, lp=lp)
    at = None
    if weighted_level is None and lp and deadline.remaining() >= LP_SECONDS_PER_PAIR * problem.num_pairs:
        # without moves (never below 0), which it leaves out; never below the bound over every plan
        at = cost_bound_at(problem, solution.y, deadline=deadline)
        if at is not None and np.isfinite(at) and over is not None:
            at = max(at, over)
    levels = [lv for lv in solution.levels if lv.name != "weighted"]
    bound = min(over, weighted) - constant if over is not None else float("nan")
    levels.append(LevelResult("weighted", weighted - constant, bound, False, time.monotonic() - t0))
    at_level = solution.bound_at_placement if at is None or not np.isfinite(at) else min(at, weighted) - constant
    return Solution(solution.y, solution.status, solution.seconds, levels, bound_at_placement=at_level)
