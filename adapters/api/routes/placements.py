"""``/v1/placements``: place workloads of the caller's namespaces now, read, update, watch and remove them.

Conventions (docs/service.md, "API conventions"): ``Idempotency-Key`` on POST
(:mod:`adapters.api.idempotency`), ``?limit=`` and ``continue`` on the list
(:mod:`adapters.api.pagination`), ``ETag`` / ``If-Match`` / ``If-None-Match``
(:mod:`adapters.api.conditional`), ``?watch=true`` as server-sent events (:mod:`adapters.api.watch`).
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Header, Path, Query, Response
from fastapi.responses import StreamingResponse

from adapters.api.conditional import etag_of, none_match, placement_view
from adapters.api.deps import Caller, State
from adapters.api.pagination import MAX_LIMIT
from adapters.api.problems import Problem, refuse_infeasible
from adapters.api.schemas import (
    ListMeta,
    PlacementCreate,
    PlacementList,
    PlacementPublic,
    PlacementResult,
    check_documents,
)
from adapters.api.sources import check_sources
from adapters.api.state import Principal, ServiceState, parse_request_documents
from adapters.api.updates import update_placement
from adapters.api.watch import Event, sse_stream

router = APIRouter(prefix="/v1/placements", tags=["placements"])

_ERRORS: dict[int | str, dict[str, Any]] = {
    401: {"description": "Missing or unknown token"},
    403: {"description": "A document is outside the token's namespaces"},
    409: {"description": "Not every workload could be placed (``unplaced`` lists why), it is already placed, or "
                         "no plan exists (type `infeasible`: the committed placement no longer fits)"},
    413: {"description": "Body too large"},
    422: {"description": "Invalid documents"},
    503: {"description": "Live inputs stale (refuse) or the GitOps repository failed"},
}


_NAME = r"^[a-z0-9]([-a-z0-9.]*[a-z0-9])?$"
_YAML_BODY = {"requestBody": {"content": {"application/yaml": {"schema": {"$ref": "#/components/schemas/"
                                                                                   "PlacementCreate"}}}}}
IdempotencyKey = Annotated[str | None, Header(
    alias="Idempotency-Key", max_length=255,
    description="Retrying with the same key (and the same body) returns the first answer instead of running "
                "again; kept for 24 h, per token, in memory.")]
IfMatch = Annotated[str | None, Header(alias="If-Match", description="Only if the placement's ETag is one of "
                                                                      "these (412 otherwise).")]


def _documents(body: PlacementCreate, state: ServiceState, caller: Principal) -> list[Any]:
    """The request's documents, validated (every error at once), sourced and range-checked."""
    limits = state.config.limits
    workloads = sum(1 for d in body.documents if isinstance(d, dict) and d.get("kind") == "Workload")
    if workloads > limits.max_workloads_per_request:
        raise Problem(422, f"{workloads} workloads in one request; the limit is {limits.max_workloads_per_request}",
                      field="documents")
    items = parse_request_documents(body.documents, kinds=("Workload", "PlacementPolicy"), principal=caller,
                                    source=state.sources_file)
    check_sources(items, state.config, caller)
    check_documents([doc for doc, _ in items])
    return items


def _time_limit(body: PlacementCreate, state: ServiceState) -> float:
    limits = state.config.limits
    return min(body.time_limit or limits.time_limit_seconds, limits.max_time_limit_seconds)


@router.post("", response_model=PlacementResult, response_model_by_alias=True, status_code=201,
             summary="Place one or more workloads against the committed fleet", responses=_ERRORS,
             openapi_extra=_YAML_BODY)
def create_placement(body: PlacementCreate, state: State, caller: Caller,
                     idempotency_key: IdempotencyKey = None) -> Response:
    del idempotency_key  # handled before the route runs (adapters.api.idempotency); declared for OpenAPI
    items = _documents(body, state, caller)
    plan, ok, git = state.place(caller, items, dry_run=body.dry_run, time_limit=_time_limit(body, state))
    refuse_infeasible(plan, "the placements already committed no longer fit the fleet (capacity shrank or "
                            "clusters left): no plan exists; nothing was reserved or committed; an operator "
                            "should run `berth reoptimize`")
    if not ok and not body.dry_run:
        unplaced = [u.model_dump(by_alias=True) for u in plan.unplaced]
        names = ", ".join(u.workload for u in plan.unplaced) or "the request"
        detail = f"could not place {names}; nothing was reserved or committed"
        raise Problem(409, detail, title="Not placed", field="documents",
                      extra={"unplaced": unplaced, "solver": plan.status.solver})
    result = PlacementResult(accepted=ok, dry_run=body.dry_run, plan=plan, gitops=git, fleet=state.freshness())
    # serialised once, here: FastAPI would validate the whole plan again against the response model first
    return Response(result.model_dump_json(by_alias=True), status_code=200 if body.dry_run else 201,
                    media_type="application/json")


@router.get("", response_model=PlacementList, response_model_by_alias=True,
            summary="Placements visible to the token, a page at a time; or, with watch=true, their changes",
            responses={200: {"content": {"text/event-stream": {"schema": {"type": "string"}}},
                             "description": "The list; with `watch=true` a stream of server-sent events"},
                       400: {"description": "A continue token that was changed or given to another token"},
                       410: {"description": "A continue token from before a restart"}})
