"""``PUT /v1/placements/{ns}/{name}``: change replicas or policy of a placed workload.

Why a module of its own: an update is the one change that re-solves a *committed* workload.
It is solved by the engine's own planner (``place`` with every committed placement as
``current``, ``maxMoves: 0`` and frozen), so the rest of the fleet stays exactly where it
is, the updated workload keeps the replicas it runs where it runs (adding or removing
replicas is no move, spec 3.3) and spec section 4 decides what happens when the new spec
does not fit: the engine keeps what runs and lists it in ``notApplied``. The service does
not store a change the engine did not apply: such an update is 409 with those reasons,
nothing is stored or committed, and the workload keeps running as it was (a dry run shows
the same plan with 200).
"""

from __future__ import annotations

import time
from contextlib import nullcontext
from typing import TYPE_CHECKING, Any

from pydantic import BaseModel

from adapters.api.conditional import current_etag, if_match
from adapters.api.journal import Pending
from adapters.api.problems import Problem
from adapters.api.state import Principal, Snapshot, _Definitions
from engine import InputError, Origin, PlacementPolicy, Plan, Workload
from engine import place as engine_place

if TYPE_CHECKING:
    from adapters.api.state import ServiceState

__all__ = ["update_placement"]


def update_placement(state: ServiceState, principal: Principal, key: str,
                     items: list[tuple[BaseModel, dict[str, Any]]], *, expect: str | None, dry_run: bool,
                     time_limit: float) -> tuple[Plan, bool, dict[str, Any] | None]:
    """Re-solve ``key`` with its new definition; commit unless ``dry_run``.

    Returns the plan (the updated workload only), whether the change applies, and what the
    GitOps writer did. 404 when ``key`` is not placed or not visible, 412 when ``expect``
    (If-Match) does not name its ETag, 409 when it is defined in the service's bundle or a
    policy shared with other placements would change.
    """
    docs = [doc for doc, _ in items]
    workloads = [d for d in docs if isinstance(d, Workload)]
    if len(workloads) != 1 or workloads[0].key != key:
        raise InputError(f"an update carries exactly one Workload, {key} (the path's), and the PlacementPolicies "
                         "it uses", field="documents")
    with nullcontext() if dry_run else state.groups.exclusive():
        state.require_fresh()
        snap = state.snap
        if not principal.can(key.split("/", 1)[0]) or key not in snap.committed:
            raise Problem(404, f"no placement {key}")
        if_match(expect, current_etag(snap, key))
        if ("Workload", key) not in snap.api_raw:
            raise Problem(409, f"{key} is defined in the service's bundle; change it there", field="documents")
        bundle, restore = _working(state, snap, key, items)
        started = time.perf_counter()
        plan = engine_place(bundle, current=dict(snap.committed), max_moves=0, time_limit=time_limit,
                            warnings=list(state.fleet_warnings), freeze_current=True)
        state.metrics.solve.labels("updates").observe(time.perf_counter() - started)
        assignment = plan.assignment()
        solved = plan.status.solver in ("Optimal", "Feasible")
        if solved and any(assignment.get(k) != v for k, v in snap.committed.items() if k != key):
            raise Problem(409, f"updating {key} would change other committed placements; nothing was changed",
                          field="documents")
        ok = solved and key in assignment and not any(n.workload == key for n in plan.not_applied)
        git = None
        if ok and not dry_run:
            git = _commit(state, snap, key, items, plan, bundle, restore)
    state.metrics.placements.labels(("dryrun" if dry_run else "updated") if ok else "rejected").inc()
    return state.visible_plan(plan, principal, {key}, bundle), ok, git


def _working(state: ServiceState, snap: Snapshot, key: str, items: list[tuple[BaseModel, dict[str, Any]]]
             ) -> tuple[Any, dict[tuple[str, str], dict[str, Any]]]:
    """The committed fleet with ``key``'s new definition; and the API documents it replaces."""
    d = snap.defs
    policies, origins = dict(d.policies), dict(d.origins)
    workloads = {k: d.workloads[k] for k in snap.committed}
    restore = {("Workload", key): snap.api_raw[("Workload", key)]}
    for doc, _ in items:
        if isinstance(doc, PlacementPolicy):
            pk = f"{doc.metadata.namespace}/{doc.metadata.name}"
            known = d.policies.get(pk)
            if known is not None and known.model_dump(mode="json") != doc.model_dump(mode="json"):
                users = sorted(k for k in snap.committed if k != key and k.startswith(doc.metadata.namespace + "/")
                               and d.workloads[k].spec.policy == doc.metadata.name)
                if users or ("PlacementPolicy", pk) not in snap.api_raw:
                    why = f"{len(users)} other placement(s) use it" if users else "it is defined in the bundle"
                    raise Problem(409, f"PlacementPolicy {pk} already exists with a different spec and {why}; "
                                       "give the workload a policy of its own", field="documents")
                restore[("PlacementPolicy", pk)] = snap.api_raw[("PlacementPolicy", pk)]
            policies[pk] = doc
            origins[("PlacementPolicy", pk)] = Origin(state.sources_file, -1)
        else:
            workloads[key] = doc  # type: ignore[assignment]
            origins[("Workload", key)] = Origin(state.sources_file, -1)
    return state.working_bundle(workloads, policies, origins), restore


def _commit(state: ServiceState, snap: Snapshot, key: str, items: list[tuple[BaseModel, dict[str, Any]]],
            plan: Plan, bundle: Any, restore: dict[tuple[str, str], dict[str, Any]]) -> dict[str, Any] | None:
    """The next snapshot with the new definition and spread; write-ahead, git, done."""
    committed = {**snap.committed, key: plan.assignment()[key]}
    defs = _Definitions(dict(snap.defs.workloads), dict(snap.defs.policies), dict(snap.defs.origins))
    raw, added = snap.api_raw, []
    for doc, data in items:
        kind = str(doc.kind)  # type: ignore[attr-defined]
        kk = (kind, f"{doc.metadata.namespace}/{doc.metadata.name}")  # type: ignore[attr-defined]
        raw = state._define(defs, raw, doc, data)
        if kk not in snap.api_raw:
            added.append(kk)
    new = Snapshot(committed=committed, defs=defs, api_raw=raw, orphans=snap.orphans,
                   orphan_clusters=snap.orphan_clusters, revision=snap.revision)
    pending = Pending("update", before={key: snap.committed[key]}, after={key: committed[key]}, added=added,
                      restore={k: v for k, v in restore.items() if k not in added})
    return state._apply(snap, new, pending, bundle, plan)
