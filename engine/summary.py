"""What-if results as plain numbers: utilisation, replicas by priority, the comparison with the baseline.

A solve is summarised (:func:`summarize`) into numbers that travel well (to Dask workers and
back, into a report, into JSON); :func:`compare` sets a scenario's summary beside the baseline's.
"""

from __future__ import annotations

from typing import Any

from engine.build import build_problem
from engine.documents.bundle import Bundle
from engine.documents.kinds import Cluster
from engine.objective import fewest_copies
from engine.plan import Plan, requested_by_cluster

__all__ = ["by_priority", "compare", "summarize", "utilisation"]


def utilisation(bundle: Bundle, plan: Plan) -> dict[str, dict[str, float]]:
    """``{cluster: {resource: used/capacity}}`` for every resource a cluster lists (> 0)."""
    used = requested_by_cluster(bundle, plan)
    out: dict[str, dict[str, float]] = {}
    for c in bundle.clusters:
        name = c.metadata.name
        out[name] = {
            r: round(used[name].get(r, 0) / cap, 6) for r, cap in sorted(c.spec.capacity.items()) if cap > 0
        }
    return out


def by_priority(counts: dict[str, int]) -> dict[str, int]:
    """``counts`` keyed by priority, highest priority first (numerically: ``1000`` before ``50``)."""
    return {k: counts[k] for k in sorted(counts, key=int, reverse=True)}


def _copies(bundle: Bundle, keys: set[str]) -> dict[str, int]:
    """Replicas each workload in ``keys`` asks for, counting each copy of a Duplicated one (spec 3.1).

    A Divided workload asks for ``replicas``; a Duplicated one for ``replicas`` on each of the
    ``clusters.min`` clusters it needs at least, or, broadcast (no ``clusters``), on every cluster
    its policy makes eligible (at least one).
    """
    wanted = {w.key: w for w in bundle.workloads if w.key in keys}
    out = {key: w.spec.replicas for key, w in wanted.items()}
    selector = bundle.policy_selector()
    duplicated = [key for key, w in wanted.items() if (policy := selector.policy_for(w)) is not None
                  and policy.spec.replica_scheduling.replica_scheduling_type == "Duplicated"]
    if not duplicated:
        return out
    problem = build_problem(bundle)
    index = {k: i for i, k in enumerate(problem.workload_keys)}
    for key in duplicated:
        out[key] *= max(1, fewest_copies(problem, index[key]))
    return out


def _totals(clusters: list[Cluster], used: dict[str, dict[str, int]]) -> tuple[dict[str, int], dict[str, int]]:
    """Capacity and requests of ``clusters`` summed per resource (base units; ``pods`` counts replicas)."""
    capacity: dict[str, int] = {}
    requested: dict[str, int] = {}
    for c in clusters:
        for r, cap in c.spec.capacity.items():
            capacity[r] = capacity.get(r, 0) + cap
            requested[r] = requested.get(r, 0) + used.get(c.metadata.name, {}).get(r, 0)
    return dict(sorted(capacity.items())), dict(sorted(requested.items()))


