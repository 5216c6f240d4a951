"""The documents of a bundle, as pydantic v2 models (spec section 1).

These types are the boundary of the engine: they validate input and give
errors that name the field. Nothing on the solver's hot path touches them;
:mod:`engine.problem` turns them into arrays once.

Field names follow the spec (camelCase in documents, snake_case here).
Unknown fields are errors, as ``kubectl apply --validate=strict`` would say.
"""

from __future__ import annotations

import re
from typing import Annotated, Any, Literal

from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    field_validator,
    model_validator,
)
from pydantic.alias_generators import to_camel

from engine.limits import (
    MAX_CLUSTER_COUNT,
    MAX_GROUPS,
    MAX_LATENCY_MS,
    MAX_MOVES,
    MAX_PRICE,
    MAX_PRIORITY,
    MAX_REPLICAS,
    MAX_SKEW,
    MAX_TEXT,
    MAX_WEIGHT,
    WORKLOAD_TOTAL_FACTOR,
    echo,
)
from engine.quantity import QuantityError, max_quantity, parse_quantity

__all__ = [
    "API_VERSION",
    "TOPOLOGY_LABELS",
    "AffinityTerm",
    "Cluster",
    "ClusterAffinity",
    "ClusterAffinityTier",
    "ClusterCount",
    "ClusterPlacementPolicy",
    "ClusterSpec",
    "Document",
    "FieldSelector",
    "LabelSelector",
    "LatencyRequirement",
    "Metadata",
    "Objective",
    "ObjectiveSpec",
    "ObjectiveWeights",
    "PlacementPolicy",
    "PlacementPolicySpec",
    "PreferredClusterTerm",
    "ReplicaScheduling",
    "ResourceSelector",
    "SelectorRequirement",
    "Site",
    "SiteSpec",
    "SpreadConstraint",
    "StaticClusterWeight",
    "Taint",
    "Tenant",
    "TenantSpec",
    "Toleration",
    "WeightPreference",
    "Workload",
    "WorkloadSource",
    "WorkloadSpec",
]

API_VERSION = "placement.berth.dev/v1alpha1"

#: names and namespaces become object names, folder names and label values: DNS-1123 labels.
#: Patterns are used with ``fullmatch`` after a length check (no backtracking on huge input).
_DNS1123_LABEL = re.compile(r"[a-z0-9]([-a-z0-9]*[a-z0-9])?")
_DNS1123_SUBDOMAIN = re.compile(r"[a-z0-9]([-a-z0-9.]*[a-z0-9])?")
_LABEL_NAME = re.compile(r"[A-Za-z0-9]([-A-Za-z0-9_.]*[A-Za-z0-9])?")
_LABEL_VALUE = re.compile(r"([A-Za-z0-9]([-A-Za-z0-9_.]*[A-Za-z0-9])?)?")


def is_dns_label(value: str) -> bool:
    """A DNS-1123 label: at most 63 of ``[a-z0-9-]``, alphanumeric at both ends."""
    return len(value) <= 63 and _DNS1123_LABEL.fullmatch(value) is not None


def is_label_key(value: str) -> bool:
    """A Kubernetes label key (or resource name): ``[prefix/]name``, as kubectl checks it."""
    if len(value) > 253 + 1 + 63:
        return False
    prefix, sep, name = value.rpartition("/")
    if sep and (len(prefix) > 253 or not _DNS1123_SUBDOMAIN.fullmatch(prefix)):
        return False
    return len(name) <= 63 and _LABEL_NAME.fullmatch(name) is not None


def _check_label_value(value: str) -> str:
    if len(value) > 63 or not _LABEL_VALUE.fullmatch(value):
        raise ValueError(
            f"{echo(value)} is not a valid label value: at most 63 letters, digits, '-', '_' or '.', "
            "starting and ending with a letter or digit"
        )
    return value


