"""The ``Scenario`` kind: edits to a copy of a bundle, and sweeps (applied by :mod:`engine.scenario`).

Edits (each list entry has exactly one key)::

    removeClusters: ClusterMatch          # lose clusters, a region, a provider
    scaleCapacity:  {clusters: ClusterMatch?, factor: 0.5, resources: [cpu]?}
    scaleDemand:    {workloads: WorkloadMatch?, factor: 1.5}
    addClusters:    [{like: edge-paris-1?, metadata: {...}, spec: {...}, latencyMs: {site: ms}}]
    changePrices:   {clusters: ClusterMatch?, factor: 1.2 | set: {cpu: "0.05"}, resources: [..]?}
    changePolicy:   {namespace: retail, name: low-latency, patch: {...}}   # JSON merge patch of spec
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import Field, model_validator

from engine.documents.fields import Metadata, PriceMap, _Model
from engine.documents.kinds import ClusterAffinity, LabelSelector

__all__ = ["AddCluster", "ChangePolicy", "ChangePrices", "ClusterMatch", "Edit", "ScaleCapacity", "ScaleDemand",
           "Scenario", "ScenarioSpec", "Sweep", "WorkloadMatch"]


# --- the kind -----------------------------------------------------------------------


class ClusterMatch(ClusterAffinity):
    """Which clusters an edit touches: a ClusterAffinity plus shortcuts by field."""

    regions: list[str] = Field(default_factory=list)
    zones: list[str] = Field(default_factory=list)
    providers: list[str] = Field(default_factory=list)


class WorkloadMatch(_Model):
    """Which workloads an edit touches; every given condition must hold."""

    namespaces: list[str] = Field(default_factory=list)
    names: list[str] = Field(default_factory=list)  # "name" or "namespace/name"
    label_selector: LabelSelector | None = None
    min_priority: int | None = None
    max_priority: int | None = None


class ScaleCapacity(_Model):
    clusters: ClusterMatch | None = None
    factor: float = Field(ge=0)
    resources: list[str] = Field(default_factory=list)


class ScaleDemand(_Model):
    workloads: WorkloadMatch | None = None
    factor: float = Field(gt=0)


class AddCluster(_Model):
    like: str | None = None
    metadata: Metadata
    spec: dict[str, Any] = Field(default_factory=dict)
    latency_ms: dict[str, float] = Field(default_factory=dict)


class ChangePrices(_Model):
    clusters: ClusterMatch | None = None
    factor: float | None = Field(default=None, ge=0)
    set: PriceMap | None = None
    resources: list[str] = Field(default_factory=list)

    @model_validator(mode="after")
    def _one_way(self) -> ChangePrices:
        if (self.factor is None) == (self.set is None):
            raise ValueError("give exactly one of factor and set")
        return self


class ChangePolicy(_Model):
    namespace: str = "default"
    name: str
    patch: dict[str, Any]


class Edit(_Model):
    """One edit; exactly one field is given."""

    remove_clusters: ClusterMatch | None = None
    scale_capacity: ScaleCapacity | None = None
    scale_demand: ScaleDemand | None = None
    add_clusters: list[AddCluster] | None = None
    change_prices: ChangePrices | None = None
    change_policy: ChangePolicy | None = None

    @model_validator(mode="after")
    def _exactly_one(self) -> Edit:
        given = [k for k, v in self.__dict__.items() if v is not None]
        if len(given) != 1:
            raise ValueError(
                "an edit has exactly one of removeClusters, scaleCapacity, scaleDemand, "
                f"addClusters, changePrices, changePolicy; got {len(given)}"
            )
        return self

    @property
    def kind(self) -> str:
        return next(k for k, v in self.__dict__.items() if v is not None)


class Sweep(_Model):
    """One parameter (a path into ``spec``) over a list or an inclusive range."""

    parameter: str
    values: list[Any] | None = None
    from_: float | None = Field(default=None, alias="from")
    to: float | None = None
    steps: int | None = Field(default=None, ge=2, le=200)

    @model_validator(mode="after")
    def _values_or_range(self) -> Sweep:
        ranged = (self.from_, self.to, self.steps)
        if self.values is not None and any(v is not None for v in ranged):
            raise ValueError("give values or from/to/steps, not both")
        if self.values is None and any(v is None for v in ranged):
            raise ValueError("give values, or all of from, to and steps")
        if self.values is not None and not self.values:
            raise ValueError("values needs at least one value")
        return self

    def points(self) -> list[Any]:
        if self.values is not None:
            return list(self.values)
        assert self.from_ is not None and self.to is not None and self.steps is not None
        step = (self.to - self.from_) / (self.steps - 1)
        return [round(self.from_ + i * step, 10) for i in range(self.steps)]


class ScenarioSpec(_Model):
    description: str = ""
    edits: list[Edit] = Field(default_factory=list)
    sweep: Sweep | None = None


class Scenario(_Model):
    api_version: Literal["placement.berth.dev/v1alpha1"]
    kind: Literal["Scenario"]
    metadata: Metadata
    spec: ScenarioSpec = Field(default_factory=ScenarioSpec)

    @property
    def name(self) -> str:
        return self.metadata.name
