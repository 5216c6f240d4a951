"""Lower bounds on the weighted level of a plan (spec section 5).

* :func:`bound_over_plans`: over **every** plan with the same replicas per priority and the same
  tier sum, whichever workloads those are (the plan's ``status.bound``): the LP relaxation over all
  workloads (:class:`~engine.solvers.relaxation.Relaxation`) with those sums fixed, bounded by
  Lagrangian relaxation at every round of its column generation;
* :func:`cost_bound_at`: over the plans placing the plan's own workloads with the same
  replicas each (``status.boundAtPlacement``): how much a better layout of that choice could gain.

:func:`prove_weighted` adds them to a plan whose solve proved none (the large path, or an exact
solve that ran out of time). The bound on every level at once is :func:`engine.solvers.lp.solve_lp`.
"""

from __future__ import annotations

import time
from collections.abc import Callable

import numpy as np

from engine.objective import evaluate, most_copies, pair_weights, placed_workloads
from engine.problem import Problem
from engine.solvers.cost_lp import column_generation as layout_column_generation
from engine.solvers.master import column_generation
from engine.solvers.relaxation import Relaxation
from engine.solvers.solution import Deadline, LevelResult, Solution
from policies import registry as concerns
from policies import replica_shape

__all__ = ["PROVE_PAIRS", "bound_over_plans", "cost_bound_at", "prove_weighted", "weighted_constant"]

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
    bound = layout_column_generation(pp, y, placed, placed, lower, upper=upper, totals=totals, deadline=deadline,
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

    The LP relaxation over all workloads (:class:`~engine.solvers.relaxation.Relaxation`: each
    workload at most its replicas, every copy; capacity and quota kept; all-or-nothing, counts,
    spread and co-location relaxed away; moves and Aggregated clusters relaxed linearly, never above
    their true value) with one more row per priority (``sum y = the plan's replicas there``) and one
    for the tier sum. Every such plan is a point of it, so its minimum bounds them all. Column
    generation from the cheapest pairs of each workload and the plan's own pairs (so the first round
    is feasible); after every round the dual prices give a Lagrangian bound (capacity, quota, moves,
    priority and tier rows priced, each workload then fills its replicas on its cheapest priced
    pairs, over **all** its pairs), valid whether or not column generation has converged. Before any
    round, and alone when ``deadline`` leaves too little for one or without ``lp``, the same LP
    without its capacity, quota, moves and tier rows (:func:`_cheapest_replicas`). ``None`` when no
    plan has ``y``'s replicas per priority.
    """
    p = problem
    # one LP round at 384k pairs took 1.5-3 s on 2 busy cores (the matrix 0.5-1 s, HiGHS 1-2 s): with
    # less time than that it would be cut short for nothing, and only the bound without an LP is made
    lp_fits = lp and deadline.remaining() >= LP_SECONDS_PER_PAIR * p.num_pairs
    relaxation = Relaxation(p, keep)
    n_p = p.num_pairs
    objective = np.zeros(relaxation.n_cols)
    per = pair_weights(p) + relaxation.credit
    agg = p.aggregated[p.pair_w]
    per[agg] += p.weights.clusters / np.maximum(p.pair_ub[agg], 1)
    objective[:n_p] = per
    objective[n_p:] = p.weights.moves
    w_cap = (p.replicas * most_copies(p)).astype(float)
    values = sorted(set(p.priority.tolist()))
    level = np.searchsorted(values, p.priority)  # per workload: the index of its priority in ``values``
    pair_prio = level[p.pair_w]
    counts = np.bincount(pair_prio, weights=y, minlength=len(values)).astype(float)
    best = _cheapest_replicas(p, objective[:n_p], relaxation.ub[:n_p], w_cap, level, counts)
    if lp_fits:
        rounds = _lp_rounds(p, relaxation, y, objective, w_cap, level, counts, deadline)
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


def _lp_rounds(p: Problem, lp: Relaxation, y: np.ndarray, objective: np.ndarray, w_cap: np.ndarray,
               level: np.ndarray, counts: np.ndarray, deadline: Deadline) -> float | None:
    """Column generation over ``lp`` with the priority and tier rows of :func:`bound_over_plans`: the
    best Lagrangian bound of its rounds (without the constant moves), or ``None``."""
    n_p = p.num_pairs
    # one row per priority value (equal to the plan's replicas there) and one for the tier sum
    tier_sum = float((y * p.pair_tier).sum()) if (p.pair_tier > 0).any() else None
    lp.fix_levels(level[p.pair_w], counts, tier_sum)
    lp.row_lo[: p.num_workloads] = -np.inf  # sum y >= 0 holds anyway: one-sided rows for HiGHS
    lp.active[: n_p] |= y > 0  # the plan itself is a point of the first round's LP

    def lagrangian(duals: np.ndarray) -> float:
        # capacity, quota, moves and tier rows priced; the workload rows and the priority rows stay in
        # the subproblem, which the cheapest replicas solve exactly (at least as strong as pricing the
        # priority rows too, whatever their duals: the subproblem's optimum over them is what pricing
        # approximates)
        prices = duals.copy()
        prices[: p.num_workloads] = 0.0
        prices[lp.level_rows] = 0.0
        if lp.tier_row is not None:
            prices[lp.tier_row] = duals[lp.tier_row]
        reduced = objective - lp.price(prices)
        rows = np.where(prices > 0, prices * np.where(np.isfinite(lp.row_lo), lp.row_lo, 0.0),
                        prices * np.where(np.isfinite(lp.row_hi), lp.row_hi, 0.0))
        value = float(rows.sum()) + float(np.minimum(reduced[n_p:], 0.0) @ lp.ub[n_p:])
        cheapest = _cheapest_replicas(p, reduced[:n_p], lp.ub[:n_p], w_cap, level, counts)
        return value + cheapest if cheapest is not None else -np.inf

    return _column_generation(lp, objective, deadline, lagrangian)


def _cheapest_units(p: Problem, cost: np.ndarray, ub: np.ndarray, w_cap: np.ndarray
                    ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Each workload's replicas at their cheapest, as ``(workload, cost, units)`` entries: a workload
    puts up to ``w_cap`` replicas on its pairs, at most ``ub`` on each, cheapest pair first.

    A workload whose cheapest pair holds all of its replicas is one entry; only the others (per
    cluster caps, Duplicated copies) have their pairs sorted. At 6.3M pairs sorting every pair took
    2-3 s of a bound that gets a few; the pairs of one workload are contiguous, so the minimum per
    workload is a segment reduction.
    """
    n_w = p.num_workloads
    starts = p.pair_starts[:-1]
    nonempty = np.diff(p.pair_starts) > 0
    firsts = starts[nonempty]
    lowest = np.full(n_w, np.inf)
    room_at_lowest = np.zeros(n_w)
    if len(firsts):
        lowest[nonempty] = np.minimum.reduceat(cost, firsts)
        at_lowest = cost <= lowest[p.pair_w]
        room_at_lowest[nonempty] = np.maximum.reduceat(np.where(at_lowest, ub, 0.0), firsts)
    simple = nonempty & (room_at_lowest >= w_cap)
    rest = np.nonzero(~simple[p.pair_w])[0]
    order = rest[np.lexsort((cost[rest], p.pair_w[rest]))]  # by workload, cheapest pair first
    ws = p.pair_w[order]
    room = ub[order].astype(float)
    before = np.cumsum(room) - room
    before -= before[np.searchsorted(ws, ws, side="left")]
    units = np.clip(w_cap[ws] - before, 0.0, room)  # what the workload can put there, its cap counted
    one = np.nonzero(simple)[0]
    return (np.concatenate([one, ws]), np.concatenate([lowest[one], cost[order]]),
            np.concatenate([w_cap[one].astype(float), units]))


def _cheapest_replicas(p: Problem, cost: np.ndarray, ub: np.ndarray, w_cap: np.ndarray, level: np.ndarray,
                       counts: np.ndarray) -> float | None:
    """The least cost of placing ``counts[k]`` replicas of the workloads at level ``k`` (``level``,
    one per workload) on any pairs, each workload at most ``w_cap`` and each pair at most ``ub``,
    ignoring capacity, quota, moves and tiers: the LP of :func:`bound_over_plans` with those rows
    dropped, solved exactly by taking the cheapest replicas first (each workload's pairs are a chain,
    so greedy is optimal). ``None`` when the counts cannot be met at all (no plan has them)."""
    ws, unit_cost, units = _cheapest_units(p, cost, ub, w_cap)
    keep = units > 0
    ws, unit_cost, units = ws[keep], unit_cost[keep], units[keep]
    at = level[ws]
    total = 0.0
    for k, need in enumerate(counts.tolist()):
        if not need:
            continue
        mine = np.nonzero(at == k)[0]
        cheapest = mine[np.argsort(unit_cost[mine], kind="stable")]
        took = np.cumsum(units[cheapest])
        if not len(took) or took[-1] < need - 1e-9:
            return None
        last = int(np.searchsorted(took, need - 1e-9))
        amount = units[cheapest[: last + 1]].copy()
        amount[-1] -= took[last] - need
        total += float((unit_cost[cheapest[: last + 1]] * amount).sum())
    return total


def _column_generation(lp: Relaxation, objective: np.ndarray, deadline: Deadline,
                       lagrangian: Callable[[np.ndarray], float]) -> float | None:
    """Minimise ``objective`` over ``lp`` by warm column generation (:mod:`engine.solvers.master`);
    the best ``lagrangian(duals)`` of the rounds, or ``None`` when no round finished by ``deadline``."""
    if not lp.active.any():  # nothing can be placed or moved: zero prices give the (exact) bound
        return lagrangian(np.zeros(lp.n_rows))
    best: list[float] = []

    def on_round(_x: np.ndarray, duals: np.ndarray) -> None:
        best.append(lagrangian(duals))

    column_generation(lp, objective, deadline, on_round=on_round)
    return max(best) if best else None


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
    return Solution(solution.y, solution.status, solution.seconds, levels, bound_at_placement=at_level,
                    notes=solution.notes)
