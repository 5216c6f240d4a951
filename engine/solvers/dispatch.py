"""The one place that chooses a strategy for a problem.

* ``maxMoves: 0`` with something running: what runs is pinned and only the new workloads are
  solved (:mod:`engine.solvers.pinned`), when that is exactly equivalent;
* too many eligible pairs for one CP-SAT model in the time limit (and no moves budget to keep):
  construction, repairs and LP refinement (:mod:`engine.solvers.large`);
* otherwise CP-SAT level by level (:mod:`engine.solvers.exact`), from a quick construction's
  plan (its hint and its floor) once the problem is big enough for that to pay.
"""

from __future__ import annotations

import time

import numpy as np

from engine.problem import Problem
from engine.solvers.exact import solve_exact
from engine.solvers.large import solve_large
from engine.solvers.pinned import solve_pinned
from engine.solvers.solution import Deadline, Solution

__all__ = ["FLOOR_PAIRS", "LARGE_PAIRS", "solve_problem"]

#: above this many eligible pairs, :mod:`engine.solvers.large` builds the plan (CP-SAT model too big)
LARGE_PAIRS = 20_000
#: from this many pairs on, CP-SAT starts from the construction's plan (and never returns less)
FLOOR_PAIRS = 300


def solve_problem(
    problem: Problem,
    *,
    time_limit: float = 10.0,
    workers: int | None = None,
    hint_y: np.ndarray | None = None,
    freeze_current: bool = False,
) -> Solution:
    """Solve ``problem`` in the order of spec section 3 within ``time_limit`` seconds.

    Args:
        problem: the normalised problem.
        time_limit: wall seconds for the whole solve (model building included).
        workers: CP-SAT workers; default 8 for large models, 1 for tiny ones.
        hint_y: replicas per pair to start from (for example the current placement).
        freeze_current: with ``maxMoves: 0``, keep the current placement exactly as it is, even
            where section 3 would add to it (a Duplicated workload below its most copies).
    """
    if problem.max_moves == 0 and len(problem.current_n):
        # nothing may move: what runs today is a constant, solve only the new workloads around it
        pinned = solve_pinned(problem, time_limit=time_limit, frozen=freeze_current, solve=solve_problem)
        if pinned is not None:
            return pinned
    keeps_moves = problem.max_moves is not None and problem.has_current
    if problem.num_pairs > LARGE_PAIRS and not keeps_moves:
        # too big for one CP-SAT model in the limit: construct by priority
        return solve_large(problem, time_limit=time_limit, hint_y=hint_y)
    deadline = Deadline(max(time_limit, 0.05), start=time.monotonic())
    # a fast valid plan first (construction + exact repairs): the hint, and the floor of the result
    floor: Solution | None = None
    if problem.num_pairs >= FLOOR_PAIRS and not keeps_moves:
        floor = solve_large(problem, time_limit=min(0.08 * time_limit, 1.5), hint_y=hint_y)
        if hint_y is None:
            hint_y = floor.y
    return solve_exact(problem, deadline, workers=workers, hint_y=hint_y, floor=floor)
