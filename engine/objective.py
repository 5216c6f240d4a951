"""Spec section 3, once: the evaluator of a placement and its lexicographic key.

Every strategy (exact, construction, repair, refinement, pinned, the service's fast path), the
explanations and the planner read the order of section 3 from here: replicas placed per
priority (highest first), then the tier sum, then the weighted objective. The helpers every one
of them needs about a placement live here too: which workloads are placed, how many copies a
Duplicated workload takes, the weighted coefficient of a replica on a pair.
"""

from __future__ import annotations

import numpy as np

from engine.moves import moves_per_workload
from engine.plan import ObjectiveValues
from engine.problem import Problem, broadcast_tiers, eligible_clusters

__all__ = [
    "better",
    "evaluate",
    "fewest_copies",
    "lex_key",
    "most_copies",
    "pair_weights",
    "placed_workloads",
]


def placed_workloads(problem: Problem, y: np.ndarray) -> np.ndarray:
    """(W,) bool: the workloads that ``y`` (replicas per pair) places at all."""
    placed = np.zeros(problem.num_workloads, dtype=bool)
    placed[problem.pair_w[np.flatnonzero(y > 0)]] = True  # a few pairs carry replicas of millions
    return placed


def fewest_copies(problem: Problem, w: int) -> int:
    """The fewest copies a plan can give workload ``w``: 1 for Divided; for Duplicated its
    ``clusters.min``, or for a broadcast every eligible cluster (of its smallest tier when it
    has several ``clusterAffinities`` tiers: spec 2.6, as Karmada)."""
    p = problem
    if not p.duplicated[w]:
        return 1
    tiers = broadcast_tiers(p, w) if p.broadcast[w] else None
    if tiers is not None:
        elig = eligible_clusters(p, w)
        return int(np.unique(tiers[elig], return_counts=True)[1].min()) if len(elig) else 0
    if p.broadcast[w]:
        return int(p.eligible_count[w])
    return int(p.count_min[w])


def most_copies(problem: Problem) -> np.ndarray:
    """(W,) the most copies each workload can have: 1 for Divided; for Duplicated every pair of a
    broadcast, else at most ``clusters.max`` of its pairs."""
    p = problem
    pairs = np.bincount(p.pair_w, minlength=p.num_workloads)
    return np.where(p.duplicated, np.where(p.broadcast, pairs, np.minimum(p.count_max, pairs)), 1)


def pair_weights(problem: Problem) -> np.ndarray:
    """Weighted-objective coefficient per replica of each pair (natural units), without ``used`` terms."""
    p = problem
    w = p.weights
    return (
        w.cost * p.pair_cost
        + w.latency * p.pair_latency
        - w.preference * p.pair_preference
        + w.prefer_no_schedule * p.pair_prefer_no_schedule.astype(float)
    )


def evaluate(problem: Problem, y: np.ndarray) -> ObjectiveValues:
    """Objective terms of section 3 for replicas ``y`` per pair, in natural units."""
    p = problem
    wts = p.weights
    on = y > 0
    by_priority: dict[str, int] = {}
    for value in sorted(set(p.priority.tolist()), reverse=True):
        sel = p.priority[p.pair_w] == value
        by_priority[str(value)] = int(y[sel].sum())
    cost = float((y * p.pair_cost).sum())
    latency = float((y * p.pair_latency).sum())
    preference = float((y * p.pair_preference).sum())
    pns = int(y[p.pair_prefer_no_schedule].sum())
    clusters_used = int((on & p.aggregated[p.pair_w]).sum())
    moves = int(moves_per_workload(p, y).sum())
    weighted = (
        wts.cost * cost
        + wts.latency * latency
        + wts.moves * moves
        + wts.clusters * clusters_used
        - wts.preference * preference
        + wts.prefer_no_schedule * pns
    )
    return ObjectiveValues(
        placed_by_priority=by_priority,
        tier=int((y * p.pair_tier).sum()),
        cost=round(cost, 6),
        latency=round(latency, 6),
        moves=moves,
        clusters_used=clusters_used,
        preference=round(preference, 6),
        prefer_no_schedule=pns,
        weighted=round(weighted, 6),
    )


def lex_key(values: ObjectiveValues) -> tuple[float, ...]:
    """Bigger is better, in the order of section 3: placed per priority (highest first), then the
    tier sum and the weighted objective (both lower is better)."""
    placed = [float(values.placed_by_priority[k]) for k in sorted(values.placed_by_priority, key=int, reverse=True)]
    return (*placed, -float(values.tier), -float(values.weighted))


def better(problem: Problem, a: np.ndarray, b: np.ndarray) -> bool:
    """Whether replicas ``a`` beat ``b`` in the order of spec section 3."""
    return lex_key(evaluate(problem, a)) > lex_key(evaluate(problem, b))
