"""``/v1/events``: what self-healing saw and did (docs/failover.md), scoped to the caller's namespaces."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Query

from adapters.api.deps import Caller, State

router = APIRouter(prefix="/v1/events", tags=["events"])


@router.get("", summary="Self-healing events, oldest first: clusters lost or short, failovers, recoveries")
def list_events(
    state: State, caller: Caller,
    since: int = Query(default=0, ge=0, description="Only events with an id above this one (poll with the last id)."),
    limit: int = Query(default=100, ge=1, le=1000, description="At most this many events."),
) -> list[dict[str, Any]]:
    """An admin sees every event; a tenant only those touching its namespaces, with only its own
    workloads, moves and reasons in them."""
    if state.failover is None:
        return []
    hidden = state.hidden_keys(caller)
    out: list[dict[str, Any]] = []
    for event in state.failover.events.all():
        if event.id <= since:
            continue
        seen = event if caller.admin else event.seen_by(caller.can, lambda text: state.scrub(text, hidden))
        if seen is not None:
            out.append(seen.to_json())
        if len(out) >= limit:
            break
    return out
