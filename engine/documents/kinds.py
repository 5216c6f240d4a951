"""The documents of a bundle, as pydantic v2 models (spec section 1).

These types are the boundary of the engine: they validate input and give
errors that name the field. Nothing on the solver's hot path touches them;
:mod:`engine.problem` turns them into arrays once.

Field names follow the spec (camelCase in documents, snake_case here).
Unknown fields are errors, as ``kubectl apply --validate=strict`` would say.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import (
    AfterValidator,
    BeforeValidator,
    Field,
    field_validator,
    model_validator,
)

from engine.documents.fields import (
    LabelKey,
    LabelValue,
    Metadata,
    PriceMap,
    ResourceMap,
    _check_dns_label,
    _check_label_key,
    _check_resources,
    _check_subdomain,
    _Model,
    _whole_number,
)
from engine.limits import (
    MAX_LATENCY_MS,
    MAX_MOVES,
    MAX_PRIORITY,
    MAX_REPLICAS,
    MAX_TEXT,
    MAX_WEIGHT,
    WORKLOAD_TOTAL_FACTOR,
    echo,
)
from engine.quantity import max_quantity

__all__ = [
    "TOPOLOGY_LABELS",
    "Cluster",
    "ClusterAffinity",
    "ClusterAffinityTier",
    "ClusterSpec",
    "FieldSelector",
    "LabelSelector",
    "Objective",
    "ObjectiveSpec",
    "ObjectiveWeights",
    "PreferredClusterTerm",
    "SelectorRequirement",
    "Site",
    "SiteSpec",
    "Taint",
    "Tenant",
    "TenantSpec",
    "Toleration",
    "Workload",
    "WorkloadSource",
    "WorkloadSpec",
]


# --- selectors ---------------------------------------------------------------


class SelectorRequirement(_Model):
    """One ``matchExpressions`` entry, with Kubernetes semantics."""

    key: LabelKey
    operator: Literal["In", "NotIn", "Exists", "DoesNotExist", "Gt", "Lt"]
    values: list[LabelValue] = Field(default_factory=list)

    @model_validator(mode="after")
    def _values_fit_operator(self) -> SelectorRequirement:
        op = self.operator
        if op in ("In", "NotIn") and not self.values:
            raise ValueError(f"operator {op} needs at least one value")
        if op in ("Exists", "DoesNotExist") and self.values:
            raise ValueError(f"operator {op} takes no values")
        if op in ("Gt", "Lt"):
            if len(self.values) != 1:
                raise ValueError(f"operator {op} needs exactly one integer value")
            try:
                int(self.values[0])
            except ValueError as exc:
                raise ValueError(f"operator {op} compares integers, got {echo(self.values[0])}") from exc
        return self


class LabelSelector(_Model):
    match_labels: dict[LabelKey, LabelValue] = Field(default_factory=dict)
    match_expressions: list[SelectorRequirement] = Field(default_factory=list)


class FieldRequirement(SelectorRequirement):
    key: Literal["region", "zone", "provider"]


class FieldSelector(_Model):
    match_expressions: list[FieldRequirement] = Field(default_factory=list)


class ClusterAffinity(_Model):
    """A hard filter; every given condition must hold (Karmada semantics)."""

    cluster_names: list[str] = Field(default_factory=list)
    exclude: list[str] = Field(default_factory=list)
    label_selector: LabelSelector | None = None
    field_selector: FieldSelector | None = None


class ClusterAffinityTier(ClusterAffinity):
    affinity_name: str


class PreferredClusterTerm(ClusterAffinity):
    weight: int = Field(ge=1, le=100)


# --- Cluster, Site, Tenant ----------------------------------------------------


class Taint(_Model):
    key: LabelKey
    value: LabelValue = ""
    effect: Literal["NoSchedule", "PreferNoSchedule", "NoExecute"]


class Toleration(_Model):
    """A Kubernetes toleration; ``tolerationSeconds`` only with ``effect: NoExecute``, as in Kubernetes.

    A NoExecute taint tolerated only for ``tolerationSeconds`` is tolerated for the
    replicas that run there today, not for new ones (see ``docs/karmada.md``).
    """

    key: Annotated[str, AfterValidator(lambda v: v and _check_label_key(v))] = ""
    operator: Literal["Equal", "Exists"] = "Equal"
    value: LabelValue = ""
    effect: Literal["NoSchedule", "PreferNoSchedule", "NoExecute", ""] = ""
    toleration_seconds: int | None = Field(default=None, ge=0, le=2**63 - 1)

    _whole_seconds = field_validator("toleration_seconds", mode="before")(lambda cls, v: _whole_number(v))

    @model_validator(mode="after")
    def _exists_has_no_value(self) -> Toleration:
        if self.operator == "Exists" and self.value:
            raise ValueError("a toleration with operator Exists takes no value")
        if not self.key and self.operator != "Exists":
            raise ValueError("a toleration with an empty key must use operator Exists")
        if self.toleration_seconds is not None and self.effect != "NoExecute":
            raise ValueError(
                f"tolerationSeconds applies only to effect NoExecute, got effect {self.effect or 'empty'!r}"
            )
        return self


#: the spec fields of a Cluster that are also exposed as labels (spec 1)
TOPOLOGY_LABELS = {
    "region": "topology.kubernetes.io/region",
    "zone": "topology.kubernetes.io/zone",
    "provider": "placement.berth.dev/provider",
}


class ClusterSpec(_Model):
    region: LabelValue | None = None
    zone: LabelValue | None = None
    provider: LabelValue | None = None
    capacity: ResourceMap = Field(default_factory=dict)
    price: PriceMap = Field(default_factory=dict)
    taints: list[Taint] = Field(default_factory=list)


class Cluster(_Model):
    api_version: Literal["placement.berth.dev/v1alpha1"]
    kind: Literal["Cluster"]
    metadata: Metadata
    spec: ClusterSpec

    @model_validator(mode="after")
    def _fields_from_labels(self) -> Cluster:
        """Spec 1 exposes ``region``, ``zone`` and ``provider`` as labels; a cluster that gives one
        only as its label has that field (README, "Decisions where the spec is silent"), so every
        reader (filters, spread, the verifier, renderers) sees one value. The spec field wins
        when both are given."""
        for name, label in TOPOLOGY_LABELS.items():
            if getattr(self.spec, name) is None and label in self.metadata.labels:
                setattr(self.spec, name, self.metadata.labels[label])
        return self

    @property
    def name(self) -> str:
        return self.metadata.name

    def effective_labels(self) -> dict[str, str]:
        """Labels plus the well-known topology labels derived from the spec."""
        labels = dict(self.metadata.labels)
        if self.spec.region is not None:
            labels["topology.kubernetes.io/region"] = self.spec.region
        if self.spec.zone is not None:
            labels["topology.kubernetes.io/zone"] = self.spec.zone
        if self.spec.provider is not None:
            labels["placement.berth.dev/provider"] = self.spec.provider
        return labels


class SiteSpec(_Model):
    latency_ms: dict[str, float] = Field(default_factory=dict)

    @field_validator("latency_ms")
    @classmethod
    def _non_negative(cls, value: dict[str, float]) -> dict[str, float]:
        for cluster, ms in value.items():
            if not 0 <= ms <= MAX_LATENCY_MS:
                raise ValueError(
                    f"latency to {echo(cluster)} must be a number of ms from 0 to {MAX_LATENCY_MS:g}, got {ms}"
                )
        return value


class Site(_Model):
    api_version: Literal["placement.berth.dev/v1alpha1"]
    kind: Literal["Site"]
    metadata: Metadata
    spec: SiteSpec

    @property
    def name(self) -> str:
        return self.metadata.name


def _check_quantities(value: Any) -> dict[str, str]:
    """A ``{resource: quantity}`` map kept as written (LimitRange), each quantity checked."""
    _check_resources(value)
    return {name: str(raw) for name, raw in value.items()}


QuantityMap = Annotated[dict[str, str], BeforeValidator(_check_quantities)]


class LimitRangeItem(_Model):
    """One ``spec.limits`` entry of a Kubernetes LimitRange."""

    type: Literal["Container", "Pod", "PersistentVolumeClaim"]
    default: QuantityMap | None = None
    default_request: QuantityMap | None = None
    max: QuantityMap | None = None
    min: QuantityMap | None = None
    max_limit_request_ratio: QuantityMap | None = None


class LimitRangeSpec(_Model):
    limits: list[LimitRangeItem] = Field(min_length=1)


class TenantSpec(_Model):
    cluster_selector: ClusterAffinity | None = None
    quota: ResourceMap = Field(default_factory=dict)
    # isolation in every cluster the tenant uses (docs/tenancy.md)
    headroom: ResourceMap = Field(default_factory=dict)
    limit_range: LimitRangeSpec | None = None
    groups: list[Annotated[str, Field(min_length=1, max_length=MAX_TEXT)]] = Field(default_factory=list)
    cluster_role: Annotated[str, AfterValidator(lambda v: _check_subdomain(v, "clusterRole"))] = "edit"

    @field_validator("cluster_selector", mode="before")
    @classmethod
    def _bare_label_selector(cls, value: Any) -> Any:
        # ``clusterSelector: {matchLabels: ..}`` is a label selector, as in the spec.
        if isinstance(value, dict) and ({"matchLabels", "matchExpressions"} & value.keys()):
            extra = set(value) - {"matchLabels", "matchExpressions"}
            if not extra:
                return {"labelSelector": value}
        return value


class Tenant(_Model):
    api_version: Literal["placement.berth.dev/v1alpha1"]
    kind: Literal["Tenant"]
    metadata: Metadata
    spec: TenantSpec = Field(default_factory=TenantSpec)

    @property
    def name(self) -> str:
        return self.metadata.name


# --- Workload -------------------------------------------------------------------


class WorkloadSource(_Model):
    path: str

    @field_validator("path")
    @classmethod
    def _plain_path(cls, value: str) -> str:
        # NUL and control characters, or huge paths, make every file call fail later
        if not value or len(value) > MAX_TEXT or any(ord(ch) < 32 or ord(ch) == 127 for ch in value):
            raise ValueError(
                f"expected a folder path of at most {MAX_TEXT} characters without control characters, "
                f"got {echo(value)}"
            )
        if any(len(part.encode("utf-8", "surrogatepass")) > 255 for part in value.split("/")):
            raise ValueError(f"a folder name in {echo(value)} is longer than 255 bytes")
        return value


class WorkloadExports(_Model):
    """The Service of the workload's base that clients on other clusters reach (docs/connectivity.md)."""

    service: Annotated[str, AfterValidator(lambda v: _check_dns_label(v, "service"))]
    via: Literal["mcs", "istio"] = "mcs"


