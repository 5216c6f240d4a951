"""A fair greedy baseline in the style of Karmada / kube-scheduler.

Workloads are popped from a queue by priority (high first), then in arrival
order, as kube-scheduler's active queue does. For each one:

* **filter**: the same eligibility as Berth (the plugins' masks), and clusters
  whose *residual* capacity cannot take the smallest allowed count;
* **score** each remaining cluster, 0..100 per plugin and then weighted, as the
  scheduler framework does: ``TierOrder`` (earlier ``clusterAffinities`` tier
  first, Karmada tries tiers in order), ``Cost`` (cheaper per replica),
  ``Latency`` (closer to the site), ``LeastAllocated`` (more cpu left, the
  default spreading score);
* **assign** the replicas to the best clusters, honouring every hard
  constraint of spec section 2 (the same per-workload routine the engine uses
  for its own construction, :func:`engine.solvers.construct.place_one`), or leave the
  workload unplaced. Unschedulable workloads are retried once at the end, as
  Karmada requeues them.

The baseline never moves a workload it has placed: that is the point of the
comparison with a global optimiser.
"""

from __future__ import annotations

import time

import numpy as np

from engine import UNLIMITED, LevelResult, Problem, Residual, Solution, place_one

__all__ = ["greedy"]

#: plugin weights of the score (the framework's weighted sum)
WEIGHTS = {"tier": 1000.0, "cost": 2.0, "latency": 1.0, "least_allocated": 1.0}


def _normalise(values: np.ndarray) -> np.ndarray:
    """0..100, 0 for the best (lowest) value, like the framework's NormalizeScore."""
    if not len(values):
        return values
    lo, hi = float(values.min()), float(values.max())
    return np.zeros_like(values) if hi <= lo else 100.0 * (values - lo) / (hi - lo)


def greedy(problem: Problem) -> Solution:
    """Place ``problem`` workload by workload; always a valid plan."""
    start = time.monotonic()
    p = problem
    state = Residual.empty(p)
    score = np.zeros(p.num_pairs)
    per_replica = p.pair_cost.copy()
    cpu = p.resource_names.index("cpu") if "cpu" in p.resource_names else 0
    total_cpu = np.where(p.capacity[:, cpu] == UNLIMITED, 1, np.maximum(p.capacity[:, cpu], 1)).astype(float)
    order = np.lexsort((np.arange(p.num_workloads), -p.priority))

    def try_place(w: int) -> bool:
        lo, hi = int(state.starts[w]), int(state.starts[w + 1])
        pcs = p.pair_c[lo:hi]
        free = np.clip(state.capacity[pcs, cpu], 0, None) / total_cpu[pcs]
        score[lo:hi] = (
            WEIGHTS["tier"] * p.pair_tier[lo:hi]
            + WEIGHTS["cost"] * _normalise(per_replica[lo:hi])
            + WEIGHTS["latency"] * _normalise(p.pair_latency[lo:hi])
            + WEIGHTS["least_allocated"] * _normalise(-free)
        )
        return place_one(p, w, state, score)

    left = [w for w in order.tolist() if not try_place(w)]
    left = [w for w in left if not try_place(w)]
    y = state.y
    pair_prio = p.priority[p.pair_w]
    levels = [
        LevelResult(f"priority:{v}", float(y[pair_prio == v].sum()), float("nan"), False, 0.0)
        for v in sorted(set(p.priority.tolist()), reverse=True)
    ]
    return Solution(y, "Feasible", time.monotonic() - start, levels)
