"""The replica shape as the solvers ask about it: the facts of :mod:`policies.replicas` outside its hooks.

Whether a workload's replicas add up (Divided) or come in whole copies (Duplicated), the
per-cluster minimum of a used cluster, the cost LP's per-pair cut and first columns, whether a
workload fits alone, whether a pinned copy count is final, and what a running workload keeps.
The solvers and the planner call these instead of reading ``duplicated``, ``min_per``,
``max_per``, ``count_min`` or ``count_max`` themselves (``tests/test_concern_homes.py`` keeps it so).
"""

from __future__ import annotations

from dataclasses import replace

import numpy as np

from engine.problem import BoolArray, IntArray, Problem

__all__ = ["divided", "fits_alone", "keep_count", "kept_count", "least_per_cluster", "lp_columns", "may_gain_copy",
           "most_per_pair", "without_count"]


def divided(problem: Problem) -> BoolArray:
    """(W,) workloads whose replicas add up to ``replicas`` when placed (Divided); a Duplicated one
    runs all of them on every cluster it uses, which :class:`ReplicaSchedulingPlugin` links."""
    return ~problem.duplicated


def least_per_cluster(problem: Problem) -> IntArray:
    """(W,) replicas a cluster holds at least once the workload uses it (``minPerCluster``, 1 at least)."""
    least: IntArray = np.maximum(problem.min_per, 1)
    return least


def most_per_pair(problem: Problem, fewest: IntArray) -> IntArray:
    """(P,) replicas a pair may hold in any plan placing the workloads with ``fewest`` clusters at least
    (the cost LP's cut): a Duplicated copy is whole; a Divided workload leaves ``minPerCluster`` on each
    of the other clusters it must use."""
    p = problem
    cut = p.replicas - (fewest - 1) * least_per_cluster(p)
    most: IntArray = np.where(p.duplicated[p.pair_w], p.replicas[p.pair_w],
                              np.minimum(p.pair_ub, np.maximum(cut[p.pair_w], 0)))
    return most


def lp_columns(problem: Problem, keep: int) -> IntArray:
    """(W,) cheapest pairs of each workload to start the LP with: every pair of a broadcast (all its
    copies), else ``keep``, and twice its cluster count (up to ``keep``) when that is more."""
    p = problem
    need: IntArray = np.where(p.broadcast, p.num_clusters, np.maximum(keep, 2 * p.count_max.clip(max=keep)))
    return need


def fits_alone(problem: Problem, w: int, fit: IntArray) -> bool:
    """Whether ``fit`` (replicas of ``w`` each of its pairs has room for) can take the whole workload:
    all its replicas together (Divided), or a whole copy on as many clusters as it needs (Duplicated)."""
    p = problem
    if p.duplicated[w]:
        return int((fit >= p.replicas[w]).sum()) >= max(int(p.count_min[w]), 1)
    return int(fit.sum()) >= int(p.replicas[w])


def may_gain_copy(problem: Problem, w: int, ys: IntArray, most: int) -> bool:
    """Whether a Duplicated ``w`` running ``ys`` (per pair) has fewer or more copies than the ``most``
    it could run (a pinned placement of it is then not final)."""
    return bool(problem.duplicated[w]) and int((ys > 0).sum()) != most


def kept_count(problem: Problem, w: int, spread: dict[str, int]) -> int | None:
    """Replicas ``w`` running ``spread`` today would keep: the total (Divided) or the count every
    copy has (Duplicated; ``None`` when its copies differ)."""
    counts = [n for n in spread.values() if n > 0]
    if not counts:
        return None
    if problem.duplicated[w]:
        return counts[0] if len(set(counts)) == 1 else None
    return sum(counts)


def without_count(problem: Problem) -> Problem:
    """The problem with every workload's cluster count left out (``clusters.min`` 1, no maximum)."""
    p = problem
    return replace(p, count_min=np.ones_like(p.count_min), count_max=np.full_like(p.count_max, max(p.num_pairs, 1)))


def keep_count(problem: Problem, y: IntArray, order: IntArray) -> IntArray | None:
    """One Divided workload: from ``y``, the optimum without its cluster count that fills its pairs in
    ``order`` (cheapest first, as :func:`engine.solvers.incremental.fill`), the optimum with the count,
    or ``None`` where that does not follow.

    On at least ``clusters.min`` clusters already: ``y`` itself. On fewer: one replica on each of the
    first ``min`` open pairs in ``order``, the rest filled in ``order`` (an optimal plan on at least
    ``min`` clusters uses those: any other cluster is no earlier in the order, and its replicas move
    to one of them without a worse key). More than ``clusters.max`` clusters: ``None``.
    """
    p = problem
    replicas, least, most = int(p.replicas[0]), int(p.count_min[0]), int(p.count_max[0])
    if p.num_workloads != 1 or p.duplicated[0] or p.min_per[0] > 1:
        return None
    if int((y > 0).sum()) < least:
        open_ = order[p.pair_ub[order] > 0]
        if len(open_) < least or replicas < least:
            return None
        y = np.zeros(p.num_pairs, dtype=np.int64)
        y[open_[:least]] = 1
        room = (p.pair_ub - y)[order]
        before = np.cumsum(room) - room
        y[order] += np.clip(replicas - least - before, 0, room)
    return y if least <= int((y > 0).sum()) <= most else None

