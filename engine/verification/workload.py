"""The checks of one workload: all or nothing, eligibility, bounds, counts, spread, divisions."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Mapping
from typing import Any

from engine.documents.kinds import (
    Workload,
)
from engine.documents.policy import WeightPreference
from engine.verification.matching import affinity_matches
from engine.verification.reading import _Checker, _is_count

__all__ = [
    "_check_kept",
    "_check_workload",
    "_weighted_division",
]


def _check_workload(
    ck: _Checker, w: Workload, row: dict[str, int], y: dict[str, dict[str, int]]
) -> None:
    key, replicas = w.key, ck.replicas(w)
    spec = ck.spec(w)
    rs = spec.replica_scheduling if spec else None
    duplicated = rs is not None and rs.replica_scheduling_type == "Duplicated"

    # 1. all or nothing
    if duplicated:
        for cname, n in sorted(row.items()):
            if n != replicas:
                ck.add(
                    "AllOrNothing",
                    key,
                    cname,
                    f"Duplicated: {n} replica(s) here, every chosen cluster needs {replicas}",
                )
    elif sum(row.values()) != replicas:
        ck.add(
            "AllOrNothing",
            key,
            None,
            f"{sum(row.values())} replica(s) placed over {len(row)} cluster(s); "
            f"spec.replicas is {replicas}",
        )

    # 2. eligibility
    for cname in sorted(row):
        cluster = ck.clusters.get(cname)
        if cluster is None:
            continue
        for code, message in ck.ineligible(w, cluster, placed=row[cname]):
            ck.add(code, key, cname, f"cluster {cname} {message}")

    # weightPreference (docs/karmada.md, "Weighted division"): the counts per cluster are fixed
    if rs is not None and rs.weight_preference is not None:
        want = _weighted_division(ck, w, rs.weight_preference)
        if row != want:
            shown = ", ".join(f"{c}={n}" for c, n in sorted(want.items())) or "none: it cannot be placed"
            got = ", ".join(f"{c}={n}" for c, n in sorted(row.items()))
            ck.add("WeightedDivision", key, None, f"weightPreference divides {replicas} replica(s) as {shown}; "
                   f"the plan has {got}")

    # 5. per-cluster bounds
    lo = rs.min_per_cluster if rs else 1
    hi = rs.max_per_cluster if rs else None
    for cname, n in sorted(row.items()):
        if n < lo or (hi is not None and n > hi):
            bound = f"[{lo}, {hi}]" if hi is not None else f"at least {lo}"
            ck.add("PerClusterBounds", key, cname, f"{n} replica(s) here; bound is {bound}")

    # 6. cluster count, broadcast
    used = len(row)
    count = spec.clusters if spec else None
    if count is not None and (used < count.min or (count.max is not None and used > count.max)):
        span = f"[{count.min}, {count.max}]" if count.max is not None else f"at least {count.min}"
        ck.add("ClusterCount", key, None, f"{used} cluster(s) used; clusters must be {span}")
    if duplicated and count is None:
        eligible = ck.broadcast_eligible(w)
        # with a spread maxGroups: every eligible cluster of the groups chosen (spec 2.6)
        limited = [s for s in spec.spread_constraints if s.max_groups is not None] if spec else []
        for s in limited:
            chosen = {ck.spread_value(s.spread_by_field, s.spread_by_label, ck.clusters[c])
                      for c in row if c in ck.clusters}
            eligible = {c for c in eligible
                        if ck.spread_value(s.spread_by_field, s.spread_by_label, ck.clusters[c]) in chosen}
        # with several clusterAffinities tiers: every eligible cluster of one tier, none elsewhere (spec 2.6)
        tiers = spec.cluster_affinities if spec and spec.cluster_affinities and len(spec.cluster_affinities) > 1 else []
        if tiers and row:
            used_tiers = sorted({t for c in row if c in ck.clusters
                                 if (t := ck.tier_of(tiers, ck.clusters[c])) is not None})
            if len(used_tiers) > 1:
                names = ", ".join(tiers[t].affinity_name for t in used_tiers)
                ck.add("Broadcast", key, None, f"Duplicated broadcast spans tiers {names}; its copies use one tier")
            eligible = {c for c in eligible if ck.tier_of(tiers, ck.clusters[c]) in used_tiers[:1]}
        missing = sorted(eligible - set(row))
        if missing:
            scope = " of the groups chosen" if limited else " of the tier chosen" if tiers else ""
            ck.add(
                "Broadcast",
                key,
                None,
                f"Duplicated broadcast uses {len(set(row) & eligible)} of {len(eligible)} "
                f"eligible clusters{scope}; missing: {', '.join(missing)}",
            )

    # 7. spread
    for s in spec.spread_constraints if spec else []:
        what = s.spread_by_field or f"label {s.spread_by_label}"
        totals: dict[str, int] = defaultdict(int)
        for cname, n in sorted(row.items()):
            cluster = ck.clusters.get(cname)
            if cluster is None:
                continue
            value = ck.spread_value(s.spread_by_field, s.spread_by_label, cluster)
            if value is None:
                ck.add(
                    "SpreadUnlabelled",
                    key,
                    cname,
                    f"cluster {cname} has no {what}, so it forms no spread group",
                )
                continue
            totals[value] += n
        groups = len(totals)
        if groups < s.min_groups or (s.max_groups is not None and groups > s.max_groups):
            span = f"[{s.min_groups}, {s.max_groups}]" if s.max_groups else f">= {s.min_groups}"
            ck.add(
                "SpreadGroups",
                key,
                None,
                f"{groups} {what} group(s) used ({', '.join(sorted(totals))}); need {span}",
            )
        if s.max_skew is not None and totals:
            top, low = max(totals.values()), min(totals.values())
            if top - low > s.max_skew:
                detail = ", ".join(f"{g}={n}" for g, n in sorted(totals.items()))
                ck.add(
                    "SpreadSkew",
                    key,
                    None,
                    f"{what} skew is {top - low} ({detail}); maxSkew is {s.max_skew}",
                )

    # 8. affinity
    ns = w.metadata.namespace
    for other in spec.affinity.workloads if spec and spec.affinity else []:
        partner = y.get(f"{ns}/{other}", {})
        for cname in sorted(row):
            if cname not in partner:
                ck.add(
                    "Affinity",
                    key,
                    cname,
                    f"{ns}/{other} has no replica on {cname} (affinity asks to co-locate)",
                )


def _check_kept(
    ck: _Checker,
    kept: dict[str, Any],
    placed: dict[str, dict[str, Any]],
    current: Mapping[str, Mapping[str, int]] | None,
) -> None:
    """4. A notApplied workload is placed where it runs today, at ``keptReplicas`` (checked below)."""
    for key, count in sorted(kept.items()):
        if key not in ck.workloads:
            ck.add("UnknownWorkload", key, None, f"the bundle declares no Workload {key} (notApplied)")
            continue
        if not _is_count(count) or count <= 0:
            ck.add("NotApplied", key, None, f"keptReplicas must be an integer > 0, got {count!r}")
            continue
        ck.kept[key] = count
        if key not in placed:
            ck.add("NotApplied", key, None, "listed as notApplied (kept where it runs) but not placed")
        elif current is not None:
            now = {c: n for c, n in current.get(key, {}).items() if _is_count(n) and n > 0}
            if placed[key] != now:
                ck.add("NotApplied", key, None,
                       f"kept where it runs, so the plan must place it as today ({now}), not {placed[key]}")


def _weighted_division(ck: _Checker, w: Workload, pref: WeightPreference) -> dict[str, int]:
    """The division ``pref`` fixes, from docs/karmada.md: over the clusters eligible for new
    replicas, ``floor(replicas * weight / total)`` each, then the remainder one at a time to the
    heaviest clusters first, ties by name; ``{}`` when the clusters cannot take the replicas."""
    names = sorted(ck.broadcast_eligible(w))
    weight: dict[str, int] = {}
    for name in names:
        cluster = ck.clusters[name]
        if pref.static_weight_list is not None:
            weight[name] = next(
                (e.weight for e in pref.static_weight_list if affinity_matches(e.target_cluster, cluster)), 0
            )
        else:
            capacity = cluster.spec.capacity
            limits = [capacity.get(r, 0) // n for r, n in w.spec.resources.items() if n > 0 and r != "pods"]
            if "pods" in capacity:
                limits.append(capacity["pods"])
            weight[name] = max(min(limits), 0) if limits else 2**31 - 1
    if pref.static_weight_list is not None and not any(weight.values()):
        weight = dict.fromkeys(names, 1)
    total = sum(weight.values())
    replicas = ck.replicas(w)  # keptReplicas for a notApplied workload (spec 4)
    if total == 0 or (pref.dynamic_weight is not None and total < replicas):
        return {}
    share = {name: replicas * wt // total for name, wt in weight.items()}
    heaviest = sorted((n for n in names if weight[n] > 0), key=lambda n: (-weight[n], n))
    left = replicas - sum(share.values())
    for i, name in enumerate(heaviest):
        share[name] += left // len(heaviest) + (1 if i < left % len(heaviest) else 0)
    return {name: n for name, n in share.items() if n > 0}
