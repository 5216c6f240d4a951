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

from engine.problem import UNLIMITED, broadcast_groups, broadcast_tiers, eligible_clusters
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
    if tiers is not None:
        _first_tier_that_can(m, w, elig, tiers, chosen[-1], pair_of)


def _first_tier_that_can(
    m: ModelContext, w: int, elig: np.ndarray, tiers: np.ndarray, chosen: dict[int, cp_model.IntVar],
    pair_of: dict[int, tuple[int, object]],
) -> None:
    """A later tier only when no earlier one can take every copy (spec 2.6): choosing tier ``t``
    requires, in each earlier tier, an eligible cluster that cannot hold a copy in this plan
    (no pair at all, or what the other workloads use there leaves less than a copy of some
    resource, or an anti-affine workload runs there)."""
    p = m.problem
    replicas = int(p.replicas[w])
    # cluster -> literal "cannot take a copy"; None: never; True: always
    unable: dict[int, cp_model.IntVar | bool | None] = {}

    def cannot(c: int) -> cp_model.IntVar | bool | None:
        if c in unable:
            return unable[c]
        pairs_c = np.nonzero(p.pair_c == c)[0]
        others = pairs_c[p.pair_w[pairs_c] != w]
        reasons: list[cp_model.IntVar] = []
        for r in range(len(p.resource_names)):
            need = replicas * int(p.request[w, r])
            limit = int(p.capacity[c, r])
            if need <= 0 or limit == UNLIMITED:
                continue
            coeff = p.request[p.pair_w[others], r]
            keep = coeff > 0
            if not keep.any():
                continue
            f = m.model.new_bool_var(f"tierfull_w{w}_c{c}_r{r}")
            # f -> the others leave less than one copy of r here
            m.model.add(
                cp_model.LinearExpr.weighted_sum([m.y[i] for i in others[keep]], coeff[keep].tolist())
                >= limit - need + 1
            ).only_enforce_if(f)
            reasons.append(f)
        anti = np.concatenate([p.anti_b[p.anti_a == w], p.anti_a[p.anti_b == w]])
        for v in np.unique(anti).tolist():
            idx = int(p.pair_index(np.array([v]), np.array([c]))[0])
            if idx < 0:
                continue
            a = m.model.new_bool_var(f"tieranti_w{w}_v{v}_c{c}")
            m.model.add(m.y[idx] >= 1).only_enforce_if(a)  # a -> the anti-affine workload runs on c
            reasons.append(a)
        for u in np.unique(p.affinity_to[p.affinity_from == w]).tolist():
            idx = int(p.pair_index(np.array([u]), np.array([c]))[0])
            if idx < 0:
                unable[c] = True  # the affine workload can never run here: neither can a copy
                return True
            z = m.model.new_bool_var(f"tieraff_w{w}_u{u}_c{c}")
            m.model.add(m.y[idx] == 0).only_enforce_if(z)  # z -> the affine workload is not on c
            reasons.append(z)
        if not reasons:
            unable[c] = None
            return None
        full = m.model.new_bool_var(f"tierunable_w{w}_c{c}")
        m.model.add_bool_or(reasons).only_enforce_if(full)
        unable[c] = full
        return full

    for t, b in chosen.items():
        for earlier in sorted(set(tiers[elig].tolist())):
            if earlier >= t:
                break
            members = [int(c) for c in elig[tiers[elig] == earlier].tolist()]
            if any(c not in pair_of for c in members):
                continue  # a cluster of that tier can never hold a copy: it cannot take them all
            found = [cannot(c) for c in members]
            if any(lit is True for lit in found):
                continue
            literals = [lit for lit in found if lit is not None and lit is not True]
            if not literals:
                m.model.add(b == 0)  # that tier can always take every copy
                continue
            m.model.add_bool_or(literals).only_enforce_if(b)


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
