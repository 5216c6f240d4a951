"""The plan: what Berth decided, in the JSON shape of spec section 5."""

from __future__ import annotations

from typing import TYPE_CHECKING

from pydantic import BaseModel, ConfigDict, Field
from pydantic.alias_generators import to_camel

if TYPE_CHECKING:
    from engine.documents.bundle import Bundle

__all__ = [
    "Move",
    "NotApplied",
    "ObjectiveValues",
    "Placement",
    "Plan",
    "PlanMetadata",
    "PlanStatus",
    "Reason",
    "Unplaced",
    "diff_moves",
    "requested_by_cluster",
]

REASON_CODES = (
    "NoMatchingCluster",
    "Untolerated",
    "LatencyUnreachable",
    "TenantRestricted",
    "InsufficientCapacity",
    "QuotaExceeded",
    "SpreadUnsatisfiable",
    "AffinityUnsatisfied",
    "AntiAffinityConflict",
    "OutPrioritized",
    "MovesBudget",
    "ChangeNotApplied",
    "InternalError",
    "SolverTimeLimit",
)


class _Out(BaseModel):
    model_config = ConfigDict(alias_generator=to_camel, populate_by_name=True, extra="allow")


class ObjectiveValues(_Out):
    placed_by_priority: dict[str, int] = Field(default_factory=dict)
    tier: int = 0
    cost: float = 0.0
    latency: float = 0.0
    moves: int = 0
    clusters_used: int = 0
    preference: float = 0.0
    prefer_no_schedule: int = 0
    weighted: float = 0.0


class PlanStatus(_Out):
    solver: str
    solve_seconds: float
    objective: ObjectiveValues
    #: a proved lower bound of the weighted cost over every plan with the same replicas per priority
    #: and tier (spec 5), and the plan's gap to it
    bound: float | None = None
    gap: float | None = None
    #: a proved lower bound only over plans placing the same workloads with the same replicas each
    bound_at_placement: float | None = None
    gap_at_placement: float | None = None
    levels: list[dict[str, object]] = Field(default_factory=list)
    warnings: list[str] = Field(default_factory=list)

    def bounds(self) -> dict[str, float | None]:
        """The proved bounds and gaps under their plan names (``None`` where none was proved)."""
        return {"bound": self.bound, "gap": self.gap, "boundAtPlacement": self.bound_at_placement,
                "gapAtPlacement": self.gap_at_placement}


class Placement(_Out):
    workload: str
    clusters: dict[str, int]


class Reason(_Out):
    code: str
    message: str
    clusters: list[str] = Field(default_factory=list)


class Unplaced(_Out):
    workload: str
    reasons: list[Reason]


class NotApplied(Unplaced):
    """A running workload whose new spec does not fit: kept where it runs, at ``kept_replicas``
    (spec 4); ``reasons`` starts with ``ChangeNotApplied``, then why the change does not fit."""

    kept_replicas: int
    wanted_replicas: int


class Move(_Out):
    model_config = ConfigDict(alias_generator=to_camel, populate_by_name=True)
    workload: str
    from_: str | None = Field(default=None, alias="from")
    to: str | None = None
    replicas: int


class PlanMetadata(_Out):
    input_digest: str
    created_at: str


class Plan(_Out):
    api_version: str = "placement.berth.dev/v1alpha1"
    kind: str = "PlacementPlan"
    metadata: PlanMetadata
    status: PlanStatus
    placements: list[Placement] = Field(default_factory=list)
    unplaced: list[Unplaced] = Field(default_factory=list)
    not_applied: list[NotApplied] = Field(default_factory=list)
    moves: list[Move] = Field(default_factory=list)

    def assignment(self) -> dict[str, dict[str, int]]:
        """``{workload: {cluster: replicas}}`` of the placed workloads."""
        return {p.workload: dict(p.clusters) for p in self.placements}

    def to_json(self) -> str:
        return self.model_dump_json(by_alias=True, indent=2, exclude_none=False)


def diff_moves(
    current: dict[str, dict[str, int]], new: dict[str, dict[str, int]]
) -> list[Move]:
    """Replicas that leave a cluster where they run today, paired with where they go.

    A replica removed from ``from`` is matched to a replica added elsewhere for
    the same workload (largest first); with nowhere to go, ``to`` is ``None``
    (the workload shrank there or became unplaced). New replicas with no
    source are not moves.
    """
    moves: list[Move] = []
    for workload in sorted(current):
        before = current[workload]
        after = new.get(workload, {})
        removed = sorted(
            ((c, n - after.get(c, 0)) for c, n in before.items() if n > after.get(c, 0)),
            key=lambda item: (-item[1], item[0]),
        )
        added = sorted(
            ((c, n - before.get(c, 0)) for c, n in after.items() if n > before.get(c, 0)),
            key=lambda item: (-item[1], item[0]),
        )
        to_add = dict(added)  # cluster -> replicas still to match, largest first
        for source, count in removed:
            left = count
            for target, missing in to_add.items():
                if left == 0:
                    break
                take = min(left, missing)
                if take > 0:
                    moves.append(Move(workload=workload, from_=source, to=target, replicas=take))
                    to_add[target] -= take
                    left -= take
            if left > 0:
                moves.append(Move(workload=workload, from_=source, to=None, replicas=left))
    return moves


def requested_by_cluster(bundle: Bundle, plan: Plan) -> dict[str, dict[str, int]]:
    """``{cluster: {resource: base units requested}}`` by the plan's placements; ``pods`` counts replicas."""
    requests = {w.key: w.spec.resources for w in bundle.workloads}
    used: dict[str, dict[str, int]] = {c.metadata.name: {} for c in bundle.clusters}
    for placement in plan.placements:
        req = requests.get(placement.workload, {})
        for cluster, n in placement.clusters.items():
            row = used.setdefault(cluster, {})
            for r, amount in req.items():
                row[r] = row.get(r, 0) + n * amount
            row["pods"] = row.get("pods", 0) + n
    return used
