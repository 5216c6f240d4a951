"""Spread across groups of clusters (by region/zone/provider/cluster or a label).

Groups are the distinct values of the field or label among eligible clusters;
a cluster without the label forms no group and is not eligible. The used
groups number between ``minGroups`` and ``maxGroups``; with ``maxSkew`` the
replica totals of used groups differ by at most ``maxSkew``.
"""

from __future__ import annotations

import numpy as np
from ortools.sat.python import cp_model

from engine.documents.policy import SpreadConstraint
from engine.documents.selectors import FIELD_LABELS
from engine.problem import CompileContext, Problem, SpreadRule
from policies.base import ModelContext, Plugin

__all__ = ["SpreadPlugin"]


def _key(rule: SpreadConstraint) -> str:
    if rule.spread_by_label is not None:
        return rule.spread_by_label
    if rule.spread_by_field == "cluster":
        return ""
    return FIELD_LABELS[str(rule.spread_by_field)]


def _values(ctx: CompileContext, key: str) -> list[str | None]:
    if not key:
        return [c.metadata.name for c in ctx.clusters]
    return [labels.get(key) for labels in ctx.cluster_labels]


class SpreadPlugin(Plugin):
    name = "Spread"
    reason = "SpreadUnsatisfiable"

    def filter(self, ctx: CompileContext) -> np.ndarray:
        out = np.ones((ctx.num_groups, ctx.num_clusters), dtype=bool)
        for g, spec in enumerate(ctx.groups):
            for rule in spec.spread_constraints:
                out[g] &= np.array([v is not None for v in _values(ctx, _key(rule))], dtype=bool)
        return out

    def explain(self, ctx: CompileContext, group: int, excluded: np.ndarray) -> str:
        keys = [
            r.spread_by_label or str(r.spread_by_field) for r in ctx.groups[group].spread_constraints
        ]
        return f"{len(excluded)} cluster(s) have no value for spread key(s) {', '.join(keys)}"

    def prepare(self, ctx: CompileContext, problem: Problem) -> None:
        for g, spec in enumerate(ctx.groups):
            rules: list[SpreadRule] = []
            for rule in spec.spread_constraints:
                values = _values(ctx, _key(rule))
                names = sorted({v for v in values if v is not None})
                index = {v: i for i, v in enumerate(names)}
                group_of = np.array(
                    [index[v] if v is not None else -1 for v in values], dtype=np.int32
                )
                rules.append(
                    SpreadRule(
                        key=rule.spread_by_label or str(rule.spread_by_field),
                        group_of=group_of,
                        group_names=names,
                        min_groups=rule.min_groups,
                        max_groups=rule.max_groups,
                        max_skew=rule.max_skew,
                    )
                )
            problem.group_spread[g] = rules

    def constrain(self, m: ModelContext) -> None:
        p = m.problem
        for w in range(p.num_workloads):
            rules = p.group_spread[int(p.group[w])]
            if not rules:
                continue
            pairs = np.arange(*p.pairs_of(w).indices(p.num_pairs))
            placed = m.placed[w]
            if not len(pairs):
                continue
            big = int(p.pair_ub[pairs].sum())
            for rule in rules:
                groups = rule.group_of[p.pair_c[pairs]]
                used_groups: list[cp_model.IntVar] = []
                totals: list[tuple[cp_model.IntVar, cp_model.LinearExprT]] = []
                for gid in np.unique(groups):
                    members = pairs[groups == gid]
                    # group used <=> some member pair used
                    gu = m.model.new_bool_var(f"spread_w{w}_{rule.key}_{gid}")
                    member_used = [m.used[i] for i in members]
                    for u in member_used:
                        m.model.add_implication(u, gu)
                    m.model.add(cp_model.LinearExpr.sum(member_used) >= gu)
                    used_groups.append(gu)
                    totals.append((gu, cp_model.LinearExpr.sum([m.y[i] for i in members])))
                count = cp_model.LinearExpr.sum(used_groups)
                m.model.add(count >= rule.min_groups * placed)
                if rule.max_groups is not None and rule.max_groups < len(used_groups):
                    m.model.add(count <= rule.max_groups)
                if rule.max_skew is not None and len(totals) > 1:
                    # replica totals of used groups lie within [low, high], high - low <= maxSkew
                    high = m.model.new_int_var(0, big, f"skew_hi_w{w}_{rule.key}")
                    low = m.model.new_int_var(0, big, f"skew_lo_w{w}_{rule.key}")
                    for gu, total in totals:
                        m.model.add(total <= high)
                        m.model.add(total >= low).only_enforce_if(gu)
                    m.model.add(high - low <= rule.max_skew)