def _stringify_label(value: Any) -> Any:
    """YAML reads ``pci: true`` as a bool; Kubernetes labels are strings."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return str(value)
    return value


def _check_label_key(value: str) -> str:
    if not is_label_key(value):
        raise ValueError(f"{echo(value)} is not a valid label key: [prefix/]name, name at most 63 characters")
    return value


LabelValue = Annotated[str, BeforeValidator(_stringify_label), AfterValidator(_check_label_value)]
LabelKey = Annotated[str, AfterValidator(_check_label_key)]


class _Model(BaseModel):
    model_config = ConfigDict(
        extra="forbid",
        alias_generator=to_camel,
        populate_by_name=True,
        frozen=False,
        allow_inf_nan=False,
    )


class EntryError(ValueError):
    """A bad entry of a map field: the loader adds ``key`` to the field it names (``spec.resources.cpu``)."""

    def __init__(self, key: str, message: str) -> None:
        super().__init__(message)
        self.key = key


def _check_resources(value: dict[str, Any]) -> dict[str, int]:
    """Parse a ``{resource: quantity}`` map into base units."""
    if not isinstance(value, dict):
        raise ValueError(f"expected a mapping of resource names to quantities, got {echo(value)}")
    out: dict[str, int] = {}
    for name, raw in value.items():
        if not isinstance(name, str) or not is_label_key(name):
            raise ValueError(f"{echo(name)} is not a resource name")
        try:
            out[name] = parse_quantity(name, raw)
        except QuantityError as exc:
            raise EntryError(name, str(exc)) from exc
    return out


def _check_prices(value: dict[str, Any]) -> dict[str, float]:
    if not isinstance(value, dict):
        raise ValueError(f"expected a mapping of resource names to prices, got {echo(value)}")
    out: dict[str, float] = {}
    for name, raw in value.items():
        if not isinstance(name, str) or not is_label_key(name):
            raise ValueError(f"{echo(name)} is not a resource name")
        expected = f"expected a price per unit-hour such as '0.04', got {echo(raw)}"
        if isinstance(raw, bool) or not isinstance(raw, int | float | str) or (
            isinstance(raw, str) and len(raw) > 64
        ):
            raise EntryError(name, expected)
        try:
            price = float(raw)
        except (TypeError, ValueError, OverflowError) as exc:
            raise EntryError(name, expected) from exc
        if not 0 <= price <= MAX_PRICE:  # also refuses nan and inf
            raise EntryError(name, f"a price must be a number from 0 to {MAX_PRICE:g}, got {echo(raw)}")
        out[name] = price
    return out


def _check_dns_label(value: str, what: str) -> str:
    if not is_dns_label(value):
        raise ValueError(f"{what} {echo(value)} is not a valid name: a DNS-1123 label")
    return value


def _check_subdomain(value: str, what: str) -> str:
    if len(value) > 253 or not _DNS1123_SUBDOMAIN.fullmatch(value):
        raise ValueError(f"{what} {echo(value)} is not a valid object name (a DNS-1123 subdomain)")
    return value


def _whole_number(value: Any) -> Any:
    """Refuse what pydantic would coerce into an int: booleans, strings, fractions."""
    if isinstance(value, bool | str) or (isinstance(value, float) and not value.is_integer()):
        raise ValueError(f"expected an integer, got {value!r}")
    return value


ResourceMap = Annotated[dict[str, int], BeforeValidator(_check_resources)]
PriceMap = Annotated[dict[str, float], BeforeValidator(_check_prices)]


class Metadata(_Model):
    name: str
    namespace: str | None = None
    labels: dict[str, LabelValue] = Field(default_factory=dict)
    annotations: dict[str, str] = Field(default_factory=dict)

    @field_validator("name", "namespace")
    @classmethod
    def _dns_name(cls, value: str | None) -> str | None:
        if value is not None and not is_dns_label(value):
            raise ValueError(
                f"{echo(value)} is not a valid name: a DNS-1123 label of at most 63 lower-case letters, "
                "digits and '-', starting and ending with a letter or digit"
            )
        return value

    @field_validator("labels")
    @classmethod
    def _label_keys(cls, value: dict[str, str]) -> dict[str, str]:
        for key in value:
            if not is_label_key(key):
                raise ValueError(f"{echo(key)} is not a valid label key")
        return value


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
    key: Literal["region", "zone", "provider"]  # type: ignore[assignment]


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


Document = Cluster | Site | Tenant | Workload | PlacementPolicy | ClusterPlacementPolicy | Objective

#: Kinds without a namespace; the namespace of the rest defaults to ``default``.
CLUSTER_SCOPED = frozenset({"Cluster", "Site", "Tenant", "Objective", "ClusterPlacementPolicy"})
