"""Request and response bodies (``XCreate`` / ``XPublic``), documented in OpenAPI."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field
from pydantic.alias_generators import to_camel

from engine.plan import Plan

__all__ = [
    "ClusterPublic",
    "FleetPublic",
    "PlacementCreate",
    "PlacementPublic",
    "PlacementResult",
    "PlanCreate",
    "WhatIfCreate",
    "WhatIfPublic",
]


class _Body(BaseModel):
    model_config = ConfigDict(alias_generator=to_camel, populate_by_name=True, extra="forbid")


Document = dict[str, Any]


class PlacementCreate(_Body):
    """One or more Workloads (and the PlacementPolicies they use) of the caller's namespaces."""

    documents: list[Document] = Field(min_length=1, description="Workload and PlacementPolicy documents.")
    dry_run: bool = Field(default=False, description="Solve and answer, but reserve and commit nothing.")
    time_limit: float | None = Field(default=None, gt=0, le=300, description="Solver seconds (capped by config).")


class PlacementResult(_Body):
    accepted: bool
    dry_run: bool
    plan: Plan
    gitops: dict[str, Any] | None = None
    fleet: dict[str, Any] | None = Field(
        default=None, description="Freshness of the live fleet this plan used; `staleClusters` with "
        "`capacityFrom: file` were planned on the bundle's capacity (onStale: fallback).")


class PlacementPublic(_Body):
    workload: str
    replicas: int
    clusters: dict[str, int]
    spec: dict[str, Any] | None = None


class PlanCreate(_Body):
    """A whole bundle, solved as ``berth place`` does; nothing is reserved or committed."""

    documents: list[Document] = Field(min_length=1)
    use_fleet: bool = Field(default=False, description="Add the service's Clusters, Sites, Tenants and Objective.")
    current: dict[str, dict[str, int]] | None = Field(
        default=None, description="What runs now: {workload: {cluster: n}}."
    )
    max_moves: int | None = Field(default=None, ge=0)
    time_limit: float | None = Field(default=None, gt=0, le=300)


class ClusterPublic(_Body):
    name: str
    region: str | None = None
    zone: str | None = None
    provider: str | None = None
    labels: dict[str, str]
    capacity: dict[str, str | int]
    reserved: dict[str, str | int]
    free: dict[str, str | int]


class FleetPublic(_Body):
    clusters: list[ClusterPublic]
    freshness: dict[str, Any]
    committed_workloads: int
    orphans: int = Field(description="Committed workloads the service has no definition for (reserve nothing).")


class WhatIfCreate(_Body):
    scenarios: list[Document] = Field(min_length=1, description="Scenario documents (docs/whatif.md).")
    time_limit: float | None = Field(default=None, gt=0, le=300)


class WhatIfPublic(_Body):
    baseline: dict[str, Any]
    scenarios: list[dict[str, Any]]
