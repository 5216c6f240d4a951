"""The PlacementPolicy and ClusterPlacementPolicy kinds (spec section 2; Karmada's propagation policies).

Which clusters a workload may use and how its replicas are scheduled there: affinity and tiers,
tolerations, latency, replica scheduling (Divided, Duplicated, weights), cluster counts, spread,
co-location, and the resource selectors that bind workloads to a policy.
"""

from __future__ import annotations

from typing import Literal

from pydantic import (
    Field,
    field_validator,
    model_validator,
)

from engine.documents.fields import (
    LabelKey,
    Metadata,
    _Model,
    _whole_number,
)
from engine.documents.kinds import (
    ClusterAffinity,
    ClusterAffinityTier,
    LabelSelector,
    PreferredClusterTerm,
    Toleration,
)
from engine.limits import (
    MAX_CLUSTER_COUNT,
    MAX_GROUPS,
    MAX_LATENCY_MS,
    MAX_REPLICAS,
    MAX_SKEW,
    MAX_TIERS,
)

__all__ = [
    "AffinityTerm",
    "ClusterCount",
    "ClusterPlacementPolicy",
    "LatencyRequirement",
    "PlacementPolicy",
    "PlacementPolicySpec",
    "ReplicaScheduling",
    "ResourceSelector",
    "SpreadConstraint",
    "StaticClusterWeight",
    "WeightPreference",
]


# --- PlacementPolicy ------------------------------------------------------------


class LatencyRequirement(_Model):
    site: str
    max_ms: float | None = Field(default=None, ge=0, le=MAX_LATENCY_MS)


class StaticClusterWeight(_Model):
    """One ``staticWeightList`` entry: the clusters ``targetCluster`` matches get ``weight``."""

    target_cluster: ClusterAffinity
    weight: int = Field(ge=1, le=2**31 - 1)

    _strict_weight = field_validator("weight", mode="before")(lambda cls, v: _whole_number(v))


class WeightPreference(_Model):
    """Karmada's ``weightPreference``: a fixed division of a Divided workload (docs/karmada.md)."""

    static_weight_list: list[StaticClusterWeight] | None = None
    dynamic_weight: Literal["AvailableReplicas"] | None = None

    @model_validator(mode="after")
    def _one_rule(self) -> WeightPreference:
        if (self.static_weight_list is None) == (self.dynamic_weight is None):
            raise ValueError("give exactly one of staticWeightList and dynamicWeight")
        if self.static_weight_list is not None and not self.static_weight_list:
            raise ValueError("staticWeightList needs at least one entry")
        return self


class ReplicaScheduling(_Model):
    replica_scheduling_type: Literal["Divided", "Duplicated"] = "Divided"
    replica_division_preference: Literal["Weighted", "Aggregated"] = "Weighted"
    min_per_cluster: int = Field(default=1, ge=1, le=MAX_REPLICAS)
    max_per_cluster: int | None = Field(default=None, ge=1, le=MAX_REPLICAS)
    weight_preference: WeightPreference | None = None

    @model_validator(mode="after")
    def _bounds_ordered(self) -> ReplicaScheduling:
        if self.weight_preference is not None and (
            self.replica_scheduling_type != "Divided" or self.replica_division_preference != "Weighted"
        ):
            raise ValueError(
                "weightPreference divides the replicas of replicaSchedulingType Divided with "
                f"replicaDivisionPreference Weighted, got {self.replica_scheduling_type} / "
                f"{self.replica_division_preference}"
            )
        if self.max_per_cluster is not None and self.max_per_cluster < self.min_per_cluster:
            raise ValueError(
                f"maxPerCluster ({self.max_per_cluster}) is below minPerCluster "
                f"({self.min_per_cluster})"
            )
        return self


class ClusterCount(_Model):
    min: int = Field(default=1, ge=1, le=MAX_CLUSTER_COUNT)
    max: int | None = Field(default=None, ge=1, le=MAX_CLUSTER_COUNT)

    @model_validator(mode="after")
    def _ordered(self) -> ClusterCount:
        if self.max is not None and self.max < self.min:
            raise ValueError(f"max ({self.max}) is below min ({self.min})")
        return self


class SpreadConstraint(_Model):
    spread_by_field: Literal["region", "zone", "provider", "cluster"] | None = None
    spread_by_label: LabelKey | None = None
    min_groups: int = Field(default=1, ge=1, le=MAX_GROUPS)
    max_groups: int | None = Field(default=None, ge=1, le=MAX_GROUPS)
    max_skew: int | None = Field(default=None, ge=0, le=MAX_SKEW)

    @model_validator(mode="after")
    def _one_key(self) -> SpreadConstraint:
        if (self.spread_by_field is None) == (self.spread_by_label is None):
            raise ValueError("give exactly one of spreadByField and spreadByLabel")
        if self.max_groups is not None and self.max_groups < self.min_groups:
            raise ValueError(f"maxGroups ({self.max_groups}) is below minGroups ({self.min_groups})")
        return self


