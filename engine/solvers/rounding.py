"""Rounding the cost LP: whole replicas from the LP's fractions, without a worse tier sum.

Step 3 of the cost refinement (:mod:`engine.solvers.refine`): every movable workload first gets
its LP replicas floored (they fit, since the LP solution does); the few replicas left go to the
cheapest pair with room, biggest workloads first, moving free workloads aside where needed;
what still fails goes back to where it was.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

import numpy as np

from engine.problem import BIG, UNLIMITED, BoolArray, FloatArray, IntArray, Problem
from engine.solvers.solution import Deadline
from policies import replica_shape

__all__ = ["Reach", "round_solution"]

#: replicas of at most this many other workloads are examined to make room on one cluster
_VICTIMS = 64


@dataclass(frozen=True)
class Reach:
    """Where rounding may put replicas: the pairs a movable workload may use, the weighted cost of
    each pair, and the *free* workloads whose replicas may be moved aside to make room."""

    problem: Problem
    allowed: BoolArray  # (P,)
    weight: FloatArray  # (P,) weighted cost per replica (cheapest first, within a tier)
    free: BoolArray  # (W,)
    starts: IntArray  # (W + 1,) the pairs of workload w are starts[w]:starts[w + 1]

    @classmethod
    def of(cls, problem: Problem, *, allowed: BoolArray, weight: FloatArray, free: BoolArray) -> Reach:
        starts = np.searchsorted(problem.pair_w, np.arange(problem.num_workloads + 1)).astype(np.int64)
        return cls(problem, allowed, weight, free, starts)


def _tier_by_workload(p: Problem, y: IntArray) -> FloatArray:
    return np.asarray(np.bincount(p.pair_w, weights=y * p.pair_tier, minlength=p.num_workloads), dtype=np.float64)


def round_solution(p: Problem, y: IntArray, *, x: FloatArray, cols: IntArray, cap: IntArray, weight: FloatArray,
                   flex: BoolArray, first: BoolArray, allowed: BoolArray,
                   deadline: Deadline | None = None) -> tuple[IntArray | None, list[int]]:
    """Round the LP solution ``x`` (over the pairs ``cols``, with ``cap`` the capacity it had) of the
    ``flex`` workloads: every one first gets its LP replicas floored (they fit, since the LP solution
    does), then the few replicas the floors leave out go to the cheapest ``allowed`` pairs with room,
    biggest first. ``first`` workloads keep their set of clusters. A workload that finds no room makes
    room by moving replicas of free workloads off one of its clusters (:func:`_make_room`);
    workloads that still fail go first in the next attempt, and after that go back to where they
    are now (:func:`_revert`). Returns the rounded replicas (``None``: rounding is not possible)
    and the workloads that went back."""
    movable = flex[p.pair_w]
    floors = np.zeros(p.num_pairs, dtype=np.int64)
    floors[cols] = np.floor(x[cols] + 1e-6).astype(np.int64)
    floors[~movable] = 0
    least = replica_shape.least_per_cluster(p)[p.pair_w]
    lower = np.where(allowed & (y > 0) & first[p.pair_w], least, 0)
    floors = np.maximum(floors, np.where(movable, lower, 0))
    base = np.where(movable, 0, y).astype(np.int64) + floors
    room = np.where(cap == UNLIMITED, BIG, cap).astype(np.int64)
    for r in range(len(p.resource_names)):
        np.subtract.at(room[:, r], p.pair_c, floors * p.request[p.pair_w, r])
    if (room < 0).any():
        return None, []  # the floors always fit a feasible LP solution; be safe anyway
    have = np.bincount(p.pair_w, weights=floors, minlength=p.num_workloads).astype(np.int64)
    missing = np.where(flex, p.replicas - have, 0)
    if (missing < 0).any():
        return None, []
    reach = Reach.of(p, allowed=allowed, weight=weight, free=flex & ~first)
    todo = np.nonzero(missing > 0)[0]
    size = (p.request[todo] / np.maximum(room.clip(0).max(axis=0), 1)).sum(axis=1) * missing[todo]
    order = todo[np.argsort(-size, kind="stable")].tolist()
    for _ in range(2):
        out, left = base.copy(), room.copy()
        # past the deadline the rest count as failed: they keep their old placement
        failed = [w for w in order if (deadline is not None and deadline.expired())
                  or not _complete(reach, w, int(missing[w]), out, left)]
        if not failed:
            break
        again = set(failed)
        order = failed + [w for w in order if w not in again]
    failed += _keep_tiers(reach, y, out, left, set(failed))
    # a fixed cluster set must keep every cluster (counts, groups, Aggregated)
    bad = ((out > 0) & (out < least)) | (out < lower)
    failed = sorted(set(failed) | set(np.unique(p.pair_w[bad]).tolist()))
    if not failed:
        return out, failed
    return _revert(p, y, out, failed, cap=cap, movable=movable, relocate=reach), failed


def _keep_tiers(reach: Reach, y: IntArray, out: IntArray, room: IntArray, failed: set[int]) -> list[int]:
    """Move replicas that rounding put in a later tier than the workload used before back to its
    earlier tiers; returns the workloads where that found no room.

    The LP keeps only the tier *sum*: it may give one workload's earlier-tier room to another and
    push the first into a later tier, and rounding the fractions can then raise the sum (seen at
    95% load: 6 against 5, which threw the whole refinement away)."""
    p, starts = reach.problem, reach.starts
    stuck = []
    before = _tier_by_workload(p, y)
    for w in np.nonzero(_tier_by_workload(p, out) > before + 1e-9)[0].tolist():
        if w in failed:
            continue
        lo, hi = int(starts[w]), int(starts[w + 1])
        latest = int(p.pair_tier[lo:hi][y[lo:hi] > 0].max())
        later = np.nonzero((p.pair_tier[lo:hi] > latest) & (out[lo:hi] > 0))[0]
        moved = int(out[lo + later].sum())
        np.add.at(room, p.pair_c[lo + later], out[lo + later, None] * p.request[w][None, :])
        out[lo + later] = 0
        earlier = reach.allowed.copy()
        earlier[lo:hi] &= p.pair_tier[lo:hi] <= latest
        if not _complete(replace(reach, allowed=earlier), w, moved, out, room):
            stuck.append(w)
    return stuck


def _revert(p: Problem, y: IntArray, out: IntArray, failed: list[int], *, cap: IntArray, movable: BoolArray,
            relocate: Reach | None = None) -> IntArray:
    """``out`` with ``failed`` workloads back where ``y`` has them; where that overfills a cluster,
    workloads that gained replicas there go back too, biggest gain first, one at a time, until
    everything fits. Every workload is then either rounded or as before, both valid for it, so the
    mix is a valid plan (``y`` itself at worst).

    ``movable`` are the pairs rounding may have changed. With ``relocate``, free workloads first move off the overfilled
    cluster to their next cheapest pairs with room (:func:`_make_room`), and workloads go back
    only when that does not clear it: at 95% load, reverting whole workloads cascaded until almost
    nothing of the LP's layout was left."""
    mix = out.copy()
    starts = np.searchsorted(p.pair_w, np.arange(p.num_workloads + 1))
    limited = cap != UNLIMITED
    room = np.where(limited, cap, BIG).astype(np.int64)
    for r in range(len(p.resource_names)):
        np.subtract.at(room[:, r], p.pair_c[movable], mix[movable] * p.request[p.pair_w[movable], r])
    back = np.zeros(p.num_workloads, dtype=bool)

    def put_back(w: int) -> None:
        lo, hi = int(starts[w]), int(starts[w + 1])
        delta = y[lo:hi] - mix[lo:hi]
        np.subtract.at(room, p.pair_c[lo:hi], delta[:, None] * p.request[w][None, :])
        mix[lo:hi] = y[lo:hi]
        back[w] = True

    for w in failed:
        put_back(w)
    for _ in range(p.num_workloads):
        over = np.nonzero((room < 0).any(axis=1))[0]
        if not len(over):
            return mix
        c = int(over[0])
        if relocate is not None and _make_room(relocate, c, -room[c], mix, room):
            continue
        on_c = p.pairs_on(c)
        gained = on_c[movable[on_c] & (mix[on_c] > y[on_c]) & ~back[p.pair_w[on_c]]]
        if not len(gained):
            return y.copy()
        excess = np.maximum(-room[c], 0)
        share = ((mix[gained] - y[gained])[:, None] * p.request[p.pair_w[gained]] * (excess > 0)).sum(axis=1)
        put_back(int(p.pair_w[gained[int(np.argmax(share))]]))
    return y.copy()


