"""Taints and tolerations, with Kubernetes semantics.

``NoSchedule`` and ``NoExecute`` taints exclude a cluster unless tolerated;
an untolerated ``PreferNoSchedule`` taint only costs (term ``preferNoSchedule``).
"""

from __future__ import annotations

import numpy as np

from engine.problem import Problem
from engine.resources import Taint, Toleration
from policies.base import CompileContext, ModelContext, Plugin

__all__ = ["TaintsPlugin", "tolerates"]


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


def _untolerated(ctx: CompileContext, effects: tuple[str, ...]) -> np.ndarray:
    out = np.zeros((ctx.num_groups, ctx.num_clusters), dtype=bool)
    for c, cluster in enumerate(ctx.clusters):
        taints = [t for t in cluster.spec.taints if t.effect in effects]
        if not taints:
            continue
        for g, spec in enumerate(ctx.groups):
            out[g, c] = any(not any(tolerates(tol, t) for tol in spec.tolerations) for t in taints)
    return out


class TaintsPlugin(Plugin):
    name = "Taints"
    reason = "Untolerated"

    def filter(self, ctx: CompileContext) -> np.ndarray:
        return ~_untolerated(ctx, ("NoSchedule", "NoExecute"))

    def explain(self, ctx: CompileContext, group: int, excluded: np.ndarray) -> str:
        spec = ctx.groups[group]
        seen: dict[str, int] = {}
        for c in excluded:
            for t in ctx.clusters[c].spec.taints:
                if t.effect != "PreferNoSchedule" and not any(
                    tolerates(tol, t) for tol in spec.tolerations
                ):
                    label = f"{t.key}={t.value}:{t.effect}" if t.value else f"{t.key}:{t.effect}"
                    seen[label] = seen.get(label, 0) + 1
        taints = ", ".join(f"{k} ({n})" for k, n in sorted(seen.items()))
        return f"{len(excluded)} cluster(s) had untolerated taint(s): {taints}"

    def prepare(self, ctx: CompileContext, problem: Problem) -> None:
        soft = _untolerated(ctx, ("PreferNoSchedule",))
        problem.pair_prefer_no_schedule = soft[problem.group[problem.pair_w], problem.pair_c]

    def score(self, m: ModelContext) -> None:
        m.add_pair_term("preferNoSchedule", m.problem.pair_prefer_no_schedule.astype(float))
