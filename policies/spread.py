"""Spread across groups of clusters (by region/zone/provider/cluster or a label).

Groups are the distinct values of the field or label among eligible clusters;
a cluster without the label forms no group and is not eligible. The used
groups number between ``minGroups`` and ``maxGroups``; with ``maxSkew`` the
replica totals of used groups differ by at most ``maxSkew``.

Every face of the rule lives here: the filter, the CP-SAT constraints, the construction's order
(the best cluster of each group it needs first), its even fill under ``maxSkew`` and its test
(:func:`spread_holds`), the pairs a small exact solve must be offered, the cost LP's cuts and the
``SpreadUnsatisfiable`` explanation.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

from engine.documents.policy import SpreadConstraint
from engine.documents.selectors import FIELD_LABELS
from engine.lazy import lazy_module
from engine.plan import Reason
from engine.problem import CompileContext, Problem, SpreadRule
from policies.base import Candidates, Fits, ModelContext, Pairs, Placed, Plugin

if TYPE_CHECKING:
    from ortools.sat.python import cp_model
else:
    cp_model = lazy_module("ortools.sat.python.cp_model")

__all__ = ["SpreadPlugin", "spread_holds"]

_MAX_NAMES = 12


def _key(rule: SpreadConstraint) -> str:
    if rule.spread_by_label is not None:
        return rule.spread_by_label
    if rule.spread_by_field == "cluster":
        return ""
    return FIELD_LABELS[str(rule.spread_by_field)]


Groups = tuple[np.ndarray, list[str]]


def _groups(ctx: CompileContext, key: str, memo: dict[str, Groups]) -> Groups:
    """(C,) index of each cluster's value of ``key`` among the sorted values (-1: no value), and those
    values; ``key`` "" is the cluster's name. Once per key (``memo``), over the label table's columns."""
    if key not in memo:
        if not key:
            values = ctx.cluster_names
            codes = np.arange(len(values), dtype=np.int32)
        else:
            codes = ctx.label_table.codes(key)
            values = ctx.label_table.values(key)
        names = sorted(set(values))
        pos = {v: i for i, v in enumerate(names)}
        rank = np.array([pos[v] for v in values], dtype=np.int32)
        group_of = np.where(codes >= 0, rank[np.maximum(codes, 0)] if len(rank) else -1, -1).astype(np.int32)
        memo[key] = (group_of, names)
    return memo[key]


def _rules(p: Problem, w: int) -> list[SpreadRule]:
    return p.group_spread[int(p.group[w])]


def _group_order(order: np.ndarray, groups: np.ndarray, min_groups: int, max_groups: int | None) -> np.ndarray:
    """Reorder candidates so the best cluster of each of the first ``min_groups`` groups comes first,
    and drop clusters of groups beyond ``max_groups``."""
    g = groups[order]
    seen: list[int] = []
    for gid in g.tolist():
        if gid not in seen:
            seen.append(gid)
    if max_groups is not None:
        keep = np.isin(g, seen[:max_groups])
        order, g = order[keep], g[keep]
    firsts = [int(np.nonzero(g == gid)[0][0]) for gid in seen[:min_groups]]
    rest = np.ones(len(order), dtype=bool)
    rest[firsts] = False
    return np.concatenate([order[firsts], order[rest]])


def _even(order: np.ndarray, groups: np.ndarray, room: np.ndarray, replicas: int, lo: int,
          n_groups: int) -> np.ndarray:
    """Divided with ``maxSkew``: ``n_groups`` best groups get totals that differ by at most one."""
    ys = np.zeros(len(room), dtype=np.int64)
    chosen: list[int] = []
    for gid in groups[order].tolist():
        if gid not in chosen:
            chosen.append(gid)
        if len(chosen) == n_groups:
            break
    if len(chosen) < n_groups:
        return np.zeros(0, dtype=np.int64)
    base, extra = divmod(replicas, n_groups)
    for k, gid in enumerate(chosen):
        left = base + (1 if k < extra else 0)
        for i in order[groups[order] == gid].tolist():
            add = min(int(room[i]), left)
            if add < lo and add < left:
                continue
            if add < lo:
                break
            ys[i] = add
            left -= add
            if left == 0:
                break
        if left:
            return np.zeros(0, dtype=np.int64)
    return ys


def spread_holds(problem: Problem, w: int, clusters: np.ndarray, ys: np.ndarray) -> bool:
    """Whether replicas ``ys`` on ``clusters`` meet every spread rule of ``w``: groups used between
    ``minGroups`` and ``maxGroups``, totals of used groups within ``maxSkew``, no cluster outside a group."""
    for rule in _rules(problem, w):
        groups = rule.group_of[clusters[ys > 0]]
        if (groups < 0).any():
            return False
        used, totals = np.unique(groups, return_inverse=True)
        if len(used) < rule.min_groups or (rule.max_groups is not None and len(used) > rule.max_groups):
            return False
        if rule.max_skew is not None and len(used) > 1:
            sums = np.bincount(totals, weights=ys[ys > 0])
            if sums.max() - sums.min() > rule.max_skew:
                return False
    return True


class SpreadPlugin(Plugin):
    name = "Spread"
    reason = "SpreadUnsatisfiable"

    def filter(self, ctx: CompileContext) -> np.ndarray:
        out = np.ones((ctx.num_groups, ctx.num_clusters), dtype=bool)
        memo: dict[str, Groups] = {}
        for g, spec in enumerate(ctx.groups):
            for rule in spec.spread_constraints:
                out[g] &= _groups(ctx, _key(rule), memo)[0] >= 0
        return out

    def explain(self, ctx: CompileContext, group: int, excluded: np.ndarray) -> str:
        keys = [
            r.spread_by_label or str(r.spread_by_field) for r in ctx.groups[group].spread_constraints
        ]
        return f"{len(excluded)} cluster(s) have no value for spread key(s) {', '.join(keys)}"

    def prepare(self, ctx: CompileContext, problem: Problem) -> None:
        memo: dict[str, Groups] = {}
        for g, spec in enumerate(ctx.groups):
            rules: list[SpreadRule] = []
            for rule in spec.spread_constraints:
                group_of, names = _groups(ctx, _key(rule), memo)
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

    # --- construction -----------------------------------------------------------------------------

    def order(self, problem: Problem, at: Pairs, order: np.ndarray) -> np.ndarray:
        rules = _rules(problem, at.w)
        if not rules:
            return order
        first = rules[0]
        return _group_order(order, first.group_of[at.clusters], first.min_groups, first.max_groups)

    def propose(self, problem: Problem, at: Pairs, cand: Candidates) -> np.ndarray | None:
        """A Divided workload with ``maxSkew``: even totals over the fewest groups it needs."""
        p, w = problem, at.w
        if p.duplicated[w] or (len(p.fixed_division) and p.fixed_division[w]):
            return None  # copies are whole, a weightPreference division is fixed: the shape decides
        skew = next((r for r in _rules(p, w) if r.max_skew is not None), None)
        if skew is None:
            return None
        return _even(cand.order, skew.group_of[at.clusters], cand.room, int(p.replicas[w]), int(p.min_per[w]),
                     cand.fewest)

    def admit(self, problem: Problem, at: Pairs, ys: np.ndarray, state: Placed) -> bool:
        return spread_holds(problem, at.w, at.clusters, ys)

    def fewest_clusters(self, problem: Problem, w: int) -> int:
        return max((r.min_groups for r in _rules(problem, w)), default=1)

    def offer(self, problem: Problem, at: Pairs, order: np.ndarray) -> np.ndarray | None:
        """The best two pairs of every group, so that a small solve can meet ``minGroups`` and skew."""
        rules = _rules(problem, at.w)
        if not rules:
            return None
        out = []
        for rule in rules:
            groups = rule.group_of[at.clusters[order]]
            for gid in np.unique(groups):
                out.append(order[groups == gid][:2])
        return np.concatenate(out) if out else None

    # --- the cost LP ------------------------------------------------------------------------------

    def rigid(self, problem: Problem) -> np.ndarray | None:
        has = np.array([bool(rules) for rules in problem.group_spread], dtype=bool)
        return has[problem.group] if has.any() else None

    def fixed_layout(self, problem: Problem) -> np.ndarray | None:
        """With ``maxSkew`` the totals per group are bound together: the LP keeps the layout."""
        skewed = np.array([any(r.max_skew is not None for r in rules) for rules in problem.group_spread], dtype=bool)
        return skewed[problem.group] if skewed.any() else None

    # --- explanations -----------------------------------------------------------------------------

    def why_not_alone(self, problem: Problem, w: int, fits: Fits) -> Reason | None:
        """``SpreadUnsatisfiable`` when ``w`` would fit without its spread rules."""
        p = problem
        rules = _rules(p, w)
        if not rules or not fits(drop_spread=True):
            return None
        pair_clusters = p.pair_c[p.pairs_of(w)]
        parts = []
        for rule in rules:
            groups = sorted({rule.group_names[g] for g in rule.group_of[pair_clusters] if g >= 0})
            if not p.duplicated[w] and int(p.replicas[w]) < rule.min_groups:
                # each used group holds at least one replica: too few replicas, not too few clusters
                parts.append(f"{rule.key} needs {rule.min_groups} group(s) but the workload has only "
                             f"{int(p.replicas[w])} replica(s)")
                continue
            parts.append(
                f"{rule.key} needs {rule.min_groups}"
                + (f"..{rule.max_groups}" if rule.max_groups else "")
                + (f" group(s) with maxSkew {rule.max_skew}" if rule.max_skew is not None else " group(s)")
                + f"; clusters with room span {len(groups)}: {', '.join(groups) or 'none'}"
            )
        return Reason(code="SpreadUnsatisfiable", message="; ".join(parts),
                      clusters=[p.cluster_names[c] for c in pair_clusters[:_MAX_NAMES].tolist()])
