"""Request and response bodies (``XCreate`` / ``XPublic``), documented in OpenAPI."""

from __future__ import annotations

import math
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, model_validator
from pydantic.alias_generators import to_camel

from engine import InputError, Plan

__all__ = [
    "ClusterPublic",
    "FleetPublic",
    "ListMeta",
    "PlacementCreate",
    "PlacementList",
    "PlacementPublic",
    "PlacementResult",
    "PlanCreate",
    "WhatIfCreate",
    "WhatIfPublic",
]


#: The largest integer a request may carry: JSON's interoperable range (RFC 8259, section 6). No field of
#: Berth's needs more, and bigger ones overflow the solver's 64-bit arithmetic (HTTP 500 before).
MAX_INT = 2**53 - 1


def check_numbers(data: Any, prefix: str = "", *, parsed: bool = False) -> None:
    """Refuse integers beyond :data:`MAX_INT` and non-finite floats anywhere in a request body.

    Raises:
        InputError: 422 naming the field (``documents[0].spec.replicas``); the value is not echoed.
    """
    stack: list[tuple[Any, str]] = [(data, prefix)]
    while stack:
        value, path = stack.pop()
        if isinstance(value, bool):
            continue
        if isinstance(value, int) and abs(value) > MAX_INT:
            what = ("the value is out of range once converted to base units (millicores, bytes...)" if parsed
                    else f"a {len(str(abs(value)))}-digit integer is out of range")
            raise InputError(f"{what}: numbers in a request must lie within ±{MAX_INT} (2^53 - 1)",
                             field=path or None)
        if isinstance(value, float) and not math.isfinite(value):
            raise InputError("expected a finite number", field=path or None)
        if isinstance(value, dict):
            stack += [(v, f"{path}.{k}" if path else str(k)) for k, v in reversed(value.items())]
        elif isinstance(value, list):
            stack += [(v, f"{path}[{i}]") for i, v in reversed(list(enumerate(value)))]


def check_documents(docs: list[BaseModel], prefix: str = "documents") -> None:
    """:func:`check_numbers` on parsed documents, whose quantities (``"9999...Gi"``) are integers now."""
    for i, doc in enumerate(docs):
        check_numbers(doc.model_dump(by_alias=True, exclude_none=True), f"{prefix}[{i}]", parsed=True)


class _Body(BaseModel):
    model_config = ConfigDict(alias_generator=to_camel, populate_by_name=True, extra="forbid")

    @model_validator(mode="before")
    @classmethod
    def _numbers(cls, data: Any) -> Any:
        check_numbers(data)  # an InputError is no ValueError: it leaves pydantic as is and becomes a 422
        return data


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


class ListMeta(_Body):
    """A list's ``metadata``, as a Kubernetes list's (``resourceVersion``, ``continue``, ``remainingItemCount``)."""

    resource_version: str = Field(description="Watch from here (`?watch=true&resourceVersion=`) to follow changes.")
    continue_: str | None = Field(default=None, alias="continue",
                                  description="Opaque: send back as `?continue=` for the next page.")
    remaining_item_count: int | None = Field(default=None, description="Items after this page.")


class PlacementList(_Body):
    kind: str = "PlacementList"
    metadata: ListMeta
    items: list[PlacementPublic]


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
