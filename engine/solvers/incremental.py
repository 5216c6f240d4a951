"""The service's fast path, solver side: a few new workloads against residual capacity, exactly.

Nothing committed moves (the service's promise), so committed replicas are constants of every
level of spec section 3 and the optimum of "committed + new" is the committed placement plus the
optimum of the new workloads alone against the capacity and quota the committed ones leave.
:mod:`engine.fast` builds that small problem from the warm arrays (the new workloads' eligible
clusters only, residual capacity and quota); :func:`engine.solvers.dispatch.solve_new` solves it:

* :func:`fill`, for **one Divided workload with a linear, separable objective** (no ``Aggregated``
  clusters term, ``minPerCluster`` at most 1, no cluster counts, no spread, no fixed division): each
  cluster is an independent box ``0 <= y[c] <= ub[c]`` (``maxPerCluster`` and room) and the quota
  depends only on the total. Level 1 places it iff the boxes hold ``replicas`` and the quota does;
  filling the clusters in the order of (tier, weighted coefficient per replica) then minimises the
  tier sum and, with it fixed, the weighted cost (exchange argument: moving one replica to a pair
  earlier in that order never makes either level worse, and the fill leaves no such move).
  Microseconds.
* :func:`fill_counted`, for one such workload whose only rigidity is a cluster count: the fill
  without the count, kept to it where that is exact. It is also the neighbourhoods' shortcut
  (:mod:`engine.solvers.neighbourhood`), which is why this module sits below them.
* **anything else** (Duplicated, Aggregated, spread, ``minPerCluster`` above 1, a count the fill
  cannot keep, several workloads that share the room): :func:`engine.solvers.exact.solve_exact` of
  that small problem, one worker. The dispatcher, which alone chooses strategies, decides by
  :func:`closed_form` and by whether :func:`fill_counted` answers.
"""

from __future__ import annotations

import time

import numpy as np

from engine.objective import evaluate, pair_weights
from engine.problem import UNLIMITED, Problem
from engine.solvers.solution import LevelResult, Solution
from policies import registry as concerns
from policies import replica_shape

__all__ = ["closed_form", "fill", "fill_counted"]


def closed_form(problem: Problem) -> bool:
    """Whether :func:`fill` is exact for ``problem`` (module docstring)."""
    p = problem
    if p.num_workloads != 1 or (len(p.fixed_division) and p.fixed_division[0]):
        return False
    # every concern says whether it lets the replicas split freely over the pairs (Duplicated, Aggregated,
    # minPerCluster above 1, cluster counts, spread and co-location do not)
    return not bool(concerns.rigid(p)[0])


def fill(problem: Problem) -> Solution:
    """The lexicographic optimum of a :func:`closed_form` problem (module docstring), proved by its shape."""
    start = time.monotonic()
    p = problem
    y = np.zeros(p.num_pairs, dtype=np.int64)
    replicas = int(p.replicas[0])
    t = int(p.tenant[0])
    quota_ok = t < 0 or all(q == UNLIMITED or replicas * int(p.request[0, r]) <= q for r, q in enumerate(p.quota[t]))
    if quota_ok and int(p.pair_ub.sum()) >= replicas:
        order = np.lexsort((p.pair_c, pair_weights(p), p.pair_tier))
        ub = p.pair_ub[order]
        before = np.cumsum(ub) - ub  # replicas on the pairs ahead of each
        y[order] = np.clip(replicas - before, 0, ub)
    return _proved(p, y, start)


def fill_counted(problem: Problem) -> Solution | None:
    """One workload, rigid by its cluster count at most: :func:`fill` with the count left out, made to
    keep the count (:func:`policies.replica_shape.keep_count`); ``None`` where that is not the optimum
    (it does not fit, or the count needs a search): CP-SAT decides then.

    Exact: the fill is the lexicographic optimum without the count (a relaxation), and ``keep_count``
    answers only where the optimum with the count follows from it. The neighbourhoods' one-workload
    solves (16 ms each by CP-SAT at 2,000 x 300, most of them cluster counts) and the service's fast
    path take it before CP-SAT.
    """
    start = time.monotonic()
    p = problem
    if p.num_workloads != 1:
        return None
    free = replica_shape.without_count(p)
    if not closed_form(free):
        return None
    y = fill(free).y
    if int(y.sum()) != int(p.replicas[0]):
        return None
    kept = replica_shape.keep_count(p, y, np.lexsort((free.pair_c, pair_weights(free), free.pair_tier)))
    return None if kept is None else _proved(p, kept, start)


def _proved(p: Problem, y: np.ndarray, start: float) -> Solution:
    """``y`` as an optimal solution, every level at its value (proved by the shape of the problem)."""
    values = evaluate(p, y)
    levels = [LevelResult(f"priority:{k}", float(v), float(v), True, 0.0) for k, v in values.placed_by_priority.items()]
    if p.pair_tier.any():
        levels.append(LevelResult("tier", float(values.tier), float(values.tier), True, 0.0))
    levels.append(LevelResult("weighted", float(values.weighted), float(values.weighted), True, 0.0))
    return Solution(y, "Optimal", time.monotonic() - start, levels)
