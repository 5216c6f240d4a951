"""Re-optimisation diffs, pure: what a new plan changes against what runs now.

The placement itself is :func:`engine.planner.place` with ``current`` and a
moves budget; this module only reads the two assignments and the bundle.
"""

from __future__ import annotations

from typing import Any

from engine.documents.bundle import Bundle
from engine.plan import Plan
from engine.quantity import natural_per_base

__all__ = ["assignment_values", "diff_summary"]

Assignment = dict[str, dict[str, int]]


def assignment_values(bundle: Bundle, assignment: Assignment) -> dict[str, Any]:
    """Cost per hour, latency and replicas by priority of an assignment (spec section 3 units).

    Replicas of workloads or on clusters the bundle no longer has are counted in
    ``unknownReplicas`` and cost nothing.
    """
    workloads = {w.key: w for w in bundle.workloads}
    clusters = {c.metadata.name: c for c in bundle.clusters}
    sites = {s.metadata.name: s for s in bundle.sites}
    selector = bundle.policy_selector()
    by_priority: dict[str, int] = {}
    cost = latency = 0.0
    unknown = 0
    for key, spread in assignment.items():
        w = workloads.get(key)
        if w is None:
            unknown += sum(spread.values())
            continue
        policy = selector.policy_for(w)
        site = sites.get(policy.spec.latency.site) if policy and policy.spec.latency else None
        for cname, n in spread.items():
            c = clusters.get(cname)
            if c is None:
                unknown += n
                continue
            prio = str(w.spec.priority)
            by_priority[prio] = by_priority.get(prio, 0) + n
            cost += n * sum(q * natural_per_base(r) * c.spec.price.get(r, 0.0) for r, q in w.spec.resources.items())
            if site is not None:
                latency += n * site.spec.latency_ms.get(cname, 0.0)
    return {"cost": round(cost, 6), "latency": round(latency, 6), "placedByPriority": by_priority,
            "unknownReplicas": unknown}


def diff_summary(bundle: Bundle, current: Assignment, plan: Plan) -> dict[str, Any]:
    """Moves per workload and cluster, before/after numbers, newly placed and dropped workloads."""
    after = plan.assignment()
    per_workload: dict[str, int] = {}
    out_of: dict[str, int] = {}
    into: dict[str, int] = {}
    for m in plan.moves:
        per_workload[m.workload] = per_workload.get(m.workload, 0) + m.replicas
        if m.from_:
            out_of[m.from_] = out_of.get(m.from_, 0) + m.replicas
        if m.to:
            into[m.to] = into.get(m.to, 0) + m.replicas
    clusters = sorted({*out_of, *into})
    before_v = assignment_values(bundle, current)
    after_v = assignment_values(bundle, after)
    changed = sorted(k for k in {*current, *after} if current.get(k, {}) != after.get(k, {}))
    return {
        "solver": plan.status.solver,
        "weighted": plan.status.objective.weighted,
        **plan.status.bounds(),
        "moves": sum(per_workload.values()),
        "movesByWorkload": dict(sorted(per_workload.items())),
        "movesByCluster": {c: {"out": out_of.get(c, 0), "in": into.get(c, 0)} for c in clusters},
        "before": before_v,
        "after": after_v,
        "costDelta": round(after_v["cost"] - before_v["cost"], 6),
        "latencyDelta": round(after_v["latency"] - before_v["latency"], 6),
        "newlyPlaced": sorted(k for k in after if k not in current),
        "noLongerPlaced": sorted(k for k in current if k not in after),
        "changedWorkloads": changed,
        "moveList": [m.model_dump(by_alias=True) for m in plan.moves],
        "unplaced": [{"workload": u.workload, "codes": sorted({r.code for r in u.reasons})} for u in plan.unplaced],
    }

