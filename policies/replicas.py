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

Every face of the replica shape lives here: the CP-SAT constraints and the ``clusters`` term,
construction's placement of a workload's replicas (:func:`_shaped`: a fixed division, whole
copies on one tier or on the chosen spread groups, a Divided fill within the cluster count) and
its test, the cost LP's cuts, and the explanations of a shape no placement can meet. What the
solvers ask about the shape outside these faces is its companion :mod:`policies.replica_shape`.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

from engine.lazy import lazy_module
from engine.plan import Reason
from engine.problem import UNLIMITED, BoolArray, Problem, broadcast_groups, broadcast_tiers, eligible_clusters
from policies.base import Candidates, ModelContext, Pairs, Placed, Plugin

if TYPE_CHECKING:
    from ortools.sat.python import cp_model
else:
    cp_model = lazy_module("ortools.sat.python.cp_model")

__all__ = ["ReplicaSchedulingPlugin"]

_MAX_NAMES = 12


def _names(p: Problem, clusters: np.ndarray) -> list[str]:
    return [p.cluster_names[c] for c in clusters.tolist()][:_MAX_NAMES]


def _broadcast_by_groups(m: ModelContext, w: int, pairs: list[int], used: list[cp_model.IntVar]) -> None:
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
    pair_of: dict[int, tuple[int, cp_model.IntVar]],
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


def _fill(order: np.ndarray, room: np.ndarray, replicas: int, lo: int, share: int, count_max: int) -> np.ndarray:
    """Divided fill: at most ``share`` per cluster first, then top up to ``room``; bounds respected."""
    ys = np.zeros(len(room), dtype=np.int64)
    left = replicas
    used = 0
    for cap in (share, None):
        for i in order.tolist():
            if left == 0:
                break
            if ys[i] == 0 and used >= count_max:
                continue
            limit = int(room[i]) if cap is None else min(int(room[i]), cap)
            add = min(limit - int(ys[i]), left)
            if add <= 0 or (ys[i] == 0 and add < lo):
                continue
            if ys[i] == 0:
                used += 1
            ys[i] += add
            left -= add
    return ys if left == 0 else np.zeros(0, dtype=np.int64)


def _within_count(order: np.ndarray, room: np.ndarray, replicas: int, lo: int, count_max: int) -> np.ndarray:
    """At most ``count_max`` of ``order``, best first, that can hold ``replicas`` together: a cluster is
    taken only while the roomiest of the clusters after it can still hold what it leaves."""
    usable = np.where(room[order] >= lo, room[order], 0)
    chosen: list[int] = []
    left = replicas
    for k, i in enumerate(order.tolist()):
        if left <= 0 or len(chosen) == count_max:
            break
        take = min(int(usable[k]), left)
        if take <= 0:
            continue
        slots = count_max - len(chosen) - 1
        others = int(np.sort(usable[k + 1:])[::-1][:slots].sum()) if slots else 0
        if left - take > others:
            continue  # taking it would leave more than the remaining slots can hold
        chosen.append(i)
        left -= take
    return np.array(chosen, dtype=order.dtype)


def _copies_by_groups(p: Problem, at: Pairs, ok: np.ndarray, score: np.ndarray) -> np.ndarray | None:
    """Pairs of a broadcast with a spread ``maxGroups``: every eligible cluster of up to ``maxGroups``
    groups whose eligible clusters all take a copy (most copies first, then the best score), or
    ``None``. One such rule is handled; with more the workload is left to the exact model."""
    rules = broadcast_groups(p, at.w)
    if len(rules) != 1:
        return None
    rule = rules[0]
    pcs = at.clusters
    elig = eligible_clusters(p, at.w)
    fine = np.zeros(p.num_clusters, dtype=bool)
    fine[pcs[ok]] = True
    pair_group = rule.group_of[pcs]
    good = [g for g in np.unique(rule.group_of[elig]).tolist() if fine[elig[rule.group_of[elig] == g]].all()]
    if not good:
        return None
    good.sort(key=lambda g: (-int((pair_group == g).sum()), float(score[pair_group == g].min())))
    assert rule.max_groups is not None
    chosen: BoolArray = np.isin(pair_group, good[: rule.max_groups]) & ok
    return chosen


