"""Placing new workloads around a placement that may not move (``maxMoves: 0``).

The placement-as-a-service path solves "everything committed, plus these new
workloads, moving nothing". With a moves budget of 0 every workload that runs
today is pinned: all-or-nothing and ``sum y = replicas`` leave it exactly
where it is (a Divided workload's replicas cannot grow past ``replicas``, and
a Duplicated one that already has its most copies cannot gain one). Its
replicas are then constants of every level of section 3, and the lexicographic
optimum of the whole problem is the pinned placement plus the optimum of the
*new* workloads alone against residual capacity and quota, with co-location
to pinned partners turned into eligibility (a follower may only use its
partner's clusters; anti-affine pairs exclude each other's). That sub-problem
is a few workloads, not the fleet: the service's calls cost milliseconds to
a second instead of a whole-fleet solve.

:func:`solve_pinned` returns ``None`` whenever that equivalence is not exact,
and the caller then solves the whole problem: a current placement that is not
valid by itself (moved off the fleet, no longer eligible, over capacity or
quota, bounds, counts or spread broken), a workload that could still grow
(replicas raised, a Duplicated one below its most copies), or a pinned
workload that must follow a new one.

The service asks for ``frozen``: a committed placement is a promise, kept as it
is even where section 3 would add to it (a Duplicated workload committed below
its most copies stays so; with moves budget 0 alone it may gain a copy).
"""

from __future__ import annotations

import time
from dataclasses import replace

import numpy as np

from engine.large import _spread_ok
from engine.problem import UNLIMITED, Problem, restrict, usage

__all__ = ["pinned_placement", "solve_pinned"]


def pinned_placement(problem: Problem, *, frozen: bool = False) -> np.ndarray | None:
    """The current placement as replicas per pair when every current workload is pinned by it, else ``None``.

    With ``frozen`` the current placement is kept as it is even where the order of
    section 3 would add to it (a Duplicated workload below its most copies): the
    service's promise that a committed placement never changes. It must still be valid.
    """
    p = problem
    if p.max_moves != 0 or not len(p.current_w) or p.fixed_moves:
        return None
    idx = p.pair_index(p.current_w, p.current_c)
    if (idx < 0).any() or (p.current_n > p.pair_ub[np.maximum(idx, 0)]).any():
        return None  # not eligible there, or above a bound: the full model decides (infeasible)
    y = np.zeros(p.num_pairs, dtype=np.int64)
    np.add.at(y, idx, p.current_n)
    starts = p.pair_starts
    for w in np.unique(p.current_w).tolist():
        lo, hi = int(starts[w]), int(starts[w + 1])
        ys = y[lo:hi]
        on = ys > 0
        copies = int(on.sum())
        if (ys[on] < p.min_per[w]).any():
            return None
        if p.duplicated[w]:
            most = hi - lo if p.broadcast[w] else min(int(p.count_max[w]), hi - lo)
            if (ys[on] != p.replicas[w]).any() or (copies != most and not frozen):
                return None
        elif int(ys.sum()) != int(p.replicas[w]):
            return None
        if not p.broadcast[w] and not int(p.count_min[w]) <= copies <= int(p.count_max[w]):
            return None
        if not _spread_ok(p, w, p.pair_c[lo:hi], ys):
            return None
    pinned = np.bincount(p.pair_w, weights=y, minlength=p.num_workloads) > 0
    # co-location among pinned workloads must already hold; a pinned follower of a new one cannot
    on_c = _ClustersOf(p, y)
    for a, b in zip(p.affinity_from.tolist(), p.affinity_to.tolist(), strict=True):
        if pinned[a] and (not pinned[b] or not on_c[a] <= on_c[b]):
            return None
    for a, b in zip(p.anti_a.tolist(), p.anti_b.tolist(), strict=True):
        if pinned[a] and pinned[b] and on_c[a] & on_c[b]:
            return None
    # capacity and quota must hold for the pinned placement alone
    used = usage(p, y)
    if ((p.capacity != UNLIMITED) & (used > p.capacity)).any():
        return None
    if len(p.tenant_names) and ((p.quota != UNLIMITED) & (_quota_used(p, y) > p.quota)).any():
        return None
    return y