def _complete(reach: Reach, w: int, missing: int, out: IntArray, room: IntArray) -> bool:
    """Add ``missing`` replicas of ``w`` to ``out`` on its cheapest allowed pairs with room."""
    p, allowed, weight, starts = reach.problem, reach.allowed, reach.weight, reach.starts
    lo, hi = int(starts[w]), int(starts[w + 1])
    req = p.request[w]
    used_r = np.nonzero(req > 0)[0].tolist()
    pcs = p.pair_c[lo:hi]
    order = np.argsort(p.pair_tier[lo:hi] * 1e9 + weight[lo:hi], kind="stable").tolist()
    for attempt in range(2):
        fit = p.pair_ub[lo:hi] - out[lo:hi]
        for r in used_r:
            fit = np.minimum(fit, room[pcs, r] // int(req[r]))
        fit = np.where(allowed[lo:hi], np.maximum(fit, 0), 0)
        for i in order:
            add = min(int(fit[i]), missing)
            if add > 0:
                out[lo + i] += add
                room[pcs[i], used_r] -= add * req[used_r]
                missing -= add
            if missing == 0:
                return True
        if attempt == 0:
            # no room left on its pairs: free some on the cheapest one where others can move away
            for i in order:
                c = int(pcs[i])
                need = req * missing - np.minimum(room[c], BIG // 2)
                if allowed[lo + i] and out[lo + i] < p.pair_ub[lo + i] and _make_room(reach, c, need, out, room):
                    break
    return False


def _make_room(reach: Reach, c: int, need: IntArray, out: IntArray, room: IntArray) -> bool:
    """Move replicas of free workloads off cluster ``c`` to their next cheapest allowed pairs with room
    (no later tier) until ``need`` more of each resource is free on ``c``; ``True`` when it is
    (moves are kept either way, and every move keeps the plan valid)."""
    p, allowed, weight, starts, free = reach.problem, reach.allowed, reach.weight, reach.starts, reach.free
    need = np.maximum(need, 0)
    on_c = p.pairs_on(c)
    on_c = on_c[(out[on_c] > 0) & free[p.pair_w[on_c]]]
    for j in on_c[np.argsort(-weight[on_c], kind="stable")][:_VICTIMS].tolist():
        short = need > 0
        if not short.any():
            return True
        v = int(p.pair_w[j])
        rv = p.request[v]
        if not (rv[short] > 0).any():
            continue
        lo, hi = int(starts[v]), int(starts[v + 1])
        used_r = np.nonzero(rv > 0)[0].tolist()
        pcs = p.pair_c[lo:hi]
        fit = p.pair_ub[lo:hi] - out[lo:hi]
        for r in used_r:
            fit = np.minimum(fit, room[pcs, r] // int(rv[r]))
        ok = np.nonzero(allowed[lo:hi] & (pcs != c) & (fit > 0) & (p.pair_tier[lo:hi] <= p.pair_tier[j]))[0]
        for i in ok[np.argsort(p.pair_tier[lo:hi][ok] * 1e9 + weight[lo:hi][ok], kind="stable")].tolist():
            short = (need > 0) & (rv > 0)  # what is still short and moving ``v`` frees
            if not short.any() or out[j] == 0:
                break
            k = min(int(fit[i]), int(out[j]), int(np.max(-(-need[short] // rv[short]))))
            if k <= 0:
                continue
            out[j] -= k
            out[lo + i] += k
            room[c, used_r] += k * rv[used_r]
            room[pcs[i], used_r] -= k * rv[used_r]
            need = np.maximum(need - k * rv, 0)
    return not (need > 0).any()
