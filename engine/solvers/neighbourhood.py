"""Neighbourhood solves: a few workloads taken out and placed again together, exactly, by CP-SAT.

The repairs (:mod:`engine.solvers.repair`) and :func:`improve_placed` take a small set of
workloads out of the residual state, restrict the problem to them against what is left
(keeping what the concerns ask of the workloads outside), offer each its most promising pairs,
and commit the CP-SAT placement only when every member is placed.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

from engine.lazy import lazy_module
from engine.objective import pair_weights, placed_workloads
from engine.problem import UNLIMITED, IntArray, Problem, keep_pairs, restrict
from engine.solvers.construct import Residual, pair_score, release
from engine.solvers.incremental import fill_counted
from engine.solvers.model import compile_model, set_objective
from engine.solvers.progress import stop_after_first
from engine.solvers.solution import Deadline
from policies import registry as concerns
from policies.base import Pairs

if TYPE_CHECKING:
    from ortools.sat.python import cp_model
else:
    cp_model = lazy_module("ortools.sat.python.cp_model")

__all__ = ["improve_placed", "solve_neighbourhood"]


def solve_neighbourhood(p: Problem, state: Residual, hood: list[int], placed: np.ndarray, deadline: Deadline,
         per_solve: float) -> bool:
    """Solve ``hood`` exactly with every member placed; commit it to ``state`` when that works."""
    saved = {v: release(p, state, v) for v in hood if placed[v]}
    keep = np.zeros(p.num_workloads, dtype=bool)
    keep[hood] = True
    capacity = np.where(p.capacity == UNLIMITED, UNLIMITED, state.capacity)
    quota = np.where(p.quota == UNLIMITED, UNLIMITED, state.quota)
    sub = restrict(p, keep, capacity=capacity, quota=quota)
    _block_outside(p, sub, hood, state)
    sub = keep_pairs(sub, _candidate_pairs(p, sub, hood, saved))
    y_sub = _solve_all_placed(sub, time_limit=max(min(per_solve, deadline.remaining()), 0.05))
    if y_sub is None:
        for v, ys in saved.items():
            state.take(p, v, ys)
        return False
    for i, v in enumerate(hood):
        lo, hi = int(state.starts[v]), int(state.starts[v + 1])
        mine = sub.pair_w == i
        ys = np.zeros(hi - lo, dtype=np.int64)
        # sub's pairs of v are a subset of v's pairs, both sorted by cluster
        ys[np.searchsorted(p.pair_c[lo:hi], sub.pair_c[mine])] = y_sub[mine]
        if ys.any():
            state.take(p, v, ys)
            placed[v] = True
    return True


#: candidate clusters per workload in a neighbourhood solve, besides those it and its partners use
CANDIDATES = 24


def _candidate_pairs(p: Problem, sub: Problem, hood: list[int], saved: dict[int, np.ndarray]) -> np.ndarray:
    """Pairs of ``sub`` worth offering: the cheapest with room, where the neighbourhood runs now,
    the best two of every spread group, and every pair of a broadcast."""
    score = pair_score(sub)
    open_ = sub.pair_ub > 0
    keep = np.zeros(sub.num_pairs, dtype=bool)
    now = np.zeros(p.num_clusters, dtype=bool)
    for v, ys in saved.items():
        lo = int(p.pair_starts[v])
        now[p.pair_c[lo:lo + len(ys)][ys > 0]] = True
    for i in range(len(hood)):
        lo = int(np.searchsorted(sub.pair_w, i, side="left"))
        hi = int(np.searchsorted(sub.pair_w, i, side="right"))
        if sub.broadcast[i]:
            keep[lo:hi] = True
            continue
        cand = np.nonzero(open_[lo:hi])[0]
        order = cand[np.argsort(score[lo:hi][cand], kind="stable")]
        keep[lo + order[:CANDIDATES]] = True
        keep[lo:hi] |= now[sub.pair_c[lo:hi]] & open_[lo:hi]
        keep[lo + concerns.offer(sub, Pairs(i, lo, hi, sub.pair_c[lo:hi]), order)] = True
    return keep


#: CP-SAT seconds spent lowering a neighbourhood's cost once it has a placement: what a repair is
#: for is placing; the cost LP (engine.solvers.refine) and improve_placed lower the cost afterwards
POLISH_SECONDS = 0.04


def _solve_all_placed(sub: Problem, *, time_limit: float) -> np.ndarray | None:
    """Replicas per pair placing *every* workload of ``sub`` at the lowest weighted cost, or ``None``.

    One CP-SAT call instead of the level-by-level solve: in a neighbourhood the
    priority levels are decided (all placed), so only feasibility and cost remain. One workload
    whose only rigidity is a cluster count, if any, is first filled cheapest first
    (:func:`engine.solvers.incremental.fill_counted`, exact where it answers).
    """
    filled = fill_counted(sub)
    if filled is not None:
        return filled.y
    compiled = compile_model(sub)
    model = compiled.model
    for placed in compiled.ctx.placed:
        model.add(placed == 1)
    set_objective(model, compiled.levels[-1])
    solver = cp_model.CpSolver()
    solver.parameters.max_time_in_seconds = time_limit
    solver.parameters.num_workers = 1
    stopper = stop_after_first(solver, POLISH_SECONDS)
    try:
        status = solver.solve(model, stopper)
    finally:
        stopper.cancel()
    if status not in (cp_model.OPTIMAL, cp_model.FEASIBLE):
        return None
    y: IntArray = np.array(solver.response_proto.solution, dtype=np.int64)[compiled.y_index]
    return y


def _block_outside(p: Problem, sub: Problem, hood: list[int], state: Residual) -> None:
    """Keep what the concerns ask of the workloads outside the neighbourhood (co-location: follow
    them, or avoid them): a pair of ``sub`` that no concern admits beside them gets no room."""
    inside = np.zeros(p.num_workloads, dtype=bool)
    inside[hood] = True
    for i, v in enumerate(hood):
        lo = int(np.searchsorted(sub.pair_w, i, side="left"))
        hi = int(np.searchsorted(sub.pair_w, i, side="right"))
        sl = p.pairs_of(v)  # sub keeps every pair of v, in the same order
        allow = concerns.admit_pairs(p, Pairs(v, sl.start, sl.stop, p.pair_c[sl]), state, sub.pair_ub[lo:hi], inside)
        sub.pair_ub[lo:hi][~allow] = 0


def improve_placed(problem: Problem, state: Residual, workloads: np.ndarray, *, deadline: Deadline) -> int:
    """Re-place ``workloads`` one at a time, exactly, where that is cheaper; returns how many moved.

    For workloads the LP cannot move (cluster counts, spread, Duplicated): each
    is taken out and solved alone against the residual capacity and quota
    (every constraint of its own, co-location with the rest kept), and the new
    placement is kept only when its (tier, weighted cost) is lower. Largest
    excess cost over the cheapest possible first, until ``deadline``.
    """
    if deadline.expired():
        return 0  # its set-up sorts every pair: seconds at millions of pairs
    p = problem
    weight = pair_weights(p)
    placed = placed_workloads(p, state.y)
    has_followers = concerns.anchored(p, placed)
    cost = np.bincount(p.pair_w, weights=state.y * weight, minlength=p.num_workloads)
    order = np.lexsort((weight, p.pair_w))
    first = np.minimum(np.searchsorted(p.pair_w[order], np.arange(p.num_workloads)), max(len(order) - 1, 0))
    cheapest = weight[order[first]] if len(order) else np.zeros(p.num_workloads)
    excess = cost - cheapest * np.bincount(p.pair_w, weights=state.y, minlength=p.num_workloads)
    todo = np.nonzero(workloads & placed & ~has_followers & (excess > 1e-9))[0]
    moved = 0
    for w in todo[np.argsort(-excess[todo], kind="stable")].tolist():
        if deadline.expired():
            break
        lo, hi = int(state.starts[w]), int(state.starts[w + 1])
        old = state.y[lo:hi].copy()
        old_key = (float((old * p.pair_tier[lo:hi]).sum()), float((old * weight[lo:hi]).sum()))
        if not solve_neighbourhood(p, state, [w], placed, deadline, 0.5):
            continue
        new = state.y[lo:hi]
        new_key = (float((new * p.pair_tier[lo:hi]).sum()), float((new * weight[lo:hi]).sum()))
        if new_key < (old_key[0], old_key[1] - 1e-9):
            moved += 1
        else:
            release(p, state, w)
            state.take(p, w, old)
    return moved
