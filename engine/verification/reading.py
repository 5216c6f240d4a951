"""The plan read leniently, and the checker state every check shares."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from engine.documents.bundle import Bundle
from engine.documents.kinds import (
    Cluster,
    Workload,
)
from engine.documents.policy import PlacementPolicySpec
from engine.errors import InputError
from engine.plan import Plan
from engine.quantity import format_quantity, is_byte_resource
from engine.verification.matching import _policy_spec, affinity_matches, policies_by_namespace, untolerated_taints
from engine.verification.violations import Violation

__all__ = [
    "_Checker",
    "_fmt",
    "_is_count",
    "_per_replica",
    "_read_kept",
    "_read_plan",
]


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
        return [(p.workload, dict(p.clusters)) for p in plan.placements], [u.workload for u in plan.unplaced]
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
        self.policies = policies_by_namespace(bundle)
        self.current: Mapping[str, Mapping[str, int]] = {}
        self.kept: dict[str, int] = {}  # notApplied: workload -> keptReplicas
        self.out: list[Violation] = []
        self._specs: dict[str, PlacementPolicySpec | None] = {}

    def add(self, code: str, workload: str | None, cluster: str | None, message: str) -> None:
        self.out.append(Violation(code, workload, cluster, message))

    def spec(self, w: Workload) -> PlacementPolicySpec | None:
        if w.key not in self._specs:
            self._specs[w.key] = _policy_spec(self.bundle, w, self.policies)
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
            value: str | None = getattr(c.spec, key_field)  # region, zone or provider
            return value
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
