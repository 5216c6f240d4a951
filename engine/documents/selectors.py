"""Shared selector maths for filters: label selectors, fields, cluster names.

Kubernetes semantics: all ``matchLabels`` and ``matchExpressions`` must hold;
``NotIn`` and ``DoesNotExist`` match clusters that lack the key; ``Gt``/``Lt``
compare integers and never match a missing or non-integer value.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence

import numpy as np

from engine.documents.kinds import TOPOLOGY_LABELS, ClusterAffinity, LabelSelector, SelectorRequirement

__all__ = ["FIELD_LABELS", "LabelTable", "affinity_mask", "selector_mask"]

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


class LabelTable:
    """The labels of many clusters as columns: one code array per key, so that a selector is a few
    numpy comparisons over every cluster instead of a Python loop per cluster (the build at 300 to
    5,000 clusters asks hundreds of selectors).

    ``names`` (optional) are the clusters' names, for ``clusterNames`` and ``exclude``.
    """

    def __init__(self, labels: Sequence[Mapping[str, str]], names: Sequence[str] | None = None) -> None:
        self.size = len(labels)
        self.names = list(names) if names is not None else None
        self._index = {n: i for i, n in enumerate(self.names)} if self.names is not None else {}
        self._values: dict[str, list[str]] = {}  # key -> distinct values; code = position
        self._codes: dict[str, np.ndarray] = {}  # key -> (C,) code of each cluster's value, -1 = missing
        positions: dict[str, dict[str, int]] = {}
        rows: dict[str, list[int]] = {}
        for c, row in enumerate(labels):
            for key, value in row.items():
                pos = positions.setdefault(key, {})
                code = pos.setdefault(value, len(pos))
                rows.setdefault(key, [-1] * self.size)[c] = code
        for key, pos in positions.items():
            self._values[key] = list(pos)
            self._codes[key] = np.array(rows[key], dtype=np.int32)
        self._numbers: dict[str, np.ndarray] = {}

    def codes(self, key: str) -> np.ndarray:
        """(C,) code of each cluster's value of ``key``, -1 where the cluster lacks it."""
        got = self._codes.get(key)
        return got if got is not None else np.full(self.size, -1, dtype=np.int32)

    def values(self, key: str) -> list[str]:
        """The distinct values of ``key``; a cluster's code indexes this list."""
        return self._values.get(key, [])

    def equals_any(self, key: str, values: Iterable[str]) -> np.ndarray:
        """(C,) clusters whose ``key`` is one of ``values``."""
        known = self._values.get(key, [])
        want = {str(v) for v in values}
        hit = np.array([v in want for v in known], dtype=bool)
        codes = self.codes(key)
        return hit[codes] & (codes >= 0) if len(known) else np.zeros(self.size, dtype=bool)

    def number(self, key: str) -> np.ndarray:
        """(C,) the integer value of ``key`` (float), NaN where missing or not an integer."""
        if key not in self._numbers:
            def parse(text: str) -> float:
                try:
                    return float(int(text))
                except ValueError:
                    return float("nan")

            table = np.array([parse(v) for v in self._values.get(key, [])] + [float("nan")], dtype=float)
            self._numbers[key] = table[self.codes(key)]  # code -1 reads the trailing NaN
        return self._numbers[key]

    def named(self, names: Iterable[str]) -> np.ndarray:
        """(C,) clusters named in ``names`` (needs ``names`` at construction)."""
        out = np.zeros(self.size, dtype=bool)
        out[[self._index[n] for n in names if n in self._index]] = True
        return out


def _as_table(cluster_labels: Sequence[Mapping[str, str]] | LabelTable) -> LabelTable:
    return cluster_labels if isinstance(cluster_labels, LabelTable) else LabelTable(cluster_labels)


def _requirement_mask(req: SelectorRequirement, table: LabelTable, key: str) -> np.ndarray:
    """:func:`_requirement` over every cluster of ``table`` at once."""
    present = table.codes(key) >= 0
    match req.operator:
        case "In":
            return table.equals_any(key, req.values)
        case "NotIn":
            return ~table.equals_any(key, req.values)
        case "Exists":
            return present
        case "DoesNotExist":
            return ~present
        case "Gt" | "Lt":
            number = table.number(key)
            bound = int(req.values[0])
            with np.errstate(invalid="ignore"):
                return np.asarray(number > bound if req.operator == "Gt" else number < bound)  # NaN: False
    return np.zeros(table.size, dtype=bool)  # pragma: no cover - Literal covers every operator


def selector_mask(selector: LabelSelector | None,
                  cluster_labels: Sequence[Mapping[str, str]] | LabelTable) -> np.ndarray:
    """Clusters whose labels match ``selector`` (``None`` matches all); a :class:`LabelTable` when
    many selectors read the same clusters."""
    table = _as_table(cluster_labels)
    out = np.ones(table.size, dtype=bool)
    if selector is None:
        return out
    for k, v in selector.match_labels.items():
        out &= table.equals_any(k, (v,))
    for r in selector.match_expressions:
        out &= _requirement_mask(r, table, r.key)
    return out


def affinity_mask(
    affinity: ClusterAffinity | None,
    cluster_names: Sequence[str],
    cluster_labels: Sequence[Mapping[str, str]] | LabelTable,
) -> np.ndarray:
    """Clusters that pass every condition of a ClusterAffinity (Karmada semantics)."""
    out = np.ones(len(cluster_names), dtype=bool)
    if affinity is None:
        return out
    table = _as_table(cluster_labels)
    if affinity.cluster_names or affinity.exclude:
        names = table if table.names == list(cluster_names) else \
            LabelTable([{}] * len(cluster_names), cluster_names)
        if affinity.cluster_names:
            out &= names.named(affinity.cluster_names)
        if affinity.exclude:
            out &= ~names.named(affinity.exclude)
    out &= selector_mask(affinity.label_selector, table)
    if affinity.field_selector is not None:
        for req in affinity.field_selector.match_expressions:
            out &= _requirement_mask(req, table, FIELD_LABELS[req.key])
    return out
