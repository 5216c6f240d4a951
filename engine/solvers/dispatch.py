"""The one place that chooses a strategy for a problem.

* ``maxMoves: 0`` with something running: what runs is pinned and only the new workloads are
  solved (:mod:`engine.solvers.pinned`), when that is exactly equivalent;
* too many eligible pairs for one CP-SAT model in the time limit (and no moves budget to keep):
  construction, repairs and LP refinement (:mod:`engine.solvers.large`);
* otherwise CP-SAT level by level (:mod:`engine.solvers.exact`), from a quick construction's
  plan (its hint and its floor) once the problem is big enough for that to pay;
* the service's fast path (:func:`solve_new`): a request alone against the residual, by the fill of
  :mod:`engine.solvers.incremental` where it is exact, else CP-SAT.
"""

from __future__ import annotations

import numpy as np

from engine.problem import Problem
from engine.solvers.exact import solve_exact
from engine.solvers.incremental import closed_form, fill, fill_counted
from engine.solvers.large import solve_large
from engine.solvers.pinned import solve_pinned
from engine.solvers.progress import ProgressCallback
from engine.solvers.solution import Deadline, Solution

__all__ = ["FLOOR_PAIRS", "LARGE_PAIRS", "choose", "solve_new", "solve_problem"]

#: above this many eligible pairs, :mod:`engine.solvers.large` builds the plan (CP-SAT model too big)
LARGE_PAIRS = 20_000
#: from this many pairs on, CP-SAT starts from the construction's plan (and never returns less)
FLOOR_PAIRS = 300


def solve_problem(
    problem: Problem,
    *,
    deadline: Deadline | None = None,
    time_limit: float = 10.0,
    workers: int | None = None,
    hint_y: np.ndarray | None = None,
    freeze_current: bool = False,
    on_progress: ProgressCallback | None = None,
) -> Solution:
    """Solve ``problem`` in the order of spec section 3 by ``deadline``.

    Args:
        problem: the normalised problem.
        deadline: when the whole solve (model building included) must end; without one,
            ``time_limit`` seconds from now.
        workers: CP-SAT workers; default 8 for large models, 1 for tiny ones.
        hint_y: replicas per pair to start from (for example the current placement).
        freeze_current: with ``maxMoves: 0``, keep the current placement exactly as it is, even
            where section 3 would add to it (a Duplicated workload below its most copies).
        on_progress: called at each level and each better solution of the exact strategy
            (:mod:`engine.solvers.progress`).
    """
    deadline = deadline if deadline is not None else Deadline(time_limit)
    strategy = choose(problem)
    if strategy == "pinned":
        # nothing may move: what runs today is a constant, solve only the new workloads around it
        pinned = solve_pinned(problem, deadline, frozen=freeze_current, solve=solve_problem)
        if pinned is not None:
            return pinned
        strategy = choose(problem, pinned=False)
    if strategy == "large":
        # too big for one CP-SAT model in the limit: construct by priority
        return solve_large(problem, deadline, hint_y=hint_y, stop=deadline)
    # a fast valid plan first (construction + exact repairs): the hint, and the floor of the result
    floor: Solution | None = None
    if problem.num_pairs >= FLOOR_PAIRS and not _keeps_moves(problem):
        floor = solve_large(problem, deadline.within(min(0.08 * deadline.remaining(), 1.5)), hint_y=hint_y)
        if hint_y is None:
            hint_y = floor.y
    return solve_exact(problem, deadline, workers=workers, hint_y=hint_y, floor=floor, on_progress=on_progress)


def solve_new(problem: Problem, deadline: Deadline) -> Solution:
    """The service's fast path: a request's workloads alone against the residual (:mod:`engine.solvers.incremental`),
    by the fill where its shape makes that exact (a cluster count too, where the fill keeps it), else CP-SAT level
    by level on one worker (a few hundred pairs)."""
    if closed_form(problem):
        return fill(problem)
    return fill_counted(problem) or solve_exact(problem, deadline, workers=1)


def _keeps_moves(problem: Problem) -> bool:
    """A moves budget over something that runs: only the exact model counts moves against it."""
    return problem.max_moves is not None and problem.has_current


def choose(problem: Problem, *, pinned: bool = True) -> str:
    """The strategy for ``problem``: ``pinned``, ``large`` or ``exact`` (``pinned`` falls back to the
    others when its shortcut is not exact for the problem; ``pinned=False`` asks which)."""
    if pinned and problem.max_moves == 0 and len(problem.current_n):
        return "pinned"
    if problem.num_pairs > LARGE_PAIRS and not _keeps_moves(problem):
        return "large"
    return "exact"
