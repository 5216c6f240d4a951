"""Replica scheduling: Divided and Duplicated, per-cluster bounds, cluster count.

* Divided: ``sum_c y = replicas`` when placed (the engine links that), and
  ``minPerCluster <= y <= maxPerCluster`` where ``y > 0``.
* Duplicated: every chosen cluster gets exactly ``replicas``; with no
  ``clusters`` field every eligible cluster is chosen (broadcast, like
  Karmada and EMCO ``allOf``), so one eligible cluster without room leaves the
  workload unplaced; with a spread ``maxGroups``, every eligible cluster of the
  groups chosen, and with several ``clusterAffinities`` tiers every eligible
  cluster of one tier (spec 2.6).
* ``clusters: {min, max}`` bounds the clusters with at least one replica.
* ``Aggregated`` division pays ``clusters`` per cluster used.
"""

from __future__ import annotations

import numpy as np
from ortools.sat.python import cp_model

from engine.problem import broadcast_groups, broadcast_tiers, eligible_clusters
from policies.base import ModelContext, Plugin

__all__ = ["ReplicaSchedulingPlugin"]


def _broadcast_by_groups(m: ModelContext, w: int, pairs: list[int], used: list) -> None:  # type: ignore[type-arg]
    """used[c] <=> placed and every choice of c is made: its group for each spread rule with
    maxGroups, and its tier with several clusterAffinities (exactly one tier when placed). A group
    or tier holding an eligible cluster without a pair (no room for a copy) cannot be chosen."""
    p = m.problem
    parts = [rule.group_of for rule in broadcast_groups(p, w)]
    tiers = broadcast_tiers(p, w)
    if tiers is not None:
        parts.append(tiers)
    placed = m.placed[w]
    elig = eligible_clusters(p, w)
    pair_of = {int(p.pair_c[i]): (i, u) for i, u in zip(pairs, used, strict=True)}
    chosen: list[dict[int, cp_model.IntVar]] = []
    for k, part in enumerate(parts):
        per: dict[int, cp_model.IntVar] = {}
        for gid in np.unique(part[elig]).tolist():
            b = m.model.new_bool_var(f"bcast_w{w}_r{k}_g{gid}")
            m.model.add_implication(b, placed)
            per[int(gid)] = b
        chosen.append(per)
    if tiers is not None:
        m.model.add(cp_model.LinearExpr.sum(list(chosen[-1].values())) == placed)
    for c in elig.tolist():
        bs = [chosen[k][int(part[c])] for k, part in enumerate(parts)]
        if c not in pair_of:
            # no room for a copy here: not every group of this cluster may be chosen
            m.model.add(cp_model.LinearExpr.sum(bs) <= len(bs) - 1)
            continue
        _, u = pair_of[c]
        for b in bs:
            m.model.add_implication(u, b)
        # every group chosen -> a copy here
        m.model.add(u >= cp_model.LinearExpr.sum(bs) - (len(bs) - 1))


class ReplicaSchedulingPlugin(Plugin):
    name = "ReplicaScheduling"

    def constrain(self, m: ModelContext) -> None:
        p = m.problem
        for w in range(p.num_workloads):
            pairs = range(*p.pairs_of(w).indices(p.num_pairs))
            placed = m.placed[w]
            if not len(pairs):
                continue
            used = [m.used[i] for i in pairs]
            if used[0] is None:
                continue  # plain Divided: y's domain and the engine's link suffice
            n_pairs = len(pairs)
            replicas = int(p.replicas[w])
            if p.duplicated[w]:
                # y = replicas exactly where used
                for i, u in zip(pairs, used, strict=True):
                    m.model.add(m.y[i] == replicas * u)
            else:
                # minPerCluster * used <= y <= ub * used
                lo = int(p.min_per[w])
                for i, u in zip(pairs, used, strict=True):
                    m.model.add(m.y[i] >= lo * u)
                    m.model.add(m.y[i] <= int(p.pair_ub[i]) * u)
            total_used = cp_model.LinearExpr.sum(used)
            if p.broadcast[w] and (broadcast_groups(p, w) or broadcast_tiers(p, w) is not None):
                _broadcast_by_groups(m, w, list(pairs), used)
                continue
            if p.broadcast[w]:
                # every eligible cluster, or none
                if n_pairs < int(p.eligible_count[w]):
                    m.model.add(placed == 0)
                for u in used:
                    m.model.add(u == placed)
                continue
            # count_min * placed <= clusters used <= count_max * placed
            m.model.add(total_used >= int(p.count_min[w]) * placed)
            if int(p.count_max[w]) < n_pairs:
                m.model.add(total_used <= int(p.count_max[w]) * placed)
            for u in used:
                m.model.add_implication(u, placed)

    def score(self, m: ModelContext) -> None:
        p = m.problem
        for w in range(p.num_workloads):
            if not p.aggregated[w]:
                continue
            for i in range(*p.pairs_of(w).indices(p.num_pairs)):
                u = m.used[i]
                if u is not None:
                    m.add_term("clusters", u, 1.0)
