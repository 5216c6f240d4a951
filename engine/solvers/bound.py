"""Lower bounds: the LP relaxation of a :class:`~engine.problem.Problem`, and the bound at a placement.

:func:`solve_lp` bounds every level of the whole problem; :func:`cost_bound_at` and
:func:`prove_weighted` prove how far the weighted level of a given placement can be from the
best plan placing the same workloads (the large path proves nothing by itself).

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
    import scipy.sparse as sp
else:
    sp = lazy_module("scipy.sparse")

__all__ = ["PROVE_PAIRS", "LpResult", "cost_bound_at", "prove_weighted", "solve_lp"]

_STEP = 10.0
_DEBUG = bool(__import__("os").environ.get("BERTH_LP_DEBUG"))


class _Lp:
    """The static part of the LP: columns, bounds and the constraint rows."""

    def __init__(self, problem: Problem, keep: int = 8) -> None:
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


#: above this many pairs one column-generation round takes longer than the few seconds the bound gets
#: (10,000 x 1,000: 6.3M pairs, no round in 5 s, and 10 s more end to end for nothing)
PROVE_PAIRS = 2_000_000


def prove_weighted(problem: Problem, solution: Solution, *, deadline: Deadline) -> Solution:
    """Add a proved lower bound on the weighted level to a plan that has none (the large path).

    The construction path proves nothing by itself; this is
    :func:`cost_bound_at`: the LP minimum of the weighted cost over
    plans placing the same workloads (the "LP minimum at that placement"; capacity
    and quota kept, counts and spread relaxed to valid cuts). Column generation
    converges in about 13 s at 2,000 x 300; by ``deadline`` the bound is the
    best Lagrangian bound of the rounds so far, valid at any round but looser (2.3%
    after 4 s where the converged gap is 1.3%). The solution is returned unchanged
    when it already has a weighted level, places nothing, or no round finished.
    """
    if solution.status != "Feasible" or any(lv.name == "weighted" for lv in solution.levels):
        return solution
    if not solution.y.any() or problem.num_pairs > PROVE_PAIRS:
        return solution
    t0 = time.monotonic()
    bound = cost_bound_at(problem, solution.y, deadline=deadline)
    if bound is None or not np.isfinite(bound):
        return solution
    # the level's value and bound leave out the constant moves, as the CP-SAT path's do
    weighted = float(evaluate(problem, solution.y).weighted) - problem.weights.moves * problem.fixed_moves
    level = LevelResult("weighted", weighted, min(bound, weighted), False, time.monotonic() - t0)
    return Solution(solution.y, solution.status, solution.seconds, [*solution.levels, level])
