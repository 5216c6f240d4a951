"""Taints and tolerations, with Kubernetes semantics.

``NoSchedule`` and ``NoExecute`` taints exclude a cluster unless tolerated;
an untolerated ``PreferNoSchedule`` taint only costs (term ``preferNoSchedule``).
A ``NoExecute`` taint tolerated only by tolerations with ``tolerationSeconds``
binds new replicas like ``NoSchedule`` (:func:`binding_effect`): Berth does not
place replicas on a cluster that will evict them, and does not evict before the
cluster does (``docs/karmada.md``).
Replicas that run on a cluster today stay through a ``NoSchedule`` taint (up to
their current count, spec 2.2); only ``NoExecute`` evicts them (:meth:`TaintsPlugin.filter_running`).
"""

from __future__ import annotations

import numpy as np

from engine.documents.kinds import Taint, Toleration
from engine.problem import CompileContext, Problem
from policies.base import ModelContext, Plugin

__all__ = ["TaintsPlugin", "binding_effect", "timed_tolerations", "tolerates"]


def tolerates(toleration: Toleration, taint: Taint) -> bool:
    """Whether one toleration tolerates one taint (``ToleratesTaint`` in Kubernetes)."""
    if toleration.effect and toleration.effect != taint.effect:
        return False
    if not toleration.key:
        return toleration.operator == "Exists"
    if toleration.key != taint.key:
        return False
    if toleration.operator == "Exists":
        return True
    return toleration.value == taint.value


def binding_effect(taint: Taint, tolerations: list[Toleration]) -> str | None:
    """How ``taint`` binds new replicas: ``None`` when tolerated, else the effect that applies.

    A ``NoExecute`` taint tolerated only for ``tolerationSeconds`` binds as ``NoSchedule``.
    """
    matching = [tol for tol in tolerations if tolerates(tol, taint)]
    if any(tol.toleration_seconds is None for tol in matching):
        return None
    if matching and taint.effect == "NoExecute":
        return "NoSchedule"
    return taint.effect


def timed_tolerations(taint: Taint, tolerations: list[Toleration]) -> int | None:
    """The longest ``tolerationSeconds`` that tolerates ``taint`` when only timed tolerations do."""
    if binding_effect(taint, tolerations) != "NoSchedule" or taint.effect != "NoExecute":
        return None
    return max(int(tol.toleration_seconds or 0) for tol in tolerations if tolerates(tol, taint))


def _untolerated(ctx: CompileContext, effects: tuple[str, ...]) -> np.ndarray:
    """(G, C) whether some taint of the cluster binds the group with one of ``effects``.

    Vectorised over clusters: a fleet has a few distinct taints and a few distinct toleration
    lists, so :func:`binding_effect` is asked once per (group, distinct taint), and a matrix
    product with the clusters' taint incidence spreads the answer over every cluster.
    """
    index: dict[tuple[str, str, str], int] = {}
    distinct: list[Taint] = []
    rows: list[int] = []
    cols: list[int] = []
    for c, cluster in enumerate(ctx.clusters):
        for t in cluster.spec.taints:
            at = index.setdefault((t.key, t.value, t.effect), len(distinct))
            if at == len(distinct):
                distinct.append(t)
            rows.append(c)
            cols.append(at)
    if not distinct:
        return np.zeros((ctx.num_groups, ctx.num_clusters), dtype=bool)
    has = np.zeros((ctx.num_clusters, len(distinct)), dtype=np.int32)
    has[rows, cols] = 1
    binds = np.zeros((ctx.num_groups, len(distinct)), dtype=np.int32)
    by_tolerations: dict[str, np.ndarray] = {}  # groups with the same tolerations answer alike
    for g, spec in enumerate(ctx.groups):
        key = repr([tol.model_dump() for tol in spec.tolerations]) if spec.tolerations else ""
        if key not in by_tolerations:
            by_tolerations[key] = np.array([binding_effect(t, spec.tolerations) in effects for t in distinct],
                                           dtype=np.int32)
        binds[g] = by_tolerations[key]
    return (binds @ has.T) > 0


class TaintsPlugin(Plugin):
    name = "Taints"
    reason = "Untolerated"

    def filter(self, ctx: CompileContext) -> np.ndarray:
        return ~_untolerated(ctx, ("NoSchedule", "NoExecute"))

    def filter_running(self, ctx: CompileContext) -> np.ndarray:
        return ~_untolerated(ctx, ("NoExecute",))

    def explain(self, ctx: CompileContext, group: int, excluded: np.ndarray) -> str:
        spec = ctx.groups[group]
        seen: dict[str, int] = {}
        for c in excluded:
            for t in ctx.clusters[c].spec.taints:
                if binding_effect(t, spec.tolerations) in ("NoSchedule", "NoExecute"):
                    label = f"{t.key}={t.value}:{t.effect}" if t.value else f"{t.key}:{t.effect}"
                    seconds = timed_tolerations(t, spec.tolerations)
                    if seconds is not None:
                        label += f" tolerated for {seconds} s only, so no new replicas"
                    seen[label] = seen.get(label, 0) + 1
        taints = ", ".join(f"{k} ({n})" for k, n in sorted(seen.items()))
        return f"{len(excluded)} cluster(s) had untolerated taint(s): {taints}"

    def prepare(self, ctx: CompileContext, problem: Problem) -> None:
        soft = _untolerated(ctx, ("PreferNoSchedule",))
        problem.pair_prefer_no_schedule = problem.at_pairs(soft)
        _record_timed(ctx, problem)

    def score(self, m: ModelContext) -> None:
        m.add_pair_term("preferNoSchedule", m.problem.pair_prefer_no_schedule.astype(float))


def _record_timed(ctx: CompileContext, problem: Problem) -> None:
    """Record every NoExecute taint tolerated only for ``tolerationSeconds``, and say so in the plan."""
    for g, spec in enumerate(ctx.groups):
        if not any(tol.toleration_seconds is not None for tol in spec.tolerations):
            continue
        members = [problem.workload_keys[w] for w in np.nonzero(problem.group == g)[0].tolist()]
        if not members:
            continue
        by_taint: dict[tuple[str, int], list[str]] = {}
        for c, cluster in enumerate(ctx.clusters):
            for t in cluster.spec.taints:
                seconds = timed_tolerations(t, spec.tolerations)
                if seconds is None:
                    continue
                problem.toleration_seconds[(g, c)] = seconds
                label = f"{t.key}={t.value}:{t.effect}" if t.value else f"{t.key}:{t.effect}"
                by_taint.setdefault((label, seconds), []).append(cluster.metadata.name)
        who = ", ".join(members[:5]) + (f" and {len(members) - 5} more" if len(members) > 5 else "")
        for (label, seconds), names in sorted(by_taint.items()):
            problem.notes.append(
                f"taint {label} on {', '.join(names)} is tolerated for {seconds} s only (tolerationSeconds) "
                f"by {who}: Berth treats it there like NoSchedule and places no new replicas; "
                "the cluster evicts running ones when the seconds run out"
            )
