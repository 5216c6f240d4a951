"""Shared selector maths for filters: label selectors, fields, cluster names.

Kubernetes semantics: all ``matchLabels`` and ``matchExpressions`` must hold;
``NotIn`` and ``DoesNotExist`` match clusters that lack the key; ``Gt``/``Lt``
compare integers and never match a missing or non-integer value.
"""

from __future__ import annotations

import numpy as np

from engine.documents.kinds import TOPOLOGY_LABELS, ClusterAffinity, LabelSelector, SelectorRequirement

__all__ = ["FIELD_LABELS", "affinity_mask", "selector_mask"]

#: fieldSelector keys and spreadByField values, as the labels Cluster exposes.
FIELD_LABELS = TOPOLOGY_LABELS


def _requirement(req: SelectorRequirement, labels: dict[str, str], key: str) -> bool:
    present = key in labels
    value = labels.get(key)
    match req.operator:
        case "In":
            return present and value in req.values
        case "NotIn":
            return not present or value not in req.values
        case "Exists":
            return present
        case "DoesNotExist":
            return not present
        case "Gt" | "Lt":
            if not present:
                return False
            try:
                number = int(str(value))
            except ValueError:
                return False
            bound = int(req.values[0])
            return number > bound if req.operator == "Gt" else number < bound
    return False  # pragma: no cover - Literal covers every operator


def selector_mask(selector: LabelSelector | None, cluster_labels: list[dict[str, str]]) -> np.ndarray:
    """Clusters whose labels match ``selector`` (``None`` matches all)."""
    out = np.ones(len(cluster_labels), dtype=bool)
    if selector is None:
        return out
    for c, labels in enumerate(cluster_labels):
        ok = all(labels.get(k) == v for k, v in selector.match_labels.items())
        ok = ok and all(_requirement(r, labels, r.key) for r in selector.match_expressions)
        out[c] = ok
    return out


def affinity_mask(
    affinity: ClusterAffinity | None,
    cluster_names: list[str],
    cluster_labels: list[dict[str, str]],
) -> np.ndarray:
    """Clusters that pass every condition of a ClusterAffinity (Karmada semantics)."""
    out = np.ones(len(cluster_names), dtype=bool)
    if affinity is None:
        return out
    if affinity.cluster_names:
        allow = set(affinity.cluster_names)
        out &= np.array([n in allow for n in cluster_names], dtype=bool)
    if affinity.exclude:
        deny = set(affinity.exclude)
        out &= np.array([n not in deny for n in cluster_names], dtype=bool)
    out &= selector_mask(affinity.label_selector, cluster_labels)
    if affinity.field_selector is not None:
        for req in affinity.field_selector.match_expressions:
            key = FIELD_LABELS[req.key]
            out &= np.array([_requirement(req, lab, key) for lab in cluster_labels], dtype=bool)
    return out
