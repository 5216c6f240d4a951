"""The independent verifier: does a plan satisfy every hard constraint?

This module re-reads section 2 of ``spec/placement-semantics.md`` and checks a
plan against the bundle's pydantic documents directly. By design it shares no
code with the model compiler (``engine.problem``, ``engine.solvers.model``,
``engine.solvers.exact``, ``policies``): selector matching, toleration matching,
eligibility and every sum are written again here, so that a bug in one is
caught by the other.

Decisions where the spec is silent (written down so both sides agree):

- ``pods`` counts replicas: each replica uses one pod, whatever the workload
  lists. It binds only on clusters that list ``pods`` (a cluster that does not
  list it has no pod limit; every other unlisted resource has capacity 0). A
  tenant quota on ``pods`` counts placed replicas (copies included).
- Quota counts ``replicas * request`` for Divided and
  ``replicas * copies * request`` for Duplicated, where ``copies`` is the
  number of clusters the plan gives the workload.
- Selectors match a cluster's effective labels (its labels plus
  ``topology.kubernetes.io/region|zone`` and ``placement.berth.dev/provider``).
  A field selector on a field the cluster does not set behaves as a missing
  label (``In``/``Exists``/``Gt``/``Lt`` fail, ``NotIn``/``DoesNotExist`` hold).
- A cluster without the spread label (or field) cannot host the workload: it
  is reported as ``SpreadUnlabelled``, and it is not eligible for a broadcast.
- The moves budget is ``max_moves`` when given, else the bundle's
  ``Objective.spec.maxMoves``; workloads of ``current`` that the bundle no
  longer declares are not counted (nobody can keep them).
- Per-cluster bounds apply to Duplicated workloads too (spec text: "where
  ``y[w,c] > 0``").
- The policy of a workload is chosen again here from ``docs/karmada.md``
  (``spec.policy``, else ``resourceSelectors`` and ``priority``), not by
  ``engine.documents.selection``.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from engine.documents.bundle import Bundle
from engine.documents.kinds import (
    Cluster,
    ClusterAffinity,
    FieldSelector,
    LabelSelector,
    SelectorRequirement,
    Taint,
    Toleration,
    Workload,
)
from engine.documents.policy import PlacementPolicySpec, ResourceSelector, WeightPreference
from engine.errors import InputError
from engine.plan import Plan
from engine.quantity import format_quantity, is_byte_resource

__all__ = [
    "VIOLATION_CODES",
    "Violation",
    "affinity_matches",
    "codes",
    "label_selector_matches",
    "tolerates",
    "verify",
]

#: Every code :func:`verify` can return, in the order of spec section 2.
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


# --- matching, written from the spec and Kubernetes semantics ----------------------


def _requirement_holds(req: SelectorRequirement, value: str | None) -> bool:
    """One ``matchExpressions`` entry against the value of its key (``None`` = absent)."""
    op = req.operator
    if op == "Exists":
        return value is not None
    if op == "DoesNotExist":
        return value is None
    if op == "In":
        return value is not None and value in req.values
    if op == "NotIn":
        return value is None or value not in req.values
    # Gt / Lt: the value must exist and parse as an integer.
    if value is None:
        return False
    try:
        have, bound = int(value), int(req.values[0])
    except ValueError:
        return False
    return have > bound if op == "Gt" else have < bound


def label_selector_matches(selector: LabelSelector, labels: Mapping[str, str]) -> bool:
    """Kubernetes label selector: every matchLabels pair and every expression hold."""
    for key, value in selector.match_labels.items():
        if labels.get(key) != value:
            return False
    return all(_requirement_holds(r, labels.get(r.key)) for r in selector.match_expressions)


def field_selector_matches(selector: FieldSelector, cluster: Cluster) -> bool:
    """Field selector on ``region``, ``zone`` or ``provider`` of ``Cluster.spec``."""
    return all(
        _requirement_holds(r, getattr(cluster.spec, r.key)) for r in selector.match_expressions
    )


def affinity_matches(affinity: ClusterAffinity, cluster: Cluster) -> bool:
    """Every given condition of a cluster affinity holds (Karmada semantics)."""
    name = cluster.metadata.name
    if affinity.cluster_names and name not in affinity.cluster_names:
        return False
    if name in affinity.exclude:
        return False
    if affinity.label_selector is not None and not label_selector_matches(
        affinity.label_selector, cluster.effective_labels()
    ):
        return False
    return affinity.field_selector is None or field_selector_matches(
        affinity.field_selector, cluster
    )


def tolerates(toleration: Toleration, taint: Taint) -> bool:
    """Kubernetes ``Toleration.ToleratesTaint``."""
    if toleration.effect and toleration.effect != taint.effect:
        return False
    if not toleration.key:  # empty key with Exists tolerates every key
        return toleration.operator == "Exists"
    if toleration.key != taint.key:
        return False
    return toleration.operator == "Exists" or toleration.value == taint.value


def untolerated_taints(
    spec: PlacementPolicySpec | None, cluster: Cluster, effects: tuple[str, ...] = ("NoSchedule", "NoExecute")
) -> list[Taint]:
    """The taints of ``cluster`` that the policy does not tolerate and that bind with one of ``effects``.

    A NoExecute taint that only tolerations with ``tolerationSeconds`` tolerate is
    tolerated for running replicas, not new ones (docs/karmada.md): it is returned as
    the NoSchedule taint it then acts as.
    """
    tols = spec.tolerations if spec else []
    out: list[Taint] = []
    for t in cluster.spec.taints:
        if t.effect not in ("NoSchedule", "NoExecute"):
            continue
        matching = [x for x in tols if tolerates(x, t)]
        if any(x.toleration_seconds is None for x in matching):
            continue
        bound = t.model_copy(update={"effect": "NoSchedule"}) if matching else t
        if bound.effect in effects:
            out.append(bound)
    return out


def _selector_rank(sel: ResourceSelector, w: Workload) -> int:
    """docs/karmada.md: 3 a match by name, 2 by label selector (ignored when a name is given),
    1 a selector with neither (every workload in scope), 0 no match."""
    if sel.namespace is not None and sel.namespace != w.metadata.namespace:
        return 0
    if sel.name is not None:
        return 3 if sel.name == w.metadata.name else 0
    if sel.label_selector is not None:
        return 2 if label_selector_matches(sel.label_selector, w.metadata.labels) else 0
    return 1


def _policy_spec(bundle: Bundle, w: Workload) -> PlacementPolicySpec | None:
    """The policy that applies to ``w``, read again from docs/karmada.md: its ``spec.policy``; else
    the matching PlacementPolicies of its namespace, else the matching ClusterPlacementPolicies,
    by explicit priority (high first), implicit priority (high first), name (alphabetical)."""
    ns = w.metadata.namespace
    if w.spec.policy is not None:
        named = [p for p in bundle.policies if p.metadata.namespace == ns and p.metadata.name == w.spec.policy]
        return named[0].spec if named else None
    for pool in ([p for p in bundle.policies if p.metadata.namespace == ns], bundle.cluster_policies):
        ranked = []
        for p in pool:
            rank = max((_selector_rank(s, w) for s in p.spec.resource_selectors or []), default=0)
            if rank:
                ranked.append(((-p.spec.priority, -rank, p.metadata.name), p.spec))
        if ranked:
            return min(ranked, key=lambda item: item[0])[1]
    return None


# --- the plan, read leniently ----------------------------------------------------


def _read_kept(plan: Plan | Mapping[str, Any]) -> dict[str, Any]:
    """``{workload: keptReplicas}`` of the plan's ``notApplied`` list (spec 4)."""
    if isinstance(plan, Plan):
        return {n.workload: n.kept_replicas for n in plan.not_applied}
    entries = plan.get("notApplied") or []
    if not isinstance(entries, list):
        raise InputError("plan: notApplied must be a list", field="notApplied")
    kept: dict[str, Any] = {}
    for i, entry in enumerate(entries):
        if not isinstance(entry, Mapping) or not isinstance(entry.get("workload"), str):
            raise InputError("a notApplied entry needs a workload name", field=f"notApplied[{i}]")
        kept[entry["workload"]] = entry.get("keptReplicas")
    return kept