def _copies_by_tier(p: Problem, at: Pairs, ok: np.ndarray) -> np.ndarray | None:
    """Pairs of a broadcast with several ``clusterAffinities`` tiers: every eligible cluster of the
    first tier whose eligible clusters all take a copy (spec 2.6, as Karmada), or ``None``."""
    tiers = broadcast_tiers(p, at.w)
    assert tiers is not None
    pcs = at.clusters
    elig = eligible_clusters(p, at.w)
    fine = np.zeros(p.num_clusters, dtype=bool)
    fine[pcs[ok]] = True
    for t in np.unique(tiers[elig]).tolist():
        if fine[elig[tiers[elig] == t]].all():
            chosen: BoolArray = (tiers[pcs] == t) & ok
            return chosen
    return None


_NONE = np.zeros(0, dtype=np.int64)


def _shaped(p: Problem, at: Pairs, cand: Candidates) -> np.ndarray:
    """Construction's placement of one workload's replicas by its shape (spec 2.5, 2.6), or empty."""
    w = at.w
    replicas = int(p.replicas[w])
    count_min, count_max = int(p.count_min[w]), int(p.count_max[w])
    ok, room, order = cand.ok, cand.room, cand.order
    by_groups = bool(p.broadcast[w]) and bool(broadcast_groups(p, w))
    by_tier = bool(p.broadcast[w]) and broadcast_tiers(p, w) is not None
    if by_tier and by_groups:
        return _NONE  # both a spread maxGroups and tiers: left to the exact model
    if p.broadcast[w] and not by_groups and not by_tier and (not ok.all() or len(at) < int(p.eligible_count[w])):
        return _NONE  # a copy on every eligible cluster, and one has no room for it
    if len(p.fixed_division) and p.fixed_division[w]:
        # weightPreference: each pair's upper bound is its share of the fixed division, taken whole
        ys = p.pair_ub[at.lo:at.hi].astype(np.int64)
        return _NONE if not ok.all() or (room < ys).any() or int(ys.sum()) != replicas else ys
    if by_groups or by_tier:
        chosen = _copies_by_tier(p, at, ok) if by_tier else _copies_by_groups(p, at, ok, cand.score)
        return _NONE if chosen is None else np.where(chosen, replicas, 0).astype(np.int64)
    if p.duplicated[w]:
        k = len(order) if p.broadcast[w] else min(count_max, len(order))
        if k < count_min or k == 0:
            return _NONE
        ys = np.zeros(len(at), dtype=np.int64)
        ys[order[:k]] = replicas
        return ys
    share = -(-replicas // cand.fewest)
    lo = int(p.min_per[w])
    ys = _fill(order, room, replicas, lo, share, count_max)
    if not len(ys) and count_max < len(order):
        # the best clusters by score cannot hold it within the cluster count: keep to clusters that
        # leave room for the rest on the roomiest of the others
        ys = _fill(_within_count(order, room, replicas, lo, count_max), room, replicas, lo, share, count_max)
    return ys


def _division_short(p: Problem, w: int, sl: slice) -> Reason | None:
    """Why a fixed ``weightPreference`` division does not fit the empty fleet, or ``None`` when it does."""
    target = p.division_target[w]
    replicas = int(p.replicas[w])
    if not target.any():
        return Reason(code="InsufficientCapacity", message=(
            f"weightPreference dynamicWeight AvailableReplicas: the eligible clusters can take fewer than "
            f"its {replicas} replica(s)"))
    room = np.zeros(p.num_clusters, dtype=np.int64)
    room[p.pair_c[sl]] = p.pair_ub[sl]
    short = np.nonzero((room < target) | ((target > 0) & (target < p.min_per[w])))[0]
    if not len(short):
        return None
    detail = ", ".join(f"{p.cluster_names[c]} {int(target[c])} (room for {int(room[c])})"
                       for c in short[:_MAX_NAMES].tolist())
    return Reason(code="InsufficientCapacity", message=(
        f"weightPreference fixes {replicas} replica(s) per cluster and some clusters cannot take their "
        f"share: {detail} (per-cluster bounds {int(p.min_per[w])}..{int(p.max_per[w])})"),
        clusters=_names(p, short))


class ReplicaSchedulingPlugin(Plugin):
    name = "ReplicaScheduling"

    def constrain(self, m: ModelContext) -> None:
        p = m.problem
        for w in range(p.num_workloads):
            pairs = range(*p.pairs_of(w).indices(p.num_pairs))
            placed = m.placed[w]
            if not len(pairs):
                continue
            if m.used[pairs[0]] is None:
                continue  # plain Divided: y's domain and the engine's link suffice
            used = [m.uses(i) for i in pairs]
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

    # --- construction -----------------------------------------------------------------------------

    def admit_pairs(self, problem: Problem, at: Pairs, state: Placed, room: np.ndarray,
                    together: np.ndarray | None = None) -> np.ndarray | None:
        """Only pairs with room for its smallest count: a whole copy (Duplicated), else ``minPerCluster``."""
        p, w = problem, at.w
        return room >= (int(p.replicas[w]) if p.duplicated[w] else int(p.min_per[w]))

    def propose(self, problem: Problem, at: Pairs, cand: Candidates) -> np.ndarray | None:
        return _shaped(problem, at, cand)

    def admit(self, problem: Problem, at: Pairs, ys: np.ndarray, state: Placed) -> bool:
        """Every replica (Divided) or whole copies (Duplicated), ``minPerCluster``, the cluster count.

        ``maxPerCluster`` and room are the pairs' bounds (:meth:`admit_pairs`, the room per pair)."""
        p, w = problem, at.w
        n = int(np.count_nonzero(ys))
        if not p.broadcast[w] and not int(p.count_min[w]) <= n <= int(p.count_max[w]):
            return False
        replicas, lo = int(p.replicas[w]), int(p.min_per[w])
        if p.duplicated[w]:
            # copies of at most ``replicas`` that add up to n copies: every one is whole
            return int(ys.sum()) == n * replicas and int(ys.max(initial=0)) <= replicas and (n == 0 or replicas >= lo)
        return int(ys.sum()) == replicas and (lo <= 1 or int(ys[ys > 0].min()) >= lo)

    def fewest_clusters(self, problem: Problem, w: int) -> int:
        return int(problem.count_min[w])

    # --- the cost LP and the CP-SAT model ---------------------------------------------------------

    def rigid(self, problem: Problem) -> np.ndarray | None:
        """Duplicated, Aggregated, per-cluster minimum above 1, or a cluster count that binds."""
        p = problem
        pairs = np.bincount(p.pair_w, minlength=p.num_workloads)
        rigid: BoolArray = p.duplicated | p.aggregated | (p.min_per > 1) | (p.count_min > 1) | (p.count_max < pairs)
        return rigid

    def fixed_layout(self, problem: Problem) -> np.ndarray | None:
        """Duplicated copies are whole: the LP keeps where they are."""
        return problem.duplicated.copy()

    # --- explanations -----------------------------------------------------------------------------

    def why_never(self, problem: Problem, w: int) -> Reason | None:
        """A fixed division that does not fit, bounds that no count meets, or no tier (or not every
        eligible cluster, for a broadcast) that can hold a copy."""
        p = problem
        sl = p.pairs_of(w)
        pair_clusters = p.pair_c[sl]
        elig_idx = np.nonzero(p.reason_row(w) == -1)[0]
        if w in p.division_target:
            division = _division_short(p, w, sl)
            if division is not None:
                return division
        if p.duplicated[w] and not (p.min_per[w] <= p.replicas[w] <= p.max_per[w]):
            return Reason(code="InsufficientCapacity", message=(
                f"Duplicated copies of {int(p.replicas[w])} replica(s) do not fit "
                f"minPerCluster {int(p.min_per[w])} / maxPerCluster {int(p.max_per[w])}"))
        if not p.duplicated[w] and p.min_per[w] > p.replicas[w]:
            return Reason(code="InsufficientCapacity", message=(
                f"minPerCluster {int(p.min_per[w])} exceeds its {int(p.replicas[w])} replica(s)"))
        tiers = broadcast_tiers(p, w) if not broadcast_groups(p, w) else None
        if tiers is not None:
            # spec 2.6: the eligible clusters of one tier, the first that can take every copy
            names = [t.affinity_name for t in p.group_specs[int(p.group[w])].cluster_affinities or []]
            full = {t: np.setdiff1d(elig_idx[tiers[elig_idx] == t], pair_clusters)
                    for t in np.unique(tiers[elig_idx]).tolist()}
            if all(len(m) for m in full.values()):
                return Reason(
                    code="InsufficientCapacity",
                    message=("Duplicated to the eligible clusters of one tier, but no tier can hold a copy of "
                             f"{int(p.replicas[w])} replica(s) on each: "
                             + "; ".join(f"{names[t]}: {len(m)} of {int((tiers[elig_idx] == t).sum())} full"
                                         for t, m in full.items())),
                    clusters=_names(p, np.concatenate(list(full.values()))))
        elif p.broadcast[w] and len(pair_clusters) < len(elig_idx):
            missing = np.setdiff1d(elig_idx, pair_clusters)
            return Reason(
                code="InsufficientCapacity",
                message=(f"Duplicated to every eligible cluster, but {len(missing)} of "
                         f"{len(elig_idx)} cannot hold a copy of {int(p.replicas[w])} replica(s)"),
                clusters=_names(p, missing))
        return None
