"""Incremental placement: one (or a few) new workloads against what is already promised.

The placement-as-a-service path. Build an :class:`Incremental` once from the
problem and the committed replicas (``O(pairs)``), keep it warm, and call
:meth:`Incremental.place` per request (``O(pairs of the new workloads)``)::

    inc = Incremental(problem, committed_y)          # once, when the fleet refreshes
    sol = inc.place(np.array([w]), commit=True)      # per request: a few milliseconds

:func:`place_incremental` is the one-shot pure function
``place_incremental(problem, committed_y, new, *, time_limit=1.0) -> Solution``:
it builds the state and places the workloads where ``new`` is true.

Semantics: committed replicas never move. New workloads are placed one at a
time by priority (high first) with :func:`engine.solvers.construct.place_one` against the
residual capacity and quota: all or nothing, every hard constraint of spec
section 2 for that workload (bounds, count, spread and skew, Duplicated,
affinity to committed partners, anti-affinity, capacity, quota), earlier
tiers first, then the lowest weighted objective per replica. For a plain
Divided workload this is the exact lexicographic optimum of its own placement
(replicas are independent and costs linear); for workloads with counts or
spread it is a valid plan, not a proved optimum. ``Solution.y`` holds the
replicas of *every* pair (committed plus new); ``status`` is ``Feasible``
(some of ``new`` may be unplaced: ``y`` is zero on their pairs).
"""

from __future__ import annotations

import time

import numpy as np

from engine.problem import Problem
from engine.solvers.construct import Residual, pair_score, place_one
from engine.solvers.solution import LevelResult, Solution

__all__ = ["Incremental", "place_incremental"]


class Incremental:
    """Residual capacity and quota after ``committed_y``, kept warm between calls."""

    def __init__(self, problem: Problem, committed_y: np.ndarray) -> None:
        p = problem
        self.problem = p
        self.state = Residual.empty(p)
        self.score = pair_score(p)
        y = np.asarray(committed_y, dtype=np.int64)
        self.state.y = y.copy()
        # charge capacity and quota with everything committed, vectorised
        for r in range(len(p.resource_names)):
            amount = y * p.request[p.pair_w, r]
            self.state.capacity[:, r] -= np.bincount(p.pair_c, weights=amount, minlength=p.num_clusters).astype(
                np.int64
            )
            if len(p.tenant_names):
                t = p.tenant[p.pair_w]
                ok = t >= 0
                self.state.quota[:, r] -= np.bincount(
                    t[ok], weights=amount[ok], minlength=len(p.tenant_names)
                ).astype(np.int64)

    def place(self, workloads: np.ndarray, *, commit: bool = True) -> list[int]:
        """Place ``workloads`` (indices), highest priority first; returns those placed.

        With ``commit=False`` the residual state is left as it was (a dry run);
        the placed replicas are still readable from ``self.state.y`` until the
        next call.
        """
        p = self.problem
        ws = np.asarray(workloads, dtype=np.int64)
        ws = ws[np.argsort(-p.priority[ws], kind="stable")]
        if not commit:
            saved = (self.state.capacity.copy(), self.state.quota.copy())
        placed = [int(w) for w in ws.tolist() if place_one(p, int(w), self.state, self.score)]
        if not commit:
            self.state.capacity, self.state.quota = saved
        return placed


def place_incremental(
    problem: Problem, committed_y: np.ndarray, new: np.ndarray, *, time_limit: float = 1.0
) -> Solution:
    """Place the workloads where ``new`` is true around ``committed_y`` (which must be zero on them).

    Args:
        problem: the full problem (every workload, committed and new).
        committed_y: replicas per pair already promised; never moved.
        new: (W,) bool, the workloads to place now.
        time_limit: accepted for API symmetry with :func:`engine.solvers.dispatch.solve_problem`;
            the construction takes milliseconds.

    Returns:
        A :class:`~engine.solvers.solution.Solution` whose ``y`` covers every pair.
    """
    del time_limit
    start = time.monotonic()
    inc = Incremental(problem, committed_y)
    inc.place(np.nonzero(new)[0])
    y = inc.state.y
    levels = [LevelResult("placed", float(y[new[problem.pair_w]].sum()), float("nan"), False, 0.0)]
    return Solution(y, "Feasible", time.monotonic() - start, levels)