def list_placements(
    state: State, caller: Caller,
    limit: Annotated[int | None, Query(ge=1, le=MAX_LIMIT, description="At most this many items")] = None,
    continue_: Annotated[str | None, Query(alias="continue", max_length=4096,
                                           description="metadata.continue of the previous page")] = None,
    watch: Annotated[bool, Query(description="Stream ADDED/MODIFIED/DELETED events (text/event-stream)")] = False,
    resource_version: Annotated[str | None, Query(alias="resourceVersion", pattern=r"^[0-9]{1,18}$",
                                                  description="Watch: only changes after this version")] = None,
    timeout_seconds: Annotated[int, Query(alias="timeoutSeconds", ge=1, le=3600,
                                          description="Watch: end the stream after this long")] = 1800,
    last_event_id: Annotated[str | None, Header(alias="Last-Event-ID", pattern=r"^[0-9]{1,18}$",
                                                include_in_schema=False)] = None,
) -> Any:
    if watch:
        since = resource_version or last_event_id
        return _watch(state, caller, None if since is None else int(since), timeout_seconds)
    snap = state.snap
    keys = sorted(k for k in snap.committed if caller.can(k.split("/", 1)[0]))
    page = state.pages.page(keys, keys, limit=limit, token=continue_, list_name="placements", caller=caller.digest)
    items = [PlacementPublic(workload=k, replicas=sum(snap.committed[k].values()), clusters=dict(snap.committed[k]))
             for k in page.items]
    return PlacementList(metadata=ListMeta(resource_version=str(snap.revision), continue_=page.continue_token,
                                           remaining_item_count=page.remaining), items=items)


def _watch(state: ServiceState, caller: Principal, since: int | None, timeout: int) -> StreamingResponse:
    def initial() -> tuple[int, list[Event]]:
        snap = state.snap
        return snap.revision, [Event(snap.revision, "ADDED", k, dict(v)) for k, v in sorted(snap.committed.items())]

    stream = sse_stream(state.feed, since=since, initial=initial, can=caller.can, timeout=float(timeout))
    return StreamingResponse(stream, media_type="text/event-stream",
                             headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"})


@router.get("/{namespace}/{name}", response_model=PlacementPublic, summary="Where one workload runs",
            responses={304: {"description": "If-None-Match names the current ETag"},
                       404: {"description": "No such placement visible to this token"}})
def get_placement(namespace: str, name: str, state: State, caller: Caller, response: Response,
                  if_none_match: Annotated[str | None, Header(alias="If-None-Match")] = None) -> Any:
    key = f"{namespace}/{name}"
    view = placement_view(state.snap, key) if caller.can(namespace) else None
    if view is None:
        raise Problem(404, f"no placement {key}")
    spread, spec = view
    etag = etag_of(key, spread, spec)
    if none_match(if_none_match, etag):
        return Response(status_code=304, headers={"ETag": etag})
    response.headers["ETag"] = etag
    return PlacementPublic(workload=key, replicas=sum(spread.values()), clusters=dict(spread), spec=spec)


@router.put("/{namespace}/{name}", response_model=PlacementResult, response_model_by_alias=True,
            summary="Change replicas or policy of a placed workload (what runs stays where it runs)",
            openapi_extra=_YAML_BODY,
            responses={**_ERRORS, 404: {"description": "No such placement visible to this token"},
                       409: {"description": "The change does not fit (`notApplied` says why; what runs is kept, "
                                            "nothing changed), or the workload or a shared policy is defined "
                                            "elsewhere"},
                       412: {"description": "If-Match does not name the current ETag"}})
def update_placement_route(
    body: PlacementCreate, state: State, caller: Caller, response: Response, if_match: IfMatch = None,
    namespace: str = Path(pattern=_NAME, max_length=253), name: str = Path(pattern=_NAME, max_length=253),
) -> PlacementResult:
    key = f"{namespace}/{name}"
    if not caller.can(namespace):
        raise Problem(404, f"no placement {key}")
    items = _documents(body, state, caller)
    plan, ok, git = update_placement(state, caller, key, items, expect=if_match, dry_run=body.dry_run,
                                     time_limit=_time_limit(body, state))
    refuse_infeasible(plan, "the placements already committed no longer fit the fleet: no plan exists; nothing "
                            "was changed")
    if not ok and not body.dry_run:
        reasons = [n.model_dump(by_alias=True) for n in plan.not_applied]
        raise Problem(409, f"the change to {key} does not fit; it keeps running as it is and nothing was changed",
                      title="Not applied", field="documents",
                      extra={"notApplied": reasons, "unplaced": [u.model_dump(by_alias=True) for u in plan.unplaced],
                             "solver": plan.status.solver})
    if ok and not body.dry_run:
        now = placement_view(state.snap, key)
        if now is not None:
            response.headers["ETag"] = etag_of(key, *now)
    return PlacementResult(accepted=ok, dry_run=body.dry_run, plan=plan, gitops=git, fleet=state.freshness())


@router.delete("/{namespace}/{name}", summary="Remove a placement and commit",
               responses={404: {"description": "No such placement visible to this token"},
                          409: {"description": "Another placement depends on it"},
                          412: {"description": "If-Match does not name the current ETag"}})
def delete_placement(
    state: State, caller: Caller, if_match: IfMatch = None,
    namespace: str = Path(pattern=_NAME, max_length=253), name: str = Path(pattern=_NAME, max_length=253),
) -> dict[str, Any]:
    git = state.delete(caller, f"{namespace}/{name}", if_match=if_match)
    return {"deleted": f"{namespace}/{name}", "gitops": git}
