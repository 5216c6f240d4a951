"""Construction: place one workload at a time against what is left, in the order of spec section 3.

:func:`place_one` is the construction rule every heuristic shares (:mod:`engine.solvers.large`,
:mod:`engine.solvers.repair`, :mod:`engine.solvers.incremental`, the explanations and the
greedy baseline in ``benchmarks/``): all or nothing, every hard constraint of section 2 that
concerns the workload, earlier tiers first, then the cheapest clusters by the weighted objective
per replica. :class:`Residual` is the capacity and quota left; :func:`hardest_first` and
:func:`smallest_first` are the construction orders.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from engine.objective import pair_weights
from engine.problem import BIG, UNLIMITED, Problem, broadcast_groups, broadcast_tiers, eligible_clusters, usage

__all__ = ["COST_WEIGHT", "ROOM_WEIGHT", "Residual", "hardest_first", "pair_score", "place_one", "place_scored",
           "smallest_first", "spread_ok"]


@dataclass
class Residual:
    """What is left: capacity (C, R) and quota (T, R) in solver units, and replicas per pair so far."""

    capacity: np.ndarray
    quota: np.ndarray
    y: np.ndarray
    starts: np.ndarray  # pairs of workload w are starts[w]:starts[w + 1]

    @classmethod
    def empty(cls, problem: Problem) -> Residual:
        p = problem
        return cls(
            capacity=np.where(p.capacity == UNLIMITED, BIG, p.capacity).astype(np.int64),
            quota=np.where(p.quota == UNLIMITED, BIG, p.quota).astype(np.int64),
            y=np.zeros(p.num_pairs, dtype=np.int64),
            starts=np.searchsorted(p.pair_w, np.arange(p.num_workloads + 1)),
        )

    @classmethod
    def from_y(cls, problem: Problem, y: np.ndarray) -> Residual:
        """The residual state after placing replicas ``y`` (per pair)."""
        p = problem
        state = cls.empty(p)
        state.y = y.astype(np.int64).copy()
        state.capacity -= usage(p, state.y)
        for t in range(len(p.tenant_names)):
            mine = p.tenant[p.pair_w] == t
            state.quota[t] -= (state.y[mine, None] * p.request[p.pair_w[mine]]).sum(axis=0)
        return state

    def copy(self) -> Residual:
        return Residual(self.capacity.copy(), self.quota.copy(), self.y.copy(), self.starts)

    def take(self, problem: Problem, w: int, ys: np.ndarray) -> None:
        """Record ``ys`` (replicas per pair of ``w``) and charge capacity and quota."""
        p = problem
        lo, hi = int(self.starts[w]), int(self.starts[w + 1])
        self.y[lo:hi] = ys
        req = p.request[w]
        self.capacity[p.pair_c[lo:hi]] -= ys[:, None] * req[None, :]
        t = int(p.tenant[w])
        if t >= 0:
            self.quota[t] -= int(ys.sum()) * req

    def clusters_of(self, w: int, problem: Problem) -> np.ndarray:
        lo, hi = int(self.starts[w]), int(self.starts[w + 1])
        return problem.pair_c[lo:hi][self.y[lo:hi] > 0]


def pair_score(problem: Problem) -> np.ndarray:
    """Preference per pair, lower first: tier, then weighted objective per replica."""
    return problem.pair_tier * 1e9 + pair_weights(problem)


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


def spread_ok(problem: Problem, w: int, pcs: np.ndarray, ys: np.ndarray) -> bool:
    for rule in problem.group_spread[int(problem.group[w])]:
        groups = rule.group_of[pcs[ys > 0]]
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


def _broadcast_groups(p: Problem, w: int, pcs: np.ndarray, ok: np.ndarray, score: np.ndarray) -> np.ndarray | None:
    """Pairs of a broadcast with a spread ``maxGroups``: every eligible cluster of up to ``maxGroups``
    groups whose eligible clusters all take a copy (most copies first, then the best score), or
    ``None``. One such rule is handled; with more the workload is left to the exact model."""
    rules = broadcast_groups(p, w)
    if len(rules) != 1:
        return None
    rule = rules[0]
    elig = eligible_clusters(p, w)
    fine = np.zeros(p.num_clusters, dtype=bool)
    fine[pcs[ok]] = True
    pair_group = rule.group_of[pcs]
    good = [g for g in np.unique(rule.group_of[elig]).tolist() if fine[elig[rule.group_of[elig] == g]].all()]
    if not good:
        return None
    good.sort(key=lambda g: (-int((pair_group == g).sum()), float(score[pair_group == g].min())))
    assert rule.max_groups is not None
    return np.isin(pair_group, good[: rule.max_groups]) & ok


def _broadcast_tier(p: Problem, w: int, pcs: np.ndarray, ok: np.ndarray) -> np.ndarray | None:
    """Pairs of a broadcast with several ``clusterAffinities`` tiers: every eligible cluster of the
    first tier whose eligible clusters all take a copy (spec 2.6, as Karmada), or ``None``."""
    tiers = broadcast_tiers(p, w)
    assert tiers is not None
    elig = eligible_clusters(p, w)
    fine = np.zeros(p.num_clusters, dtype=bool)
    fine[pcs[ok]] = True
    for t in np.unique(tiers[elig]).tolist():
        if fine[elig[tiers[elig] == t]].all():
            return (tiers[pcs] == t) & ok
    return None


def place_one(problem: Problem, w: int, state: Residual, score: np.ndarray) -> bool:
    """Place every replica of workload ``w`` against ``state`` or nothing; ``True`` when placed.

    Every hard constraint of spec section 2 that concerns ``w`` holds for the
    result, given the workloads already in ``state`` (affinity partners must
    already be placed). ``score`` orders pairs, lower first.
    """
    p = problem
    lo_p, hi_p = int(state.starts[w]), int(state.starts[w + 1])
    if lo_p == hi_p:
        return False
    if state.y[lo_p:hi_p].any():
        raise ValueError(f"workload {p.workload_keys[w]} is already placed in this state")
    pcs = p.pair_c[lo_p:hi_p]
    req = p.request[w]
    replicas = int(p.replicas[w])
    dup = bool(p.duplicated[w])
    # room per pair: bounds and residual capacity
    room = p.pair_ub[lo_p:hi_p].copy()
    cap = state.capacity[pcs]
    for r in np.nonzero(req > 0)[0].tolist():
        room = np.minimum(room, np.maximum(cap[:, r], 0) // int(req[r]))
    need = replicas if dup else int(p.min_per[w])
    ok = room >= need
    # co-location: follow placed partners, avoid anti-affine ones
    for v in p.affinity_to[p.affinity_from == w].tolist():
        ok &= np.isin(pcs, state.clusters_of(v, p))
    for arr_a, arr_b in ((p.anti_a, p.anti_b), (p.anti_b, p.anti_a)):
        for v in arr_b[arr_a == w].tolist():
            ok &= ~np.isin(pcs, state.clusters_of(v, p))
    by_groups = bool(p.broadcast[w]) and bool(broadcast_groups(p, w))
    by_tier = bool(p.broadcast[w]) and broadcast_tiers(p, w) is not None
    if by_tier and by_groups:
        return False  # both a spread maxGroups and tiers: left to the exact model
    if p.broadcast[w] and not by_groups and not by_tier and (not ok.all() or hi_p - lo_p < int(p.eligible_count[w])):
        return False
    count_min, count_max = int(p.count_min[w]), int(p.count_max[w])
    if len(p.fixed_division) and p.fixed_division[w]:
        # weightPreference: each pair's upper bound is its share of the fixed division, taken whole
        ys = p.pair_ub[lo_p:hi_p].astype(np.int64)
        if not ok.all() or (room < ys).any() or int(ys.sum()) != replicas:
            return False
        return _check_and_take(p, w, state, pcs, ys, count_min, count_max)
    cand = np.nonzero(ok)[0]
    order = cand[np.argsort(score[lo_p:hi_p][cand], kind="stable")]
    rules = p.group_spread[int(p.group[w])]
    if rules:
        order = _group_order(order, rules[0].group_of[pcs], rules[0].min_groups, rules[0].max_groups)
    if by_groups or by_tier:
        chosen = _broadcast_tier(p, w, pcs, ok) if by_tier else _broadcast_groups(p, w, pcs, ok, score[lo_p:hi_p])
        if chosen is None:
            return False
        ys = np.where(chosen, replicas, 0).astype(np.int64)
    elif dup:
        k = len(order) if p.broadcast[w] else min(count_max, len(order))
        if k < count_min or k == 0:
            return False
        ys = np.zeros(hi_p - lo_p, dtype=np.int64)
        ys[order[:k]] = replicas
    else:
        n_low = max(count_min, rules[0].min_groups if rules else 1)
        skew = next((r for r in rules if r.max_skew is not None), None)
        if skew is not None:
            ys = _even(order, skew.group_of[pcs], room, replicas, int(p.min_per[w]), n_low)
        else:
            share = -(-replicas // n_low)
            ys = _fill(order, room, replicas, int(p.min_per[w]), share, count_max)
            if not len(ys) and count_max < len(order):
                # the best clusters by score cannot hold it within the cluster count: keep to clusters
                # that leave room for the rest on the roomiest of the others
                ys = _fill(_within_count(order, room, replicas, int(p.min_per[w]), count_max), room, replicas,
                           int(p.min_per[w]), share, count_max)
        if not len(ys):
            return False
    return _check_and_take(p, w, state, pcs, ys, count_min, count_max)


def _check_and_take(p: Problem, w: int, state: Residual, pcs: np.ndarray, ys: np.ndarray,
                    count_min: int, count_max: int) -> bool:
    """Take ``ys`` for ``w`` when cluster count, spread and quota allow it."""
    n_used = int((ys > 0).sum())
    if not p.broadcast[w] and not (count_min <= n_used <= count_max):
        return False
    if not spread_ok(p, w, pcs, ys):
        return False
    t = int(p.tenant[w])
    if t >= 0 and (int(ys.sum()) * p.request[w] > state.quota[t]).any():
        return False
    state.take(p, w, ys)
    return True


def hardest_first(problem: Problem) -> np.ndarray:
    """Workload order: priority high to low; inside it fewest eligible pairs, then biggest request."""
    p = problem
    pairs = np.bincount(p.pair_w, minlength=p.num_workloads)
    size = (p.request * p.replicas[:, None]).astype(float)
    total = size.sum(axis=0)
    load = (size / np.where(total > 0, total, 1)).sum(axis=1)
    return np.lexsort((-load, pairs, -p.priority))


#: construction's cluster score inside a tier: room left counts twice as much as cost. Cost first
#: (2 : 1, before) filled the cheap clusters that lower priorities could use too and left them
#: fragments: at 95% load priority 0 got 97.9% of the LP's replicas, 99.3% now; on the cloud
#: instance 96.8%, 99.6% now; the cost LP (engine.solvers.refine) makes the layout cheap afterwards
#: (gaps stayed 0.8-1.7% on eleven 2000 x 300 and 2000 x 40 instances)
COST_WEIGHT, ROOM_WEIGHT = 1.0, 2.0


def place_scored(p: Problem, w: int, state: Residual, score: np.ndarray) -> bool:
    """``place_one`` with a placement-first score: tier, then room left (mostly), then cost."""
    lo, hi = int(state.starts[w]), int(state.starts[w + 1])
    if lo == hi:
        return False
    if state.y[lo:hi].any():
        return True  # already placed, e.g. with a higher-priority follower by a repair
    pcs = p.pair_c[lo:hi]
    req = p.request[w]
    free = np.ones(hi - lo)
    for r in np.nonzero(req > 0)[0].tolist():
        total = p.capacity[pcs, r]
        limited = total != UNLIMITED
        share = np.ones(hi - lo)
        share[limited] = state.capacity[pcs[limited], r] / np.maximum(total[limited], 1)
        free = np.minimum(free, share)
    cost = score[lo:hi] - p.pair_tier[lo:hi] * 1e9
    span = float(cost.max() - cost.min()) if hi > lo else 0.0
    cost_n = (cost - cost.min()) / span if span > 0 else np.zeros(hi - lo)
    saved = score[lo:hi].copy()
    fspan = float(free.max() - free.min())
    free_n = (free - free.min()) / fspan if fspan > 0 else np.zeros(hi - lo)
    score[lo:hi] = p.pair_tier[lo:hi] * 1e9 + COST_WEIGHT * cost_n + ROOM_WEIGHT * (1.0 - free_n)
    try:
        return place_one(p, w, state, score)
    finally:
        score[lo:hi] = saved


def smallest_first(problem: Problem) -> np.ndarray:
    """Workload order: priority high to low; inside it the smallest per-replica request first."""
    p = problem
    total = np.maximum(p.capacity.clip(min=0).sum(axis=0), 1).astype(float)
    per_replica = (p.request / total).sum(axis=1)
    pairs = np.bincount(p.pair_w, minlength=p.num_workloads)
    return np.lexsort((pairs, per_replica, -p.priority))
