"""The large-instance strategy: construct a valid plan fast, in the order of spec section 3.

For problems too big for one CP-SAT model in the time limit (hundreds of
thousands of eligible pairs), :func:`solve_large` builds the plan workload by
workload against *residual* capacity and quota:

1. workloads are taken by priority, highest first (a lower priority never
   takes capacity before a higher one); inside one priority the hardest to fit
   go first (fewest eligible clusters, biggest total request: the classic
   first-fit-decreasing order that beats arrival order on bin packing);
2. each workload is placed by :func:`place_one`, which honours every hard
   constraint of section 2 for that workload (bounds, cluster count, spread and
   skew, Duplicated and broadcast, affinity to placed partners, anti-affinity,
   capacity, quota) and prefers earlier tiers, then the cheapest clusters by
   the weighted objective per replica;
3. workloads left out are retried once everything else is placed (their
   affinity partners may have been placed meanwhile);
4. after each level, and again at the end, :mod:`engine.solvers.repair` places what
   construction missed (exact neighbourhood solves, then moving occupants
   aside); :mod:`engine.solvers.refine` lowers the cost of the placement by LP;
   then a workload its tenant's quota blocks is traded for a smaller one
   of the same priority (:func:`engine.solvers.quota_swap.swap_for_quota`), and time left
   over goes to a wider repair pass;
5. what those added is laid out by the LP too, and the trades and wide repairs run again on
   the cheaper layout (which may have freed room), while either still gains;
6. time left once nothing more is placed polishes the cost: the rigid workloads re-placed one by
   one where cheaper, then the free ones laid out by the LP around where they went (at 2,000 x 300,
   load 0.6, everything placed: 597.9 -> 595.2 against an LP minimum of 591.4).

The result is always a valid plan (``Feasible``): optimality is not proved.
The construction rule itself is :mod:`engine.solvers.construct`.
"""

from __future__ import annotations

import numpy as np

from engine.problem import Problem
from engine.solvers.construct import Residual, hardest_first, pair_score, place_scored, smallest_first
from engine.solvers.neighbourhood import improve_placed
from engine.solvers.quota_swap import swap_for_quota
from engine.solvers.refine import flexible_workloads, refine_cost
from engine.solvers.repair import repair_unplaced
from engine.solvers.solution import Deadline, LevelResult, Solution

__all__ = ["solve_large"]


