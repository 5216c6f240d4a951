"""``/v1/placements``: place workloads of the caller's namespaces now, read and remove them."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Path, Response

from adapters.api.deps import Caller, State
from adapters.api.problems import Problem, refuse_infeasible
from adapters.api.schemas import PlacementCreate, PlacementPublic, PlacementResult, check_documents
from adapters.api.sources import check_sources
from adapters.api.state import parse_request_documents

router = APIRouter(prefix="/v1/placements", tags=["placements"])

_NAME = r"^[a-z0-9]([-a-z0-9.]*[a-z0-9])?$"
_ERRORS: dict[int | str, dict[str, Any]] = {
    401: {"description": "Missing or unknown token"},
    403: {"description": "A document is outside the token's namespaces"},
    409: {"description": "Not every workload could be placed (``unplaced`` lists why), it is already placed, or "
                         "no plan exists (type `infeasible`: the committed placement no longer fits)"},
    413: {"description": "Body too large"},
    422: {"description": "Invalid documents"},
    503: {"description": "Live inputs stale (refuse) or the GitOps repository failed"},
}


@router.post("", response_model=PlacementResult, response_model_by_alias=True, status_code=201,
             summary="Place one or more workloads against the committed fleet", responses=_ERRORS)
def create_placement(body: PlacementCreate, state: State, caller: Caller, response: Response) -> PlacementResult:
    limits = state.config.limits
    workloads = sum(1 for d in body.documents if isinstance(d, dict) and d.get("kind") == "Workload")
    if workloads > limits.max_workloads_per_request:
        raise Problem(422, f"{workloads} workloads in one request; the limit is {limits.max_workloads_per_request}",
                      field="documents")
    items = parse_request_documents(body.documents, kinds=("Workload", "PlacementPolicy"), principal=caller,
                                    source=state.sources_file)
    check_sources(items, state.config, caller)
    check_documents([doc for doc, _ in items])
    time_limit = min(body.time_limit or limits.time_limit_seconds, limits.max_time_limit_seconds)
    plan, ok, git = state.place(caller, items, dry_run=body.dry_run, time_limit=time_limit)
    refuse_infeasible(plan, "the placements already committed no longer fit the fleet (capacity shrank or "
                            "clusters left): no plan exists; nothing was reserved or committed; an operator "
                            "should run `berth reoptimize`")
    if not ok and not body.dry_run:
        unplaced = [u.model_dump(by_alias=True) for u in plan.unplaced]
        names = ", ".join(u.workload for u in plan.unplaced) or "the request"
        detail = f"could not place {names}; nothing was reserved or committed"
        raise Problem(409, detail, title="Not placed", field="documents",
                      extra={"unplaced": unplaced, "solver": plan.status.solver})
    if body.dry_run:
        response.status_code = 200
    return PlacementResult(accepted=ok, dry_run=body.dry_run, plan=plan, gitops=git, fleet=state.freshness())


@router.get("", response_model=list[PlacementPublic], summary="Placements visible to the token")
def list_placements(state: State, caller: Caller) -> list[PlacementPublic]:
    items = sorted(state.snap.committed.items())
    return [PlacementPublic(workload=k, replicas=sum(v.values()), clusters=dict(v))
            for k, v in items if caller.can(k.split("/", 1)[0])]


@router.get("/{namespace}/{name}", response_model=PlacementPublic, summary="Where one workload runs",
            responses={404: {"description": "No such placement visible to this token"}})
def get_placement(namespace: str, name: str, state: State, caller: Caller) -> PlacementPublic:
    key = f"{namespace}/{name}"
    snap = state.snap
    spread = snap.committed.get(key) if caller.can(namespace) else None
    raw = snap.api_raw.get(("Workload", key))
    w = snap.defs.workloads.get(key)
    if spread is None or w is None:
        raise Problem(404, f"no placement {key}")
    spec = raw.get("spec") if raw else w.model_dump(by_alias=True, mode="json", exclude_none=True)["spec"]
    return PlacementPublic(workload=key, replicas=sum(spread.values()), clusters=dict(spread), spec=spec)


@router.delete("/{namespace}/{name}", summary="Remove a placement and commit",
               responses={404: {"description": "No such placement visible to this token"},
                          409: {"description": "Another placement depends on it"}})
def delete_placement(
    state: State, caller: Caller,
    namespace: str = Path(pattern=_NAME, max_length=253), name: str = Path(pattern=_NAME, max_length=253),
) -> dict[str, Any]:
    git = state.delete(caller, f"{namespace}/{name}")
    return {"deleted": f"{namespace}/{name}", "gitops": git}
