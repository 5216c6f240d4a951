"""Cost refinement at a fixed placement: an LP over the flexible workloads, then rounding.

Construction (:mod:`engine.solvers.construct`) decides *which* workloads are placed; this
step moves their replicas to where the weighted objective is lowest without
changing the replicas placed at any priority and without a worse tier sum:

1. Workloads whose placement is a plain split (Divided, no per-cluster
   minimum above 1, no cluster count, spread or co-location, not Aggregated)
   are *flexible*; every other workload keeps its replicas and its usage is
   taken off capacity and quota.
2. An LP (HiGHS, one model warm across rounds) minimises the weighted cost of the
   flexible workloads: ``sum_c y[w, c] = replicas[w]``, capacity and quota
   per resource, ``tier <= tier now``, over each workload's cheapest
   candidate pairs plus those it uses now; columns with a negative reduced
   cost are added and the LP re-solved (column generation, a few rounds).
3. Rounding: every workload first gets its LP replicas floored (they fit,
   since the LP solution does); the few replicas left go to the cheapest pair
   with room, biggest workloads first. A workload that finds no room moves
   replicas of free workloads off one of its clusters; workloads that still
   fail go first in the next attempt, and after that go back to where they
   were; a free workload that took their room moves on to its next cheapest
   pair with room, and goes back too only when there is none (the rest keep
   the LP's layout). Replicas rounded into a later tier than the workload
   used before go back to its earlier tiers (the LP keeps only the tier sum).
   If the result is not better in the order of section 3, the
   placement is returned unchanged: refinement never makes a plan worse.
   (Completing workloads one by one in turn, as before, failed at 95% load:
   early ones took the room the floors of later ones needed, and the whole
   refinement was lost.)

The LP is :mod:`engine.solvers.cost_lp`, the rounding :mod:`engine.solvers.rounding`.
"""

from __future__ import annotations

import numpy as np

from engine.objective import placed_workloads
from engine.problem import BoolArray, IntArray, Problem
from engine.solvers.cost_lp import column_generation
from engine.solvers.rounding import round_solution
from engine.solvers.solution import Deadline
from policies import registry as concerns
from policies import replica_shape

__all__ = ["flexible_workloads", "refine_cost"]


def flexible_workloads(problem: Problem) -> BoolArray:
    """(W,) bool: workloads whose replicas may be moved freely between their pairs (no concern makes
    them rigid, :func:`policies.registry.rigid`)."""
    return ~concerns.rigid(problem)


def refine_cost(problem: Problem, y: IntArray, *, deadline: Deadline, rounds: int = 3) -> IntArray:
    """A placement with the same replicas per workload and a lower weighted cost, or ``y`` itself.

    *Free* workloads (see :func:`flexible_workloads`) may use any of their pairs.
    Workloads with cluster counts, per-cluster bounds, spread without skew,
    Aggregated division or co-location keep their *set* of clusters (so those
    constraints keep holding) but may move replicas between those clusters.
    Duplicated workloads and spread with ``maxSkew`` keep their placement.
    """
    p = problem
    placed = placed_workloads(p, y)
    free = flexible_workloads(p) & placed
    semi = placed & ~free & ~concerns.fixed_layout(p)
    movable = free | semi
    if not movable.any():
        return y
    allowed = free[p.pair_w] | (semi[p.pair_w] & (y > 0))
    lower = np.where(semi[p.pair_w] & (y > 0), replica_shape.least_per_cluster(p)[p.pair_w], 0)
    # rounding takes about two thirds as long as the LP rounds at 10,000 workloads: time is kept for it
    result = column_generation(p, y, movable, free, lower, deadline=deadline.slice(0.6), rounds=rounds)
    if result is None:
        return y
    weight = result.weight
    out, _ = round_solution(p, y, x=result.x, cols=result.cols, cap=result.cap, weight=weight, flex=movable, first=semi,
                            allowed=allowed, deadline=deadline)
    if out is None:
        return y
    before = (float((y * p.pair_tier).sum()), float((y * weight).sum()))
    after = (float((out * p.pair_tier).sum()), float((out * weight).sum()))
    return out if after < before else y