def _read_plan(
    plan: Plan | Mapping[str, Any],
) -> tuple[list[tuple[str, dict[str, Any]]], list[str]]:
    if isinstance(plan, Plan):
        placed = [(p.workload, dict(p.clusters)) for p in plan.placements]
        return placed, [u.workload for u in plan.unplaced]
    if not isinstance(plan, Mapping):
        raise InputError(f"expected a plan object, got {type(plan).__name__}")
    placements = plan.get("placements") or []
    unplaced = plan.get("unplaced") or []
    if not isinstance(placements, list) or not isinstance(unplaced, list):
        raise InputError("plan: placements and unplaced must be lists", field="placements")
    placed: list[tuple[str, dict[str, Any]]] = []
    for i, entry in enumerate(placements):
        if (
            not isinstance(entry, Mapping)
            or not isinstance(entry.get("workload"), str)
            or not isinstance(entry.get("clusters"), Mapping)
        ):
            raise InputError(
                "a placement needs a workload name and a clusters map", field=f"placements[{i}]"
            )
        placed.append((entry["workload"], dict(entry["clusters"])))
    names: list[str] = []
    for i, entry in enumerate(unplaced):
        if not isinstance(entry, Mapping) or not isinstance(entry.get("workload"), str):
            raise InputError("an unplaced entry needs a workload name", field=f"unplaced[{i}]")
        names.append(entry["workload"])
    return placed, names