def solve_pinned(problem: Problem, *, time_limit: float, frozen: bool = False):  # type: ignore[no-untyped-def]
    """Solve a ``maxMoves: 0`` problem as pinned placement + the new workloads alone.

    Returns a :class:`~engine.solve.Solution` over the whole problem (levels
    include the pinned replicas), or ``None`` when the shortcut is not exact
    (see the module docstring). ``frozen``: see :func:`pinned_placement`.
    """
    from engine.planner import evaluate
    from engine.solve import LevelResult, Solution, solve_problem

    start = time.monotonic()
    p = problem
    fixed = pinned_placement(p, frozen=frozen)
    if fixed is None:
        return None
    pinned = np.bincount(p.pair_w, weights=fixed, minlength=p.num_workloads) > 0
    new = ~pinned
    # co-location with pinned partners becomes eligibility of the new workload's pairs
    on_c = _ClustersOf(p, fixed)
    ub = p.pair_ub.copy()
    starts = p.pair_starts
    for a, b in zip(p.affinity_from.tolist(), p.affinity_to.tolist(), strict=True):
        if new[a] and pinned[b]:
            lo, hi = int(starts[a]), int(starts[a + 1])
            ub[lo:hi][~np.isin(p.pair_c[lo:hi], list(on_c[b]))] = 0
    for a, b in zip(p.anti_a.tolist(), p.anti_b.tolist(), strict=True):
        for v, u in ((a, b), (b, a)):
            if new[v] and pinned[u]:
                lo, hi = int(starts[v]), int(starts[v + 1])
                ub[lo:hi][np.isin(p.pair_c[lo:hi], list(on_c[u]))] = 0
    capacity = np.where(p.capacity == UNLIMITED, UNLIMITED, p.capacity - usage(p, fixed))
    quota = p.quota
    if len(p.tenant_names):
        quota = np.where(p.quota == UNLIMITED, UNLIMITED, p.quota - _quota_used(p, fixed))
    sub = restrict(replace(p, pair_ub=ub), new, capacity=capacity, quota=quota)
    left = max(time_limit - (time.monotonic() - start), 0.05)
    part = solve_problem(sub, time_limit=left)
    y = fixed.copy()
    y[new[p.pair_w]] = part.y  # restrict keeps the new workloads' pairs in order
    # every level of the whole problem: the pinned replicas are constants added to the part's
    base = evaluate(p, fixed)
    offset = {f"priority:{k}": float(v) for k, v in base.placed_by_priority.items()}
    offset["tier"] = float(base.tier)
    offset["weighted"] = float(base.weighted)
    solved = {lv.name: lv for lv in part.levels}
    levels: list[LevelResult] = []
    names = [f"priority:{k}" for k in base.placed_by_priority]
    if p.pair_tier.any():
        names.append("tier")
    names.append("weighted")
    for name in names:
        lv = solved.get(name)
        if lv is None:  # nothing new at this level: the pinned value, proved
            levels.append(LevelResult(name, offset[name], offset[name], True, 0.0))
        else:
            levels.append(LevelResult(name, lv.value + offset[name], lv.bound + offset[name], lv.proved,
                                      lv.seconds))
    return Solution(y, part.status, time.monotonic() - start, levels)


class _ClustersOf:
    """Clusters where each workload has replicas in ``y``, looked up per workload when asked."""

    def __init__(self, p: Problem, y: np.ndarray) -> None:
        self.p, self.y = p, y

    def __getitem__(self, w: int) -> set[int]:
        lo, hi = int(self.p.pair_starts[w]), int(self.p.pair_starts[w + 1])
        return set(self.p.pair_c[lo:hi][self.y[lo:hi] > 0].tolist())


def _quota_used(p: Problem, y: np.ndarray) -> np.ndarray:
    """(T, R) solver units of quota used by ``y``."""
    used = np.zeros((len(p.tenant_names), len(p.resource_names)), dtype=np.int64)
    t = p.tenant[p.pair_w]
    on = np.nonzero((y > 0) & (t >= 0))[0]
    for r in range(len(p.resource_names)):
        np.add.at(used[:, r], t[on], y[on] * p.request[p.pair_w[on], r])
    return used