class AffinityTerm(_Model):
    workloads: list[str] = Field(default_factory=list)


class ResourceSelector(_Model):
    """Which workloads a policy applies to (Karmada's ``resourceSelectors`` entry).

    ``apiVersion`` and ``kind`` are optional and, when given, must name Berth's Workload.
    ``namespace`` narrows a ClusterPlacementPolicy; a PlacementPolicy selects only in its own
    namespace. With ``name`` set, ``labelSelector`` is ignored (as in Karmada); with neither, every
    Workload in scope matches.
    """

    api_version: Literal["placement.berth.dev/v1alpha1"] | None = None
    kind: Literal["Workload"] | None = None
    namespace: str | None = None
    name: str | None = None
    label_selector: LabelSelector | None = None

    def implicit_priority(self) -> int:
        """Karmada's implicit priority of a match: by name 3, by label selector 2, match-all 1."""
        if self.name is not None:
            return 3
        return 2 if self.label_selector is not None else 1


class PlacementPolicySpec(_Model):
    resource_selectors: list[ResourceSelector] | None = None
    priority: int = Field(default=0, ge=-(2**31), le=2**31 - 1)
    cluster_affinity: ClusterAffinity | None = None
    cluster_affinities: list[ClusterAffinityTier] | None = None
    preferred_clusters: list[PreferredClusterTerm] = Field(default_factory=list)
    tolerations: list[Toleration] = Field(default_factory=list)
    latency: LatencyRequirement | None = None
    replica_scheduling: ReplicaScheduling = Field(default_factory=ReplicaScheduling)
    clusters: ClusterCount | None = None
    spread_constraints: list[SpreadConstraint] = Field(default_factory=list)
    affinity: AffinityTerm | None = None
    anti_affinity: AffinityTerm | None = None

    _strict_priority = field_validator("priority", mode="before")(lambda cls, v: _whole_number(v))

    @field_validator("resource_selectors")
    @classmethod
    def _some_selectors(cls, value: list[ResourceSelector] | None) -> list[ResourceSelector] | None:
        if value is not None and not value:
            raise ValueError("resourceSelectors needs at least one selector (leave it out to select nothing)")
        return value

    @model_validator(mode="after")
    def _one_affinity_form(self) -> PlacementPolicySpec:
        if self.cluster_affinity is not None and self.cluster_affinities is not None:
            raise ValueError("give clusterAffinity or clusterAffinities, not both")
        if self.cluster_affinities is not None and self.replica_scheduling.weight_preference is not None:
            raise ValueError(
                "weightPreference fixes one division over the eligible clusters; it cannot be combined "
                "with clusterAffinities tiers (use clusterAffinity)"
            )
        if self.cluster_affinities is not None:
            if not self.cluster_affinities:
                raise ValueError("clusterAffinities needs at least one tier")
            if len(self.cluster_affinities) > MAX_TIERS:
                raise ValueError(f"clusterAffinities has {len(self.cluster_affinities)} tiers; expected at most "
                                 f"{MAX_TIERS} (tiers are ordered fallbacks: a handful in practice)")
            names = [t.affinity_name for t in self.cluster_affinities]
            if len(set(names)) != len(names):
                raise ValueError(f"clusterAffinities repeats an affinityName: {names}")
        return self


class PlacementPolicy(_Model):
    api_version: Literal["placement.berth.dev/v1alpha1"]
    kind: Literal["PlacementPolicy"]
    metadata: Metadata
    spec: PlacementPolicySpec = Field(default_factory=PlacementPolicySpec)


class ClusterPlacementPolicy(_Model):
    """A cluster-scoped PlacementPolicy (Karmada's ClusterPropagationPolicy): a fleet-wide default.

    It applies to the workloads its ``resourceSelectors`` match in any namespace, when no
    PlacementPolicy of the workload's own namespace matches it. ``resourceSelectors`` is
    required; ``affinity`` and ``antiAffinity`` name workloads of one namespace and belong in a
    namespaced PlacementPolicy (both checked in :func:`engine.documents.bundle.check_references`).
    """

    api_version: Literal["placement.berth.dev/v1alpha1"]
    kind: Literal["ClusterPlacementPolicy"]
    metadata: Metadata
    spec: PlacementPolicySpec