class WorkloadSpec(_Model):
    replicas: int = Field(ge=1, le=MAX_REPLICAS)
    resources: ResourceMap = Field(default_factory=dict)
    priority: int = Field(default=0, ge=-MAX_PRIORITY, le=MAX_PRIORITY)
    policy: str | None = None
    depends_on: list[str] = Field(default_factory=list)
    source: WorkloadSource | None = None
    exports: WorkloadExports | None = None

    @field_validator("resources")
    @classmethod
    def _one_pod(cls, value: dict[str, int]) -> dict[str, int]:
        # Kubernetes counts one pod per replica; any other request would be silently replaced
        if value.get("pods", 1) != 1:
            raise ValueError(f"pods: each replica is one pod, so a pods request can only be 1, got {value['pods']}")
        return value

    @model_validator(mode="after")
    def _exports_need_a_base(self) -> WorkloadSpec:
        if self.exports is not None and self.source is None:
            raise ValueError("exports names a Service of the workload's base: give spec.source too")
        return self

    @model_validator(mode="after")
    def _total_in_range(self) -> WorkloadSpec:
        for name, amount in self.resources.items():
            limit, written = max_quantity(name)
            if amount * self.replicas > WORKLOAD_TOTAL_FACTOR * limit:
                raise ValueError(
                    f"replicas x resources.{name} is out of range: a workload may request at most "
                    f"{WORKLOAD_TOTAL_FACTOR} x {written} in total"
                )
        return self

    @field_validator("replicas", "priority", mode="before")
    @classmethod
    def _strict_int(cls, value: Any) -> Any:
        if isinstance(value, bool) or (isinstance(value, float) and not value.is_integer()):
            raise ValueError(f"expected an integer, got {echo(value)}")
        if isinstance(value, str):
            raise ValueError(f"expected an integer, got the string {echo(value)}")
        return value