def solve_large(problem: Problem, deadline: Deadline, *, hint_y: np.ndarray | None = None,
                stop: Deadline | None = None) -> Solution:
    """A valid plan for a big problem by ``deadline`` (see the module docstring).

    ``stop``: construction places no further workload once it is over (they stay unplaced and the
    plan stays valid), so that a machine too busy to construct within the limit still ends in time;
    without it construction always completes (the exact path's floor, which must be whole).
    """
    p = problem
    over = stop.expired if stop is not None else (lambda: False)
    score = pair_score(p)
    if hint_y is not None and p.max_moves is None:
        # keep what runs today where it is cheapest to keep: moving costs ``moves`` per replica
        score = score - p.weights.moves * (hint_y > 0)
    # construction level by level, highest priority first; after each level, exact neighbourhood
    # repairs (engine.solvers.repair) place what construction missed while lower levels have not yet
    # taken the room. Clusters are scored for placement (earlier tier, then most room left, then
    # cost): packing for placement first; the LP below makes the layout cheap afterwards.
    # smallest first placed as many replicas as hardest first, or more, at every level of eight
    # 2,000 x 300 fleets (at the lowest priority 17-1,037 more), so it goes first when only one fits
    orders = (smallest_first(p), hardest_first(p))
    state = Residual.empty(p)
    # half of the time for construction and the repairs after each level
    levels_deadline = deadline.slice(0.5)
    values = sorted(set(p.priority.tolist()), reverse=True)
    pair_prio = p.priority[p.pair_w]
    for k, value in enumerate(values):
        # two orders for this level (smallest first, which fits the most replicas when room runs
        # short; hardest to fit first); the one placing more of this level, then cheaper, stays.
        # The second only while the first took less than half of what is left for this level: on a
        # busy machine two orders at 2,000 x 300 took the whole solve, and the cost LP never ran
        level_by = levels_deadline.slice(1 / (len(values) - k))
        best_level: tuple[tuple[float, float], Residual] | None = None
        for i, order in enumerate(orders):
            if i and level_by.elapsed() > level_by.remaining():
                break
            trial = state.copy()
            level = order[p.priority[order] == value]
            left = [w for w in level.tolist() if over() or not place_scored(p, w, trial, score)]
            for _ in range(2):  # partners placed meanwhile may unlock followers
                left = [w for w in left if over() or not place_scored(p, w, trial, score)]
            at = pair_prio == value
            key = (float(trial.y[at].sum()), -float((trial.y[at] * score[at]).sum()))
            if best_level is None or key > best_level[0]:
                best_level = (key, trial)
        assert best_level is not None  # the first order always runs
        state = best_level[1]
        repair_unplaced(p, state, deadline=level_by, only=p.priority == value)
    # the rest of the time: what is still unplaced, highest priority first (exact repairs), then a
    # cheaper layout of the same placement by LP (engine.solvers.refine) for the workloads it can move and
    # exact one-by-one re-placement for the others (engine.solvers.neighbourhood.improve_placed)
    # the last solves may run past their deadline by their set-up time: keep a margin for it
    margin = min(0.4, 0.04 * deadline.total)
    budget = deadline.total - margin
    rest = deadline.before(margin)

    repair_unplaced(p, state, deadline=rest.within(0.5 * max(rest.remaining() - 0.3 * budget, 0.0)))
    laid_out = state.y.copy()  # the placement as the cost LP last saw it
    if rest.remaining() > 0.3:
        cheaper = _cheaper_layout(p, state, rest, improve_share=0.5)
        if cheaper is not state:
            state = cheaper
            laid_out = state.y.copy()
            repair_unplaced(p, state, deadline=rest.slice(0.9))
    swap_for_quota(p, state, deadline=rest)
    # time left over (every narrow attempt made): once more with neighbourhoods twice as wide
    if rest.remaining() > 0.3:
        repair_unplaced(p, state, deadline=rest, widen=2)
    # what the trades and the wide repair added was placed by the construction rule against the
    # residual and never laid out by the LP (at 2,000 x 300, 85% load: 65 replicas for 81 of cost,
    # 6 of it recovered by one more refinement); a cheaper layout may also free room for more trades
    for _ in range(3):
        if rest.remaining() < 0.3 or np.array_equal(laid_out, state.y):
            break
        state = _cheaper_layout(p, state, rest, improve_share=0.6)
        laid_out = state.y.copy()
        before = int(state.y.sum())
        swap_for_quota(p, state, deadline=rest.slice(0.3))
        repair_unplaced(p, state, deadline=rest.slice(0.5), widen=2)
        if int(state.y.sum()) == before:
            break
    if rest.remaining() > 0.5:
        state = _polish(p, state, rest)
    y = state.y
    pair_prio = p.priority[p.pair_w]
    levels = [
        LevelResult(f"priority:{v}", float(y[pair_prio == v].sum()), float("nan"), False, 0.0)
        for v in sorted(set(p.priority.tolist()), reverse=True)
    ]
    return Solution(y, "Feasible", deadline.elapsed(), levels)


def _cheaper_layout(p: Problem, state: Residual, rest: Deadline, *, improve_share: float) -> Residual:
    """The same placement laid out cheaper: the cost LP and its rounding (:func:`refine_cost`) for the
    workloads it can move, then exact one-by-one re-placement of the others
    (:func:`improve_placed`, ``improve_share`` of what is left then); ``state`` itself when the LP
    found nothing cheaper."""
    y = refine_cost(p, state.y, deadline=rest.slice(0.75))
    if np.array_equal(y, state.y):
        return state
    cheaper = Residual.from_y(p, y)
    improve_placed(p, cheaper, ~flexible_workloads(p), deadline=rest.slice(improve_share))
    return cheaper


def _polish(p: Problem, state: Residual, rest: Deadline) -> Residual:
    """With time left once nothing more is placed: the rigid workloads re-placed one by one where that
    is cheaper (:func:`improve_placed`), then the free ones laid out again around where they went."""
    if not improve_placed(p, state, ~flexible_workloads(p), deadline=rest.slice(0.6)):
        return state
    y = refine_cost(p, state.y, deadline=rest.slice(0.9))
    return state if np.array_equal(y, state.y) else Residual.from_y(p, y)