def _is_count(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


# --- the checker --------------------------------------------------------------------


class _Checker:
    """Holds the bundle's lookups and collects violations."""

    def __init__(self, bundle: Bundle) -> None:
        self.bundle = bundle
        self.clusters = {c.metadata.name: c for c in bundle.clusters}
        self.workloads = {w.key: w for w in bundle.workloads}
        self.tenants = {t.metadata.name: t for t in bundle.tenants}
        self.sites = {s.metadata.name: s for s in bundle.sites}
        self.current: Mapping[str, Mapping[str, int]] = {}
        self.kept: dict[str, int] = {}  # notApplied: workload -> keptReplicas
        self.out: list[Violation] = []
        self._specs: dict[str, PlacementPolicySpec | None] = {}

    def add(self, code: str, workload: str | None, cluster: str | None, message: str) -> None:
        self.out.append(Violation(code, workload, cluster, message))

    def spec(self, w: Workload) -> PlacementPolicySpec | None:
        if w.key not in self._specs:
            self._specs[w.key] = _policy_spec(self.bundle, w)
        return self._specs[w.key]

    # -- eligibility (section 2, item 2) -------------------------------------------

    def replicas(self, w: Workload) -> int:
        """The replica count section 2 checks: ``keptReplicas`` for a notApplied workload (spec 4)."""
        return self.kept.get(w.key, w.spec.replicas)

    def running(self, key: str, cname: str) -> int:
        """Replicas of ``key`` that run on ``cname`` today (0 without a current placement)."""
        return int(self.current.get(key, {}).get(cname, 0))

    def ineligible(self, w: Workload, cluster: Cluster, placed: int = 1) -> list[tuple[str, str]]:
        """Every reason ``cluster`` is not eligible for ``placed`` replicas of ``w``, as (code, message).

        Spec 2.2: an untolerated ``NoSchedule`` taint forbids only replicas beyond those that run
        there today; ``NoExecute`` forbids every replica.
        """
        reasons: list[tuple[str, str]] = []
        spec = self.spec(w)
        if spec is not None and spec.cluster_affinities is not None:
            if not any(affinity_matches(t, cluster) for t in spec.cluster_affinities):
                tiers = ", ".join(t.affinity_name for t in spec.cluster_affinities)
                reasons.append(("ClusterAffinity", f"passes none of the tiers ({tiers})"))
        elif (
            spec is not None
            and spec.cluster_affinity is not None
            and not affinity_matches(spec.cluster_affinity, cluster)
        ):
            reasons.append(("ClusterAffinity", "does not pass the policy's clusterAffinity"))
        tenant = self.tenants.get(w.metadata.namespace or "default")
        selector = tenant.spec.cluster_selector if tenant else None
        if selector is not None and not affinity_matches(selector, cluster):
            reasons.append(
                ("TenantSelector", f"is outside tenant {w.metadata.namespace}'s selector")
            )
        taints = untolerated_taints(spec, cluster, ("NoExecute",))
        running = self.running(w.key, cluster.metadata.name)
        if placed > running:
            taints += untolerated_taints(spec, cluster, ("NoSchedule",))
        if taints:
            text = ", ".join(f"{t.key}={t.value}:{t.effect}" for t in taints)
            kept = f" ({placed} replica(s) here, {running} run here today)" if running else ""
            reasons.append(("Untolerated", f"has untolerated taint(s) {{{text}}}{kept}"))
        if spec is not None and spec.latency is not None:
            site = self.sites.get(spec.latency.site)
            ms = site.spec.latency_ms.get(cluster.metadata.name) if site else None
            if ms is None:
                reasons.append(
                    ("Latency", f"is unreachable from site {spec.latency.site} (no latencyMs)")
                )
            elif spec.latency.max_ms is not None and ms > spec.latency.max_ms:
                reasons.append(
                    (
                        "Latency",
                        f"is {ms:g} ms from site {spec.latency.site}; "
                        f"maxMs is {spec.latency.max_ms:g}",
                    )
                )
        return reasons

    def spread_value(self, key_field: str | None, key_label: str | None, c: Cluster) -> str | None:
        if key_field == "cluster":
            return c.metadata.name
        if key_field is not None:
            return getattr(c.spec, key_field)
        return c.effective_labels().get(key_label or "")

    @staticmethod
    def tier_of(tiers: list[Any], cluster: Cluster) -> int | None:
        """Index of the first tier of ``clusterAffinities`` that ``cluster`` passes (``None``: none)."""
        return next((i for i, t in enumerate(tiers) if affinity_matches(t, cluster)), None)

    def broadcast_eligible(self, w: Workload) -> set[str]:
        spec = self.spec(w)
        out = set()
        for name, c in self.clusters.items():
            if self.ineligible(w, c, placed=self.replicas(w)):
                continue
            if spec is not None and any(
                self.spread_value(s.spread_by_field, s.spread_by_label, c) is None
                for s in spec.spread_constraints
            ):
                continue
            out.add(name)
        return out


def _fmt(resource: str, amount: int) -> str:
    """Readable and exact: ``1.5 cores (1500m)``, ``4Gi (4294967296 bytes)``, ``3``."""
    if resource == "cpu":
        return f"{format_quantity(resource, amount)} cores ({amount}m)"
    if is_byte_resource(resource):
        return f"{format_quantity(resource, amount)} ({amount} bytes)"
    return str(amount)


def _per_replica(w: Workload, resource: str) -> int:
    """What one replica of ``w`` uses of ``resource``; ``pods`` counts replicas."""
    if resource == "pods":
        return 1
    return w.spec.resources.get(resource, 0)


def verify(
    bundle: Bundle,
    plan: Plan | Mapping[str, Any],
    *,
    current: Mapping[str, Mapping[str, int]] | None = None,
    max_moves: int | None = None,
) -> list[Violation]:
    """Check ``plan`` against every hard constraint of spec section 2.

    Args:
        bundle: the validated documents the plan was made for.
        plan: a :class:`~engine.plan.Plan` or its JSON as a dict (only
            ``placements`` and ``unplaced`` are read).
        current: what runs today, ``{workload: {cluster: replicas}}``; needed
            for the moves budget.
        max_moves: the moves budget; ``None`` takes ``Objective.spec.maxMoves``
            from the bundle (and no budget when that is unset too).

    Returns:
        Every violation found, in a stable order; an empty list means the plan
        satisfies section 2.

    Raises:
        InputError: ``plan`` is not shaped like a plan at all.
    """
    ck = _Checker(bundle)
    ck.current = current or {}
    placed_raw, unplaced_names = _read_plan(plan)
    _check_kept(ck, _read_kept(plan), dict(placed_raw), current)

    # -- the plan's own shape ------------------------------------------------------
    y: dict[str, dict[str, int]] = {}  # workload -> cluster -> replicas (> 0, integers)
    for key, clusters in placed_raw:
        if key not in ck.workloads:
            ck.add("UnknownWorkload", key, None, f"the bundle declares no Workload {key}")
            continue
        if key in y:
            ck.add("DuplicateEntry", key, None, "the workload has more than one placements entry")
        row = y.setdefault(key, {})
        for cname, n in clusters.items():
            if not _is_count(n) or n <= 0:
                ck.add("InvalidReplicas", key, cname, f"replicas must be an integer > 0, got {n!r}")
                continue
            if cname not in ck.clusters:
                ck.add("UnknownCluster", key, cname, f"the bundle declares no Cluster {cname}")
            row[cname] = row.get(cname, 0) + n
        if not clusters:
            ck.add("InvalidReplicas", key, None, "a placed workload has an empty clusters map")
    seen_unplaced: set[str] = set()
    for key in unplaced_names:
        if key not in ck.workloads:
            ck.add("UnknownWorkload", key, None, f"no Workload {key} in the bundle (unplaced)")
            continue
        if key in seen_unplaced:
            ck.add("DuplicateEntry", key, None, "the workload is listed as unplaced twice")
        seen_unplaced.add(key)
        if key in y:
            ck.add("PlacedAndUnplaced", key, None, "the workload is both placed and unplaced")
    for key in ck.workloads:
        if key not in y and key not in seen_unplaced:
            ck.add("MissingWorkload", key, None, "the plan neither places nor lists it as unplaced")
    y = {k: row for k, row in y.items() if row}

    for key, row in y.items():
        _check_workload(ck, ck.workloads[key], row, y)
    _check_capacity(ck, y)
    _check_first_tier(ck, y)
    _check_quota(ck, y)
    _check_anti_affinity(ck, y)
    _check_moves(ck, y, current, max_moves)
    return ck.out


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
            used_tiers = sorted({ck.tier_of(tiers, ck.clusters[c]) for c in row if c in ck.clusters} - {None})
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


def codes(violations: Iterable[Violation]) -> set[str]:
    """The set of codes in ``violations`` (handy in tests and summaries)."""
    return {v.code for v in violations}
