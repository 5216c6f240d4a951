"""``/v1/plans``: solve a whole bundle as ``berth place`` does; nothing is reserved or committed.

With ``useFleet`` the plan starts from the committed placement (pinned, its capacity and quota
taken) and shows only the request's workloads. An ``Infeasible`` result is a 409, never a plan.
"""

from __future__ import annotations

import time

from fastapi import APIRouter

from adapters.api.deps import Caller, State
from adapters.api.problems import Problem, refuse_infeasible
from adapters.api.schemas import PlanCreate, check_documents
from adapters.api.sources import check_sources
from adapters.api.state import ServiceState, parse_request_documents
from engine import Bundle, DuplicateName, Origin, Plan, check_references
from engine import place as engine_place

router = APIRouter(prefix="/v1/plans", tags=["plans"])

_KINDS = ("Cluster", "Site", "Tenant", "Workload", "PlacementPolicy", "Objective")


@router.post("", response_model=Plan, response_model_by_alias=True, summary="Plan a whole bundle",
             responses={403: {"description": "A namespaced document is outside the token's namespaces"},
                        409: {"description": "No plan exists (type `infeasible`), or a useFleet workload is "
                                             "already placed"},
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
    check_sources(items, state.config, caller)
    check_documents([doc for doc, _ in items])
    bundle = Bundle()
    if body.use_fleet:
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
    if not bundle.workloads:
        raise Problem(422, "the bundle has no Workload", field="documents")
    requested = {w.key for w in bundle.workloads}
    current, max_moves, freeze = body.current, body.max_moves, False
    if body.use_fleet:
        current, max_moves, freeze = _add_committed(bundle, body, state)
    check_references(bundle)
    time_limit = min(body.time_limit or limits.time_limit_seconds, limits.max_time_limit_seconds)
    started = time.perf_counter()
    plan = engine_place(bundle, current=current, max_moves=max_moves, time_limit=time_limit, freeze_current=freeze)
    state.metrics.solve.labels("plans").observe(time.perf_counter() - started)
    refuse_infeasible(plan, "no plan satisfies the rules (spec section 2) for this bundle and `current` within "
                            "`maxMoves`; nothing is served")
    if body.use_fleet:
        plan = state.visible_plan(plan, caller, requested, bundle)
    return plan


def _add_committed(bundle: Bundle, body: PlanCreate, state: ServiceState
                   ) -> tuple[dict[str, dict[str, int]], int, bool]:
    """Put the committed placement into a ``useFleet`` bundle: pinned, frozen, its capacity taken.

    A what-if plan over the fleet starts from what is committed, as a placement request
    does; the request's workloads get only what is left. Returns ``current``,
    ``maxMoves`` and ``freeze_current`` for the solve.
    """
    if body.max_moves not in (None, 0):
        raise Problem(422, "with useFleet the committed placement is pinned; maxMoves must be 0 or absent",
                      field="maxMoves")
    snap = state.snap
    committed = dict(snap.committed)
    pinned = state.committed_bundle(snap)
    clash = sorted({w.key for w in bundle.workloads} & committed.keys())
    if clash:
        raise Problem(409, f"{clash[0]} is already placed; a useFleet plan starts from the committed placement "
                           "(plan it under another name, or DELETE it first)", field="documents")
    own = body.current or {}
    if set(own) & committed.keys():
        raise Problem(422, "current names a committed workload; with useFleet it comes from the service",
                      field="current")
    for w in pinned.workloads:
        bundle.workloads.append(w)
        bundle.origins[("Workload", w.key)] = pinned.origin("Workload", w.key)
    given = {f"{p.metadata.namespace}/{p.metadata.name}": p for p in bundle.policies}
    for p in pinned.policies:
        key = f"{p.metadata.namespace}/{p.metadata.name}"
        if key not in given:
            bundle.policies.append(p)
            bundle.origins[("PlacementPolicy", key)] = pinned.origin("PlacementPolicy", key)
        elif given[key].model_dump(mode="json") != p.model_dump(mode="json"):
            raise Problem(409, f"PlacementPolicy {key} already exists with a different spec", field="documents")
    return {**committed, **own}, 0, True
