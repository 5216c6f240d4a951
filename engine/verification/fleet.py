"""The checks over the fleet: capacity, quota, first tiers, anti-affinity, the moves budget."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Mapping

from engine.verification.reading import _Checker, _fmt, _is_count, _per_replica

__all__ = [
    "_check_anti_affinity",
    "_check_capacity",
    "_check_first_tier",
    "_check_moves",
    "_check_quota",
    "_copy_cannot_go",
]


def _check_capacity(ck: _Checker, y: dict[str, dict[str, int]]) -> None:
    """3. Capacity, for every cluster and every resource used there."""
    use: dict[str, dict[str, int]] = defaultdict(lambda: defaultdict(int))
    who: dict[tuple[str, str], int] = defaultdict(int)  # (cluster, resource) -> workloads
    for key, row in y.items():
        w = ck.workloads[key]
        for cname, n in row.items():
            if cname not in ck.clusters:
                continue
            for resource in {*w.spec.resources, "pods"}:
                amount = n * _per_replica(w, resource)
                use[cname][resource] += amount
                who[cname, resource] += 1 if amount else 0
    for cname in sorted(use):
        capacity = ck.clusters[cname].spec.capacity
        for resource in sorted(use[cname]):
            need = use[cname][resource]
            if resource == "pods" and "pods" not in capacity:
                continue
            have = capacity.get(resource, 0)
            if need > have:
                ck.add(
                    "Capacity",
                    None,
                    cname,
                    f"{resource}: {_fmt(resource, need)} requested by "
                    f"{who[cname, resource]} workload(s) > capacity {_fmt(resource, have)}",
                )


def _check_quota(ck: _Checker, y: dict[str, dict[str, int]]) -> None:
    """4. Quota: replicas * request over placed workloads, copies included."""
    for tname in sorted(ck.tenants):
        quota = ck.tenants[tname].spec.quota
        if not quota:
            continue
        used: dict[str, int] = defaultdict(int)
        for key, row in y.items():
            w = ck.workloads[key]
            if w.metadata.namespace != tname:
                continue
            spec = ck.spec(w)
            rs = spec.replica_scheduling if spec else None
            copies = len(row) if rs and rs.replica_scheduling_type == "Duplicated" else 1
            for resource in quota:
                used[resource] += ck.replicas(w) * copies * _per_replica(w, resource)
        for resource in sorted(quota):
            if used[resource] > quota[resource]:
                ck.add(
                    "Quota",
                    None,
                    None,
                    f"tenant {tname}: {resource} {_fmt(resource, used[resource])} placed > "
                    f"quota {_fmt(resource, quota[resource])}",
                )


def _check_first_tier(ck: _Checker, y: dict[str, dict[str, int]]) -> None:
    """2.6: a Duplicated broadcast with several ``clusterAffinities`` tiers uses a later tier only
    when no earlier one can take every copy: each earlier tier must hold an eligible cluster where a
    copy does not fit beside the other workloads' replicas of this plan, or where an anti-affine
    workload runs, or where a workload it is affine to does not run."""
    for key, row in sorted(y.items()):
        w = ck.workloads[key]
        spec = ck.spec(w)
        if spec is None or spec.clusters is not None or len(spec.cluster_affinities or []) < 2:
            continue
        rs = spec.replica_scheduling
        if not rs or rs.replica_scheduling_type != "Duplicated":
            continue
        tiers = spec.cluster_affinities or []
        used = [t for t in (ck.tier_of(tiers, ck.clusters[c]) for c in row if c in ck.clusters) if t is not None]
        if not used:
            continue
        ns = w.metadata.namespace
        anti = {f"{ns}/{o}" for o in (spec.anti_affinity.workloads if spec.anti_affinity else [])}
        anti |= {k for k, v in ck.workloads.items() if k != key and (s := ck.spec(v)) and s.anti_affinity
                 and w.metadata.name in s.anti_affinity.workloads and v.metadata.namespace == ns}
        affine = {f"{ns}/{o}" for o in (spec.affinity.workloads if spec.affinity else [])}
        eligible = ck.broadcast_eligible(w)
        copies = ck.replicas(w)
        for earlier in range(min(used)):
            members = sorted(c for c in eligible if ck.tier_of(tiers, ck.clusters[c]) == earlier)
            if not members or any(_copy_cannot_go(ck, y, key, c, copies, anti, affine) for c in members):
                continue
            ck.add("Broadcast", key, None,
                   f"Duplicated broadcast uses tier {tiers[min(used)].affinity_name} while the earlier tier "
                   f"{tiers[earlier].affinity_name} can take a copy on each of its eligible clusters "
                   f"({', '.join(members)})")


def _copy_cannot_go(
    ck: _Checker, y: dict[str, dict[str, int]], key: str, cname: str, copies: int, anti: set[str], affine: set[str]
) -> bool:
    """Whether one copy of ``key`` would break capacity, anti-affinity or affinity on ``cname``."""
    if any(cname in y.get(o, {}) for o in anti) or any(cname not in y.get(a, {}) for a in affine):
        return True
    w = ck.workloads[key]
    capacity = ck.clusters[cname].spec.capacity
    for resource in {*w.spec.resources, "pods"}:
        need = copies * _per_replica(w, resource)
        if need <= 0 or (resource == "pods" and "pods" not in capacity):
            continue
        others = sum(n * _per_replica(ck.workloads[k], resource)
                     for k, row in y.items() if k != key for c, n in row.items() if c == cname)
        if others + need > capacity.get(resource, 0):
            return True
    return False


def _check_anti_affinity(ck: _Checker, y: dict[str, dict[str, int]]) -> None:
    """9. Anti-affinity, symmetric: each offending pair and cluster reported once."""
    seen: set[tuple[str, str, str]] = set()
    for key in sorted(y):
        w = ck.workloads[key]
        spec = ck.spec(w)
        for other in spec.anti_affinity.workloads if spec and spec.anti_affinity else []:
            okey = f"{w.metadata.namespace}/{other}"
            for cname in sorted(set(y[key]) & set(y.get(okey, {}))):
                a, b = sorted((key, okey))
                if (a, b, cname) in seen:
                    continue
                seen.add((a, b, cname))
                ck.add(
                    "AntiAffinity",
                    key,
                    cname,
                    f"{key} and {okey} both have replicas on {cname} (anti-affinity)",
                )


def _check_moves(
    ck: _Checker,
    y: dict[str, dict[str, int]],
    current: Mapping[str, Mapping[str, int]] | None,
    max_moves: int | None,
) -> None:
    """10. Moves budget: replicas moved from where they run today.

    Spec 3.3: a workload that stays placed moves ``sum_c max(0, cur - y) - max(0, sum cur - sum y)``
    (a scale-down is not a move); one that is unplaced moves every replica it runs; one deleted
    from the bundle moves none.
    """
    if max_moves is None and ck.bundle.objective is not None:
        max_moves = ck.bundle.objective.spec.max_moves
    if current is None or max_moves is None:
        return
    removed = 0
    detail: list[str] = []
    for key in sorted(current):
        if key not in ck.workloads:
            continue
        now = y.get(key, {})
        before = {c: n for c, n in current[key].items() if _is_count(n) and n > 0}
        taken = sum(max(0, n - now.get(c, 0)) for c, n in before.items())
        if now:
            taken -= max(0, sum(before.values()) - sum(now.values()))
        if taken > 0:
            removed += taken
            detail.append(f"{key}:{taken}")
    if removed > max_moves:
        shown = ", ".join(detail[:8]) + (", ..." if len(detail) > 8 else "")
        ck.add(
            "MovesBudget",
            None,
            None,
            f"{removed} replica(s) removed from where they run today ({shown}); "
            f"maxMoves is {max_moves}",
        )
