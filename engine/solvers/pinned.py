"""Placing new workloads around a placement that may not move (``maxMoves: 0``).

The placement-as-a-service path solves "everything committed, plus these new
workloads, moving nothing". With a moves budget of 0 every workload that runs
today is pinned: all-or-nothing and ``sum y = replicas`` leave it exactly
where it is (a Divided workload's replicas cannot grow past ``replicas``, and
a Duplicated one that already has its most copies cannot gain one). Its
replicas are then constants of every level of section 3, and the lexicographic
optimum of the whole problem is the pinned placement plus the optimum of the
*new* workloads alone against residual capacity and quota, with co-location
to pinned partners turned into eligibility (a follower may only use its
partner's clusters; anti-affine pairs exclude each other's). That sub-problem
is a few workloads, not the fleet: the service's calls cost milliseconds to
a second instead of a whole-fleet solve.

:func:`solve_pinned` returns ``None`` whenever that equivalence is not exact,
and the caller then solves the whole problem: a current placement that is not
valid by itself (moved off the fleet, no longer eligible, over capacity or
quota, bounds, counts or spread broken), a workload that could still grow
(replicas raised, a Duplicated one below its most copies), or a pinned
workload that must follow a new one.

The service asks for ``frozen``: a committed placement is a promise, kept as it
is even where section 3 would add to it (a Duplicated workload committed below
its most copies stays so; with moves budget 0 alone it may gain a copy).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import replace

import numpy as np

from engine.moves import moves_per_workload
from engine.objective import evaluate, most_copies, placed_workloads
from engine.problem import UNLIMITED, Problem, restrict
from engine.solvers.construct import Residual
from engine.solvers.solution import Deadline, LevelResult, Solution
from policies import registry as concerns
from policies import replica_shape
from policies.base import Pairs

__all__ = ["SolveRest", "pinned_placement", "solve_around", "solve_pinned"]

#: how the workloads around the fixed ones are solved: :func:`engine.solvers.dispatch.solve_problem`
#: (passed in by the dispatcher, which alone chooses strategies)
SolveRest = Callable[..., Solution]


def pinned_placement(problem: Problem, *, frozen: bool = False) -> Residual | None:
    """What is left once every current workload is pinned where it runs (its replicas in ``.y``),
    or ``None`` when the current placement does not pin them all.

    With ``frozen`` the current placement is kept as it is even where the order of
    section 3 would add to it (a Duplicated workload below its most copies): the
    service's promise that a committed placement never changes. It must still be valid.
    """
    p = problem
    if p.max_moves != 0 or not len(p.current_w) or p.fixed_moves:
        return None
    idx = p.pair_index(p.current_w, p.current_c)
    if (idx < 0).any() or (p.current_n > p.pair_ub[np.maximum(idx, 0)]).any():
        return None  # not eligible there, or above a bound: the full model decides (infeasible)
    y = np.zeros(p.num_pairs, dtype=np.int64)
    np.add.at(y, idx, p.current_n)
    state = Residual.from_y(p, y)
    # capacity and quota must hold for the pinned placement alone (unlimited ones never go below 0)
    if (state.capacity < 0).any() or (state.quota < 0).any():
        return None
    most = most_copies(p)
    for w in np.unique(p.current_w).tolist():
        lo, hi = int(state.starts[w]), int(state.starts[w + 1])
        ys = y[lo:hi].copy()
        if replica_shape.may_gain_copy(p, w, ys, int(most[w])) and not frozen:
            return None  # it could still gain a copy: the full model decides
        # every concern must admit it as it runs, beside the other pinned workloads (a pinned
        # follower of a new workload cannot be pinned: its partner is not there yet)
        state.take(p, w, -ys)
        state.y[lo:hi] = 0
        admitted = concerns.admit(p, Pairs(w, lo, hi, p.pair_c[lo:hi]), ys, state)
        state.take(p, w, ys)
        if not admitted:
            return None
    return state


def solve_pinned(problem: Problem, deadline: Deadline, *, solve: SolveRest, frozen: bool = False) -> Solution | None:
    """Solve a ``maxMoves: 0`` problem as pinned placement + the new workloads alone (by ``solve``).

    Returns a :class:`~engine.solvers.solution.Solution` over the whole problem (levels
    include the pinned replicas), or ``None`` when the shortcut is not exact
    (see the module docstring). ``frozen``: see :func:`pinned_placement`.
    """
    state = pinned_placement(problem, frozen=frozen)
    if state is None:
        return None
    return solve_around(problem, state.y, deadline, solve=solve)


def solve_around(problem: Problem, fixed: np.ndarray, deadline: Deadline, *, solve: SolveRest,
                 bound_holds: bool = True) -> Solution:
    """Solve the workloads that ``fixed`` (replicas per pair, valid by itself) leaves at zero, around it.

    The fixed replicas are constants of every level; co-location with fixed partners becomes
    eligibility; the rest keeps its current placement and the moves budget (the fixed ones
    move nothing). Returns a :class:`~engine.solvers.solution.Solution` over the whole problem.

    ``bound_holds=False``: holding ``fixed`` is the caller's choice, not a rule every plan obeys
    (failover's frozen workloads), so the weighted level's bound, proved only for plans that hold
    it, is not a bound over every plan (spec 5) and is left out.
    """
    start = time.monotonic()
    p = problem
    state = Residual.from_y(p, fixed)
    pinned = placed_workloads(p, fixed)
    new = ~pinned
    # where pinned partners run becomes eligibility of the new workloads' pairs (co-location)
    ub = p.pair_ub.copy()
    for w in np.nonzero(new & concerns.ties(p))[0].tolist():
        sl = p.pairs_of(w)
        at = Pairs(w, sl.start, sl.stop, p.pair_c[sl])
        ub[sl][~concerns.admit_pairs(p, at, state, ub[sl], together=new)] = 0
    # what the pinned placement leaves, with the problem's own marks for "no limit"
    capacity = np.where(p.capacity == UNLIMITED, UNLIMITED, state.capacity)
    quota = np.where(p.quota == UNLIMITED, UNLIMITED, state.quota)
    sub = restrict(replace(p, pair_ub=ub), new, capacity=capacity, quota=quota, keep_current=True)
    part = solve(sub, deadline=deadline.at_least(0.05))
    y = fixed.copy()
    y[new[p.pair_w]] = part.y  # restrict keeps the new workloads' pairs in order
    # every level of the whole problem: the pinned replicas are constants added to the part's
    base = evaluate(p, fixed)
    offset = {f"priority:{k}": float(v) for k, v in base.placed_by_priority.items()}
    offset["tier"] = float(base.tier)
    # the rest's moves are the part's own: leave out what ``fixed`` alone counts for them
    offset["weighted"] = float(base.weighted) - p.weights.moves * float(moves_per_workload(p, fixed)[new].sum())
    solved = {lv.name: lv for lv in part.levels}
    levels: list[LevelResult] = []
    names = [f"priority:{k}" for k in base.placed_by_priority]
    if p.pair_tier.any():
        names.append("tier")
    names.append("weighted")
    for name in names:
        lv = solved.get(name)
        unproved = name == "weighted" or (name == "tier" and bool(sub.pair_tier.any()))
        if lv is None and unproved and sub.num_workloads and part.status != "Optimal":
            # the part's strategy proved nothing at this level (the large path): no bound
            levels.append(LevelResult(name, float(evaluate(p, y).tier) if name == "tier" else
                                      float(evaluate(p, y).weighted) - p.weights.moves * p.fixed_moves,
                                      float("nan"), False, 0.0))
        elif lv is None:  # nothing new at this level: the pinned value, proved
            levels.append(LevelResult(name, offset[name], offset[name], True, 0.0))
        else:
            bound = lv.bound + offset[name] if bound_holds or name != "weighted" else float("nan")
            levels.append(LevelResult(name, lv.value + offset[name], bound, lv.proved, lv.seconds))
    return Solution(y, part.status, time.monotonic() - start, levels)
