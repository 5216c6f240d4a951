"""``ETag``, ``If-Match`` and ``If-None-Match`` for one placement (RFC 9110 section 13).

Why: a portal that read a placement and then changes or deletes it must not undo a change
someone made in between (the lost update). The ETag of a placement is a strong validator
over what ``GET /v1/placements/{ns}/{name}`` shows of it (where it runs and its spec), so it
changes exactly when the answer would. ``If-Match`` is checked under the writer lock, with
the state the change is made to, so no change can slip between check and write: a mismatch
is 412 and nothing changes. ``If-Match: *`` asks only that the placement exists.
"""

from __future__ import annotations

import hashlib
import json
from typing import TYPE_CHECKING, Any

from adapters.api.problems import Problem

if TYPE_CHECKING:
    from adapters.api.state import Snapshot

__all__ = ["current_etag", "etag_of", "if_match", "none_match", "placement_view"]


def placement_view(snap: Snapshot, key: str) -> tuple[dict[str, int], dict[str, Any]] | None:
    """Where ``key`` runs and its spec as accepted (``None`` when it is not placed)."""
    spread = snap.committed.get(key)
    w = snap.defs.workloads.get(key)
    if spread is None or w is None:
        return None
    raw = snap.api_raw.get(("Workload", key))
    spec = raw.get("spec") if raw else w.model_dump(by_alias=True, mode="json", exclude_none=True)["spec"]
    return spread, spec


def current_etag(snap: Snapshot, key: str) -> str | None:
    view = placement_view(snap, key)
    return None if view is None else etag_of(key, *view)


def etag_of(workload: str, clusters: dict[str, int], spec: dict[str, Any] | None) -> str:
    """The quoted strong ETag of a placement as it is shown."""
    text = json.dumps({"w": workload, "c": dict(sorted(clusters.items())), "s": spec}, sort_keys=True,
                      separators=(",", ":"), default=str)
    return '"' + hashlib.sha256(text.encode()).hexdigest()[:32] + '"'


def _tags(header: str) -> list[str]:
    return [t.strip().removeprefix("W/") for t in header.split(",") if t.strip()]


def if_match(header: str | None, current: str | None) -> None:
    """Raise 412 unless ``If-Match`` (if given) names ``current`` (``None``: there is no placement).

    Raises:
        Problem: 412 Precondition Failed.
    """
    if header is None:
        return
    tags = _tags(header)
    if current is not None and ("*" in tags or current in tags):
        return
    raise Problem(412, "If-Match does not name the placement's current ETag: it changed since it was read; "
                       "GET it again and retry", field="If-Match", title="Precondition failed")


def none_match(header: str | None, current: str) -> bool:
    """Whether ``If-None-Match`` names ``current`` (a GET then answers 304 Not Modified)."""
    if header is None:
        return False
    tags = _tags(header)
    return "*" in tags or current in tags