class Workload(_Model):
    api_version: Literal["placement.berth.dev/v1alpha1"]
    kind: Literal["Workload"]
    metadata: Metadata
    spec: WorkloadSpec

    @property
    def key(self) -> str:
        return f"{self.metadata.namespace}/{self.metadata.name}"


# --- Objective ------------------------------------------------------------------


class ObjectiveWeights(_Model):
    cost: float = Field(default=1.0, ge=0, le=MAX_WEIGHT)
    latency: float = Field(default=0.001, ge=0, le=MAX_WEIGHT)
    moves: float = Field(default=0.2, ge=0, le=MAX_WEIGHT)
    clusters: float = Field(default=0.1, ge=0, le=MAX_WEIGHT)
    preference: float = Field(default=0.01, ge=0, le=MAX_WEIGHT)
    prefer_no_schedule: float = Field(default=0.05, ge=0, le=MAX_WEIGHT)


class ObjectiveSpec(_Model):
    weights: ObjectiveWeights = Field(default_factory=ObjectiveWeights)
    max_moves: int | None = Field(default=None, ge=0, le=MAX_MOVES)


class Objective(_Model):
    api_version: Literal["placement.berth.dev/v1alpha1"]
    kind: Literal["Objective"]
    metadata: Metadata
    spec: ObjectiveSpec = Field(default_factory=ObjectiveSpec)



#: Kinds without a namespace; the namespace of the rest defaults to ``default``.
CLUSTER_SCOPED = frozenset({"Cluster", "Site", "Tenant", "Objective", "ClusterPlacementPolicy"})
