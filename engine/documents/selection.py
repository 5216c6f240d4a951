"""Which policy applies to a workload: its own ``spec.policy``, else Karmada's policy selection.

Karmada binds a resource to the PropagationPolicy whose ``resourceSelectors`` match it,
looking in the resource's namespace first and at ClusterPropagationPolicies only when none
there matches; among several matches the highest explicit ``priority`` wins, then the highest
implicit priority (a match by name beats one by label selector, which beats a match-all), then
the name that sorts first. Berth does the same with PlacementPolicy and ClusterPlacementPolicy,
and a workload that names its policy (``spec.policy``) always gets that one (docs/karmada.md).
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence

from engine.documents.kinds import Workload
from engine.documents.policy import ClusterPlacementPolicy, PlacementPolicy, ResourceSelector
from engine.documents.selectors import selector_mask

__all__ = ["AnyPolicy", "PolicySelector", "match_priority"]

AnyPolicy = PlacementPolicy | ClusterPlacementPolicy


def _selector_matches(sel: ResourceSelector, workload: Workload) -> bool:
    if sel.namespace is not None and sel.namespace != workload.metadata.namespace:
        return False
    if sel.name is not None:
        return sel.name == workload.metadata.name  # Karmada: labelSelector is ignored when name is set
    if sel.label_selector is not None:
        return bool(selector_mask(sel.label_selector, [dict(workload.metadata.labels)])[0])
    return True


def match_priority(policy: AnyPolicy, workload: Workload) -> int:
    """The implicit priority of ``policy`` for ``workload`` (its best matching selector), 0 = no match."""
    return max(
        (sel.implicit_priority() for sel in policy.spec.resource_selectors or [] if _selector_matches(sel, workload)),
        default=0,
    )


def _best(candidates: Sequence[AnyPolicy], workload: Workload) -> AnyPolicy | None:
    best: tuple[int, int, str] | None = None
    chosen: AnyPolicy | None = None
    for policy in candidates:
        implicit = match_priority(policy, workload)
        if not implicit:
            continue
        # bigger explicit, then bigger implicit, then the name that sorts first
        key = (-policy.spec.priority, -implicit, policy.metadata.name)
        if best is None or key < best:
            best, chosen = key, policy
    return chosen


class PolicySelector:
    """Policies indexed once (by namespace), so that each workload is resolved in a few comparisons."""

    def __init__(self, policies: Sequence[PlacementPolicy], cluster_policies: Sequence[ClusterPlacementPolicy]) -> None:
        self.named = {(p.metadata.namespace, p.metadata.name): p for p in policies}
        self.selecting: dict[str | None, list[PlacementPolicy]] = defaultdict(list)
        for p in policies:
            if p.spec.resource_selectors:
                self.selecting[p.metadata.namespace].append(p)
        self.cluster = [p for p in cluster_policies if p.spec.resource_selectors]

    def policy_for(self, workload: Workload) -> AnyPolicy | None:
        """The policy that applies to ``workload``, or ``None`` (Berth's default policy)."""
        ns = workload.metadata.namespace
        if workload.spec.policy is not None:
            return self.named.get((ns, workload.spec.policy))
        return _best(self.selecting.get(ns, []), workload) or _best(self.cluster, workload)
