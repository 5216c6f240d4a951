"""``/v1/fleet``: clusters, capacity reserved by committed placements, freshness of live inputs."""

from __future__ import annotations

from fastapi import APIRouter

from adapters.api.deps import Caller, State
from adapters.api.schemas import ClusterPublic, FleetPublic
from engine import format_quantity

router = APIRouter(prefix="/v1/fleet", tags=["fleet"])


@router.get("", response_model=FleetPublic, response_model_by_alias=True,
            summary="The warm fleet: capacity, reserved, free (aggregates only), and staleness")
def get_fleet(state: State, caller: Caller) -> FleetPublic:
    snap = state.snap  # one consistent view, no lock
    fleet, committed, defs, orphans = state.fleet, snap.committed, snap.defs.workloads, len(snap.orphans)
    freshness = state.freshness()
    reserved: dict[str, dict[str, int]] = {c.metadata.name: {} for c in fleet.clusters}
    for key, spread in committed.items():
        req = defs[key].spec.resources
        for cluster, n in spread.items():
            row = reserved.setdefault(cluster, {})
            for r, amount in [*req.items(), ("pods", 1)]:
                row[r] = row.get(r, 0) + n * amount
    clusters = []
    for c in fleet.clusters:
        name = c.metadata.name
        cap = c.spec.capacity
        res = reserved.get(name, {})
        clusters.append(ClusterPublic(
            name=name, region=c.spec.region, zone=c.spec.zone, provider=c.spec.provider,
            labels=dict(c.metadata.labels),
            capacity={r: format_quantity(r, v) for r, v in sorted(cap.items())},
            reserved={r: format_quantity(r, v) for r, v in sorted(res.items()) if r in cap or r != "pods"},
            free={r: format_quantity(r, max(0, v - res.get(r, 0))) for r, v in sorted(cap.items())},
        ))
    visible = sum(1 for k in committed if caller.can(k.split("/", 1)[0]))
    return FleetPublic(clusters=clusters, freshness=freshness, committed_workloads=visible,
                       orphans=orphans if caller.admin else 0)
