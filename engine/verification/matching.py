"""Selector, toleration and policy matching, written again from the spec and Kubernetes semantics."""

from __future__ import annotations

from collections.abc import Mapping

from engine.documents.bundle import Bundle
from engine.documents.kinds import (
    Cluster,
    ClusterAffinity,
    FieldSelector,
    LabelSelector,
    SelectorRequirement,
    Taint,
    Toleration,
    Workload,
)
from engine.documents.policy import PlacementPolicy, PlacementPolicySpec, ResourceSelector

__all__ = [
    "_policy_spec",
    "_requirement_holds",
    "_selector_rank",
    "affinity_matches",
    "field_selector_matches",
    "label_selector_matches",
    "policies_by_namespace",
    "tolerates",
    "untolerated_taints",
]


# --- matching, written from the spec and Kubernetes semantics ----------------------


def _requirement_holds(req: SelectorRequirement, value: str | None) -> bool:
    """One ``matchExpressions`` entry against the value of its key (``None`` = absent)."""
    op = req.operator
    if op == "Exists":
        return value is not None
    if op == "DoesNotExist":
        return value is None
    if op == "In":
        return value is not None and value in req.values
    if op == "NotIn":
        return value is None or value not in req.values
    # Gt / Lt: the value must exist and parse as an integer.
    if value is None:
        return False
    try:
        have, bound = int(value), int(req.values[0])
    except ValueError:
        return False
    return have > bound if op == "Gt" else have < bound


def label_selector_matches(selector: LabelSelector, labels: Mapping[str, str]) -> bool:
    """Kubernetes label selector: every matchLabels pair and every expression hold."""
    for key, value in selector.match_labels.items():
        if labels.get(key) != value:
            return False
    return all(_requirement_holds(r, labels.get(r.key)) for r in selector.match_expressions)


def field_selector_matches(selector: FieldSelector, cluster: Cluster) -> bool:
    """Field selector on ``region``, ``zone`` or ``provider`` of ``Cluster.spec``."""
    return all(
        _requirement_holds(r, getattr(cluster.spec, r.key)) for r in selector.match_expressions
    )


def affinity_matches(affinity: ClusterAffinity, cluster: Cluster) -> bool:
    """Every given condition of a cluster affinity holds (Karmada semantics)."""
    name = cluster.metadata.name
    if affinity.cluster_names and name not in affinity.cluster_names:
        return False
    if name in affinity.exclude:
        return False
    if affinity.label_selector is not None and not label_selector_matches(
        affinity.label_selector, cluster.effective_labels()
    ):
        return False
    return affinity.field_selector is None or field_selector_matches(
        affinity.field_selector, cluster
    )


def tolerates(toleration: Toleration, taint: Taint) -> bool:
    """Kubernetes ``Toleration.ToleratesTaint``."""
    if toleration.effect and toleration.effect != taint.effect:
        return False
    if not toleration.key:  # empty key with Exists tolerates every key
        return toleration.operator == "Exists"
    if toleration.key != taint.key:
        return False
    return toleration.operator == "Exists" or toleration.value == taint.value


def untolerated_taints(
    spec: PlacementPolicySpec | None, cluster: Cluster, effects: tuple[str, ...] = ("NoSchedule", "NoExecute")
) -> list[Taint]:
    """The taints of ``cluster`` that the policy does not tolerate and that bind with one of ``effects``.

    A NoExecute taint that only tolerations with ``tolerationSeconds`` tolerate is
    tolerated for running replicas, not new ones (docs/karmada.md): it is returned as
    the NoSchedule taint it then acts as.
    """
    tols = spec.tolerations if spec else []
    out: list[Taint] = []
    for t in cluster.spec.taints:
        if t.effect not in ("NoSchedule", "NoExecute"):
            continue
        matching = [x for x in tols if tolerates(x, t)]
        if any(x.toleration_seconds is None for x in matching):
            continue
        bound = t.model_copy(update={"effect": "NoSchedule"}) if matching else t
        if bound.effect in effects:
            out.append(bound)
    return out


def _selector_rank(sel: ResourceSelector, w: Workload) -> int:
    """docs/karmada.md: 3 a match by name, 2 by label selector (ignored when a name is given),
    1 a selector with neither (every workload in scope), 0 no match."""
    if sel.namespace is not None and sel.namespace != w.metadata.namespace:
        return 0
    if sel.name is not None:
        return 3 if sel.name == w.metadata.name else 0
    if sel.label_selector is not None:
        return 2 if label_selector_matches(sel.label_selector, w.metadata.labels) else 0
    return 1


def policies_by_namespace(bundle: Bundle) -> dict[str, list[PlacementPolicy]]:
    """The bundle's PlacementPolicies per namespace, in their declared order (one pass, so that
    resolving thousands of workloads does not scan every policy for each)."""
    out: dict[str, list[PlacementPolicy]] = {}
    for p in bundle.policies:
        out.setdefault(p.metadata.namespace or "", []).append(p)
    return out


def _policy_spec(bundle: Bundle, w: Workload,
                 by_namespace: Mapping[str, list[PlacementPolicy]] | None = None) -> PlacementPolicySpec | None:
    """The policy that applies to ``w``, read again from docs/karmada.md: its ``spec.policy``; else
    the matching PlacementPolicies of its namespace, else the matching ClusterPlacementPolicies,
    by explicit priority (high first), implicit priority (high first), name (alphabetical).
    ``by_namespace``: :func:`policies_by_namespace` of the bundle, when the caller has it."""
    ns = w.metadata.namespace
    mine = (by_namespace if by_namespace is not None else policies_by_namespace(bundle)).get(ns or "", [])
    if w.spec.policy is not None:
        named = [p for p in mine if p.metadata.name == w.spec.policy]
        return named[0].spec if named else None
    for pool in (mine, bundle.cluster_policies):
        ranked = []
        for p in pool:
            rank = max((_selector_rank(s, w) for s in p.spec.resource_selectors or []), default=0)
            if rank:
                ranked.append(((-p.spec.priority, -rank, p.metadata.name), p.spec))
        if ranked:
            return min(ranked, key=lambda item: item[0])[1]
    return None
