"""Replicas moved, per spec section 3.3: a scale-down is not a move.

For a workload that stays placed, ``moves = sum_c max(0, cur - y) - max(0, sum cur - sum y)``,
which is ``min(removed, added)``: a replica counts as moved only when it is removed from one
cluster and one is added on another. A workload that becomes unplaced moves every replica it
runs (they are removed); one deleted from the bundle moves none (it is not in the problem).
Replicas on clusters that left the fleet are removed (``Problem.current_gone``).

The one home of that formula for arrays: the section-3 evaluator, the CP-SAT moves term
(:mod:`policies.moves`), the LP bound and the heuristics read it from here.
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt

from engine.problem import Problem

__all__ = ["moves_per_workload", "scale_down_credit"]


def moves_per_workload(problem: Problem, y: np.ndarray) -> np.ndarray:
    """(W,) replicas moved by ``y`` (replicas per pair) against the current placement."""
    p = problem
    out = np.zeros(p.num_workloads, dtype=np.int64)
    if not len(p.current_total):
        return out
    removed = p.current_gone.astype(np.int64).copy()
    kept_on_pairs = np.zeros(p.num_workloads, dtype=np.int64)
    if len(p.current_w):
        idx = p.pair_index(p.current_w, p.current_c)
        now = np.where(idx >= 0, y[np.maximum(idx, 0)], 0) if p.num_pairs else np.zeros(len(idx), np.int64)
        np.add.at(removed, p.current_w, np.maximum(p.current_n - now, 0))
        np.add.at(kept_on_pairs, p.current_w, np.minimum(p.current_n, now))
    total = np.bincount(p.pair_w, weights=y, minlength=p.num_workloads).astype(np.int64)
    added = total - kept_on_pairs
    placed = total > 0
    return np.where(placed, np.minimum(removed, added), removed)


def scale_down_credit(problem: Problem) -> np.ndarray:
    """(W,) ``max(0, sum cur - replicas)``: what a placed Divided workload removes without moving.

    For a Divided workload ``sum y = replicas`` when placed, so its moves are the replicas removed
    minus this constant; the CP-SAT model and the LP use it as a linear term.
    """
    p = problem
    if not len(p.current_total):
        return np.zeros(p.num_workloads, dtype=np.int64)
    credit: npt.NDArray[np.int64] = np.maximum(p.current_total - p.replicas, 0).astype(np.int64)
    return credit
