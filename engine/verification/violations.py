"""The violations the verifier reports: one code per hard constraint of spec section 2."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

__all__ = [
    "VIOLATION_CODES",
    "Violation",
    "codes",
]


VIOLATION_CODES = (
    # the plan's own shape
    "UnknownWorkload",
    "UnknownCluster",
    "DuplicateEntry",
    "PlacedAndUnplaced",
    "MissingWorkload",
    "InvalidReplicas",
    # 1. all or nothing
    "AllOrNothing",
    # 2. eligibility
    "ClusterAffinity",
    "TenantSelector",
    "Untolerated",
    "Latency",
    # 3.-4.
    "Capacity",
    "Quota",
    # 5.-6.
    "WeightedDivision",
    "PerClusterBounds",
    "ClusterCount",
    "Broadcast",
    # 7.
    "SpreadUnlabelled",
    "SpreadGroups",
    "SpreadSkew",
    # 8.-10.
    "Affinity",
    "AntiAffinity",
    "MovesBudget",
    # 4. a change that does not fit keeps what runs
    "NotApplied",
)


@dataclass(frozen=True)
class Violation:
    """One broken hard constraint.

    Attributes:
        code: one of :data:`VIOLATION_CODES`.
        workload: ``namespace/name`` (``None`` for a cluster- or tenant-wide sum).
        cluster: the cluster concerned, when there is one.
        message: one sentence with the numbers a person needs.
    """

    code: str
    workload: str | None
    cluster: str | None
    message: str

    def __str__(self) -> str:
        where = " on ".join(x for x in (self.workload, self.cluster) if x)
        return f"{self.code}: {where}: {self.message}" if where else f"{self.code}: {self.message}"


def codes(violations: Iterable[Violation]) -> set[str]:
    """The set of codes in ``violations`` (handy in tests and summaries)."""
    return {v.code for v in violations}
