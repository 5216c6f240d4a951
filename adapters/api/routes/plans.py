"""``/v1/plans``: solve a whole bundle as ``berth place`` does; nothing is reserved or committed."""

from __future__ import annotations

import time

from fastapi import APIRouter

from adapters.api.deps import Caller, State
from adapters.api.problems import Problem
from adapters.api.schemas import PlanCreate
from adapters.api.state import parse_request_documents
from engine.bundle import Bundle, Origin, check_references
from engine.errors import DuplicateName
from engine.plan import Plan
from engine.planner import place as engine_place

router = APIRouter(prefix="/v1/plans", tags=["plans"])

_KINDS = ("Cluster", "Site", "Tenant", "Workload", "PlacementPolicy", "Objective")


@router.post("", response_model=Plan, response_model_by_alias=True, summary="Plan a whole bundle",
             responses={403: {"description": "A namespaced document is outside the token's namespaces"},
                        413: {"description": "Body too large"}, 422: {"description": "Invalid bundle"}})
def create_plan(body: PlanCreate, state: State, caller: Caller) -> Plan:
    limits = state.config.limits
    if len(body.documents) > limits.max_documents_per_plan:
        raise Problem(422, f"{len(body.documents)} documents; the limit is {limits.max_documents_per_plan}",
                      field="documents")
    workloads = sum(1 for d in body.documents if isinstance(d, dict) and d.get("kind") == "Workload")
    if workloads > limits.max_documents_per_plan:
        raise Problem(422, "too many workloads", field="documents")
    items = parse_request_documents(body.documents, kinds=_KINDS, principal=caller)
    bundle = Bundle()
    if body.use_fleet:
        with state.lock:
            fleet = state.fleet
        bundle.clusters = list(fleet.clusters)
        bundle.sites = list(fleet.sites)
        bundle.tenants = list(fleet.tenants)
        bundle.objective = fleet.objective
        for kind, docs in (("Cluster", bundle.clusters), ("Site", bundle.sites), ("Tenant", bundle.tenants)):
            for d in docs:
                bundle.origins[(kind, d.metadata.name)] = Origin(None, -1)
    for i, (doc, _) in enumerate(items):
        kind = str(doc.kind)  # type: ignore[attr-defined]
        meta = doc.metadata  # type: ignore[attr-defined]
        key = meta.name if kind in ("Cluster", "Site", "Tenant", "Objective") else f"{meta.namespace}/{meta.name}"
        if (kind, key) in bundle.origins or (kind == "Objective" and bundle.objective is not None):
            raise DuplicateName(f"a {kind} named {key!r} is already given"
                                + (" (by the service's fleet)" if body.use_fleet else ""),
                                field=f"documents[{i}].metadata.name")
        bundle.origins[(kind, key)] = Origin(None, i)
        bundle.add(doc)
    check_references(bundle)
    if not bundle.workloads:
        raise Problem(422, "the bundle has no Workload", field="documents")
    time_limit = min(body.time_limit or limits.time_limit_seconds, limits.max_time_limit_seconds)
    started = time.perf_counter()
    plan = engine_place(bundle, current=body.current, max_moves=body.max_moves, time_limit=time_limit)
    state.metrics.solve.labels("plans").observe(time.perf_counter() - started)
    return plan
