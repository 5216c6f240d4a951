"""Karmada's ``weightPreference``: the fixed division of a Divided workload over its clusters.

Given the clusters eligible for a workload's new replicas, ``staticWeightList`` or
``dynamicWeight: AvailableReplicas`` fixes how many replicas each one gets
(docs/karmada.md, "Weighted division"): ``floor(replicas * weight / total)``, and the remainder
one by one to the heaviest clusters first, ties by name. :func:`engine.problem.build_problem`
turns the result into the upper bound of each pair (and drops the pairs that get none), so
``sum_c y = replicas`` alone fixes every count in every strategy; :mod:`engine.verification`
recomputes the division from the docs on its own.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np

from engine.documents.policy import StaticClusterWeight, WeightPreference
from engine.documents.selectors import LabelTable, affinity_mask
from engine.problem import UNLIMITED

__all__ = ["NO_LIMIT", "available_replicas", "divide", "division_of", "static_weights"]

#: available replicas of a cluster that no requested resource limits (Karmada's MaxInt32)
NO_LIMIT = 2**31 - 1


def static_weights(entries: list[StaticClusterWeight], cluster_names: list[str],
                   cluster_labels: Sequence[Mapping[str, str]] | LabelTable, candidates: np.ndarray) -> list[int]:
    """Weight of each candidate cluster: the first entry whose ``targetCluster`` matches it, else 0;
    every candidate weighs 1 when none matches any entry (as in Karmada)."""
    weights = [0] * len(candidates)
    masks = [affinity_mask(e.target_cluster, cluster_names, cluster_labels) for e in entries]
    for i, c in enumerate(candidates.tolist()):
        weights[i] = next((e.weight for e, mask in zip(entries, masks, strict=True) if mask[c]), 0)
    if not any(weights):
        weights = [1] * len(candidates)
    return weights


def available_replicas(request: np.ndarray, capacity: np.ndarray) -> list[int]:
    """Replicas of one request (R,) each cluster's capacity (K, R) holds; base units, UNLIMITED = none."""
    out: list[int] = []
    for row in capacity.tolist():
        room = NO_LIMIT
        for need, have in zip(request.tolist(), row, strict=True):
            if need > 0 and have != UNLIMITED:
                room = min(room, max(have, 0) // need)
        out.append(room)
    return out


def divide(replicas: int, names: list[str], weights: list[int]) -> list[int]:
    """``floor(replicas * w / total)`` each, then the remainder to the heaviest first (ties by name)."""
    total = sum(weights)
    if total <= 0:
        return [0] * len(weights)
    out = [replicas * w // total for w in weights]
    left = replicas - sum(out)
    order = sorted((i for i, w in enumerate(weights) if w > 0), key=lambda i: (-weights[i], names[i]))
    each, extra = divmod(left, len(order))
    for k, i in enumerate(order):
        out[i] += each + (1 if k < extra else 0)
    return out


def division_of(pref: WeightPreference, replicas: int, candidates: np.ndarray, cluster_names: list[str],
                cluster_labels: Sequence[Mapping[str, str]] | LabelTable, request: np.ndarray,
                capacity: np.ndarray) -> np.ndarray:
    """(C,) replicas per cluster that ``pref`` fixes over ``candidates`` (all 0: it cannot be placed).

    ``request`` (R,) and ``capacity`` (C, R) are base units (``pods`` counted per replica).
    """
    target = np.zeros(len(cluster_names), dtype=np.int64)
    if not len(candidates):
        return target
    names = [cluster_names[c] for c in candidates.tolist()]
    if pref.static_weight_list is not None:
        weights = static_weights(pref.static_weight_list, cluster_names, cluster_labels, candidates)
    else:
        weights = available_replicas(request, capacity[candidates])
        if sum(weights) < replicas:
            return target  # the eligible clusters cannot take them all (Karmada: not enough resources)
    target[candidates] = divide(replicas, names, weights)
    return target