def summarize(bundle: Bundle, plan: Plan) -> dict[str, Any]:
    """Plain numbers of one solved scenario (JSON-ready, picklable).

    One way of counting throughout: *replicas* count each copy of a Duplicated workload (spec 3.1),
    placed or not; *workloads* count documents. ``movedReplicas`` is the spec's ``M`` (section 3.3):
    replicas that leave a cluster for another one of the same workload; ``stoppedReplicas`` are the
    ones that ran and stop because their workload is no longer placed. Capacity and requests are in
    base units (millicores, bytes, devices, pods); cost is per hour.
    """
    prio = {w.key: w.spec.priority for w in bundle.workloads}
    unplaced_keys = {u.workload for u in plan.unplaced}
    copies = _copies(bundle, unplaced_keys)
    unplaced_by_priority: dict[str, int] = {}
    unplaced_by_reason: dict[str, int] = {}
    unplaced_list: list[dict[str, Any]] = []
    for u in sorted(plan.unplaced, key=lambda u: (-prio.get(u.workload, 0), u.workload)):
        n = copies.get(u.workload, 0)
        key = str(prio.get(u.workload, 0))
        unplaced_by_priority[key] = unplaced_by_priority.get(key, 0) + n
        code = u.reasons[0].code if u.reasons else "Unknown"  # the first reason is the one to act on
        unplaced_by_reason[code] = unplaced_by_reason.get(code, 0) + n
        unplaced_list.append({"workload": u.workload, "priority": prio.get(u.workload, 0), "replicas": n,
                              "reason": code, "message": u.reasons[0].message if u.reasons else ""})
    # a running workload whose change does not fit keeps its current replicas (spec 4): the replicas
    # it wants beyond those are demand left unplaced too
    copies_of = {pl.workload: len(pl.clusters) for pl in plan.placements}
    selector = bundle.policy_selector()
    duplicated = {w.key for w in bundle.workloads if (pol := selector.policy_for(w)) is not None
                  and pol.spec.replica_scheduling.replica_scheduling_type == "Duplicated"}
    not_applied: list[dict[str, Any]] = []
    for na in getattr(plan, "not_applied", []):
        short = max(0, na.wanted_replicas - na.kept_replicas)
        if na.workload in duplicated:
            short *= max(1, copies_of.get(na.workload, 1))
        key = str(prio.get(na.workload, 0))
        if short:
            unplaced_by_priority[key] = unplaced_by_priority.get(key, 0) + short
            unplaced_by_reason["ChangeNotApplied"] = unplaced_by_reason.get("ChangeNotApplied", 0) + short
        why = na.reasons[1] if len(na.reasons) > 1 else na.reasons[0]
        not_applied.append({"workload": na.workload, "priority": prio.get(na.workload, 0), "replicas": short,
                            "keptReplicas": na.kept_replicas, "wantedReplicas": na.wanted_replicas,
                            "reason": why.code, "message": why.message})
    placed_by_priority: dict[str, int] = {}
    for pl in plan.placements:
        key = str(prio.get(pl.workload, 0))
        placed_by_priority[key] = placed_by_priority.get(key, 0) + sum(pl.clusters.values())
    used = requested_by_cluster(bundle, plan)
    region_of = {c.metadata.name: c.spec.region or "-" for c in bundle.clusters}
    regions: dict[str, dict[str, float]] = {}
    region_capacity: dict[str, dict[str, int]] = {}
    for region in sorted(set(region_of.values())):
        cap, req = _totals([c for c in bundle.clusters if region_of[c.metadata.name] == region], used)
        region_capacity[region] = cap
        regions[region] = {r: round(req[r] / v, 6) for r, v in cap.items() if v > 0}
    capacity, requested = _totals(bundle.clusters, used)
    o = plan.status.objective
    running_stops = sum(m.replicas for m in plan.moves if m.to is None and m.workload in unplaced_keys)
    return {
        "solver": plan.status.solver,
        "solveSeconds": plan.status.solve_seconds,
        "workloads": len(bundle.workloads),
        "clusters": len(bundle.clusters),
        "clusterNames": sorted(region_of),
        "clusterRegions": dict(sorted(region_of.items())),
        "placedWorkloads": len(plan.placements),
        "unplacedWorkloads": len(plan.unplaced),
        "placedReplicas": sum(placed_by_priority.values()),
        "unplacedReplicas": sum(unplaced_by_priority.values()),
        "placedReplicasByPriority": by_priority(placed_by_priority),
        "unplacedReplicasByPriority": by_priority(unplaced_by_priority),
        "unplacedReplicasByReason": dict(sorted(unplaced_by_reason.items(), key=lambda kv: (-kv[1], kv[0]))),
        "unplacedList": unplaced_list,
        "notAppliedList": not_applied,
        "cost": o.cost,
        "costUnit": "per hour",
        "latency": o.latency,
        "moves": o.moves,
        "movedReplicas": sum(m.replicas for m in plan.moves if m.to is not None),
        "stoppedReplicas": running_stops,
        "weighted": o.weighted,
        **plan.status.bounds(),
        "capacity": capacity,
        "requested": requested,
        "utilisation": utilisation(bundle, plan),
        "regionCapacity": region_capacity,
        "regionUtilisation": regions,
        "warnings": list(plan.status.warnings),
    }


def compare(baseline: dict[str, Any], result: dict[str, Any]) -> dict[str, Any]:
    """What the scenario changes against the baseline: numbers (scenario - baseline) and names.

    ``capacity`` is per resource in base units (negative: capacity lost); ``newlyUnplaced`` names
    each workload that the baseline placed and the scenario does not (``newlyPlaced`` the reverse).
    """
    keys = ("cost", "latency", "moves", "movedReplicas", "stoppedReplicas", "placedReplicas", "unplacedReplicas",
            "placedWorkloads", "unplacedWorkloads", "weighted")
    delta: dict[str, Any] = {k: round(float(result.get(k, 0)) - float(baseline.get(k, 0)), 6) for k in keys}
    for field in ("unplacedReplicasByPriority", "placedReplicasByPriority"):
        before = baseline.get(field, {})
        after = result.get(field, {})
        delta[field] = by_priority({p: after.get(p, 0) - before.get(p, 0) for p in {*before, *after}})
    cap_before = baseline.get("capacity", {})
    cap_after = result.get("capacity", {})
    delta["capacity"] = {r: cap_after.get(r, 0) - cap_before.get(r, 0) for r in sorted({*cap_before, *cap_after})}
    names_before = set(baseline.get("clusterNames", []))
    names_after = set(result.get("clusterNames", []))
    delta["removedClusters"] = sorted(names_before - names_after)
    delta["addedClusters"] = sorted(names_after - names_before)
    was = {u["workload"] for u in baseline.get("unplacedList", [])}
    now = {u["workload"] for u in result.get("unplacedList", [])}
    delta["newlyUnplaced"] = [u for u in result.get("unplacedList", []) if u["workload"] not in was]
    delta["newlyPlaced"] = [u for u in baseline.get("unplacedList", []) if u["workload"] not in now]
    kept_before = {u["workload"] for u in baseline.get("notAppliedList", [])}
    delta["newlyNotApplied"] = [u for u in result.get("notAppliedList", []) if u["workload"] not in kept_before]
    return delta
