"""Repair: place what construction left out with small exact solves.

Construction (:mod:`engine.solvers.construct`) places workloads one at a time with a fast
rule, which can fail where a placement exists: a follower (``affinity``) finds
its partner's clusters full, or a workload with bounds, counts or spread needs
a combination the rule does not try. For each unplaced workload, highest
priority first and, inside a priority, the smallest per-replica request
first (section 3 counts replicas: the room a repair finds goes furthest
there), :func:`repair_unplaced` first tries the construction rule
again (room may have opened since), then takes a small *neighbourhood* — the
workload, its affinity partners and the partners' placed followers — gives
back their capacity, and solves that neighbourhood exactly with CP-SAT
against the residual capacity and quota. The result is kept only when every
workload of the neighbourhood that was placed stays placed and the new one is
placed too; otherwise the old placement is put back. When the workload does
not fit even so, a last neighbourhood adds up to :data:`MOVERS` placed
workloads from the clusters with the most room for it, free to move
elsewhere (all must stay placed). Last, with the time kept for it,
:func:`_eject` moves the occupants of those clusters elsewhere one by one
with the construction rule until the workload fits (milliseconds, where the
exact solves take tens of them; it runs after them because they use the room
better when they succeed: run first, it cost priority 50 on the cloud
benchmark). Every step keeps the plan valid, and no placed replica of any
priority is lost.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

from engine.lazy import lazy_module
from engine.objective import fewest_copies, pair_weights, placed_workloads
from engine.problem import BIG, UNLIMITED, Problem, keep_pairs, restrict
from engine.solvers.construct import Residual, pair_score, place_one
from engine.solvers.model import compile_model, set_objective
from engine.solvers.progress import stop_after_first
from engine.solvers.solution import Deadline
from policies import registry as concerns
from policies.base import Pairs

if TYPE_CHECKING:
    from ortools.sat.python import cp_model
else:
    cp_model = lazy_module("ortools.sat.python.cp_model")

__all__ = ["improve_placed", "release", "repair_unplaced", "swap_for_quota"]


def release(problem: Problem, state: Residual, w: int) -> np.ndarray:
    """Take workload ``w`` out of ``state``; returns its replicas per pair (to put back)."""
    lo, hi = int(state.starts[w]), int(state.starts[w + 1])
    old = state.y[lo:hi].copy()
    if old.any():
        state.take(problem, w, -old)
        state.y[lo:hi] = 0
    return old


def repair_unplaced(problem: Problem, state: Residual, *, deadline: Deadline, per_solve: float = 1.0,
                    only: np.ndarray | None = None, widen: int = 1) -> int:
    """Place unplaced workloads of ``state`` (those in ``only``, when given) by exact neighbourhood
    solves; returns how many were added. ``widen`` multiplies the clusters emptied and the workloads
    moved aside (a second pass with time left over, after the narrow one found nothing more)."""
    p = problem
    added = 0
    placed = placed_workloads(p, state.y)
    has_pairs = np.diff(state.starts) > 0
    todo = np.nonzero(~placed & has_pairs & (True if only is None else only))[0]
    # smallest per-replica request first (the most replicas for the room a repair finds), then fewest replicas
    total = np.maximum(p.capacity.clip(min=0).sum(axis=0), 1).astype(float)
    per_replica = (p.request[todo] / total).sum(axis=1)
    todo = todo[np.lexsort((p.replicas[todo], per_replica, -p.priority[todo]))]
    # every member of a neighbourhood stays placed, so a workload over its tenant's quota left
    # cannot be placed by any repair: skip it without a solve
    todo = np.array([w for w in todo.tolist() if _within_quota(p, state, w)], dtype=np.int64)
    # the construction rule first, for all of them (a millisecond each): room may have opened
    # since it last tried, when cheaper layouts or other repairs moved workloads
    score = pair_score(p)
    for w in todo.tolist():
        if deadline.expired():
            break
        if place_one(p, w, state, score):
            placed[w] = True
            added += 1
    todo = todo[~placed[todo]]
    # the exact passes leave the last quarter of the time to the ejection pass at the end
    exact_deadline = deadline.slice(0.75)
    for w in todo.tolist():
        if exact_deadline.expired():
            break
        if placed[w]:
            continue
        # then exactly: first alone (partners stay where they are), then with the partners free to move
        if _fits_alone(p, state, w) and _try(p, state, [w], placed, exact_deadline, per_solve):
            added += 1
            continue
        hood = concerns.neighbourhood(p, w, placed)
        if len(hood) > 1 and _try(p, state, hood, placed, exact_deadline, per_solve):
            added += 1
    # then exactly with placed workloads moved aside from the clusters where it comes closest to
    # fitting (bigger solves, so after every cheap attempt has had its turn)
    for w in todo.tolist():
        if exact_deadline.expired():
            break
        if placed[w]:
            continue
        hood = concerns.neighbourhood(p, w, placed)
        movers = _movers(p, state, w, hood, placed, widen)
        if movers and _try(p, state, sorted(hood + movers), placed, exact_deadline,
                           min(per_solve, MOVER_SECONDS * widen)):
            added += 1
    # last, what is still out: move placed workloads aside one at a time by the construction rule,
    # from the clusters with the most room for it (milliseconds each; after the exact passes, which
    # use the room better when they succeed)
    for w in todo.tolist():
        if deadline.expired():
            break
        if not placed[w] and _eject(p, state, w, placed, score, widen):
            placed[w] = True
            added += 1
    return added


def swap_for_quota(problem: Problem, state: Residual, *, deadline: Deadline) -> int:
    """Trade a placed workload for a bigger one of the same tenant and priority that its quota
    blocks; returns the replicas gained.

    Quotas are sized near demand, so what stays out at the end is often a workload
    whose tenant has spent its quota on smaller ones of the same priority. Taking out
    one with fewer replicas that frees enough quota, and placing the blocked one by
    the construction rule, places more replicas at that priority (better in the
    order of section 3); the smaller one comes back if it still fits. Duplicated
    workloads and those with placed followers are left alone.
    """
    p = problem
    placed = placed_workloads(p, state.y)
    has_followers = concerns.anchored(p, placed)
    score = pair_score(p)
    blocked = np.nonzero(~placed & (np.diff(state.starts) > 0) & (p.tenant >= 0) & ~p.duplicated)[0]
    gained = 0
    for w in blocked[np.argsort(-p.replicas[blocked], kind="stable")].tolist():
        if deadline.expired():
            break
        if placed[w] or _within_quota(p, state, w):
            continue  # not quota-bound: the repairs have had their turn at it
        t = int(p.tenant[w])
        deficit = int(p.replicas[w]) * p.request[w] - state.quota[t]
        donors = np.nonzero(placed & (p.tenant == t) & (p.priority == p.priority[w]) & ~p.duplicated
                            & ~has_followers & (p.replicas < p.replicas[w]))[0]
        frees = p.replicas[donors, None] * p.request[donors]
        donors = donors[(frees >= deficit[None, :]).all(axis=1)]
        for v in donors[np.argsort(p.replicas[donors], kind="stable")].tolist():
            old = release(p, state, v)
            if place_one(p, w, state, score):
                placed[w], placed[v] = True, False
                gained += int(p.replicas[w]) - int(p.replicas[v])
                if place_one(p, v, state, score):
                    placed[v] = True
                    gained += int(p.replicas[v])
                break
            state.take(p, v, old)
    return gained + _swap_one_for_many(p, state, placed, has_followers, score, deadline)


def _swap_one_for_many(p: Problem, state: Residual, placed: np.ndarray, has_followers: np.ndarray,
                       score: np.ndarray, deadline: Deadline) -> int:
    """Trade one placed workload for several smaller ones of its tenant and priority that the quota
    blocks, when together they place more replicas (one of 4 against two of 3 under a quota of 6);
    returns the replicas gained. The traded one comes back if it still fits."""
    blocked = ~placed & (np.diff(state.starts) > 0) & (p.tenant >= 0) & ~p.duplicated
    blocked &= np.array([not _within_quota(p, state, w) if blocked[w] else False for w in range(p.num_workloads)],
                        dtype=bool)
    if not blocked.any():
        return 0
    gained = 0
    donors = np.nonzero(placed & (p.tenant >= 0) & ~p.duplicated & ~has_followers
                        & np.isin(p.tenant, p.tenant[blocked]))[0]
    for v in donors[np.argsort(-p.replicas[donors], kind="stable")].tolist():
        if deadline.expired():
            break
        small = np.nonzero(blocked & (p.tenant == p.tenant[v]) & (p.priority == p.priority[v])
                           & (p.replicas < p.replicas[v]))[0]
        if int(p.replicas[small].sum()) <= int(p.replicas[v]):
            continue
        old = release(p, state, v)
        took = [w for w in small[np.argsort(p.replicas[small], kind="stable")].tolist()
                if place_one(p, w, state, score)]
        if int(p.replicas[took].sum()) <= int(p.replicas[v]):
            for w in took:
                release(p, state, w)
            state.take(p, v, old)
            continue
        placed[took], blocked[took], placed[v] = True, False, False
        gained += int(p.replicas[took].sum()) - int(p.replicas[v])
        if place_one(p, v, state, score):
            placed[v] = True
            gained += int(p.replicas[v])
        else:
            blocked[v] = True
    return gained


def _within_quota(p: Problem, state: Residual, w: int) -> bool:
    """Whether the tenant's quota left can take ``w`` at its smallest (a necessary condition)."""
    t = int(p.tenant[w])
    copies = fewest_copies(p, w)
    return t < 0 or bool((int(p.replicas[w]) * copies * p.request[w] <= state.quota[t]).all())


def _fits_alone(p: Problem, state: Residual, w: int) -> bool:
    """A quick necessary condition for placing ``w`` without moving anything: its eligible clusters
    have room for all its replicas (copies for Duplicated) taken together."""
    lo, hi = int(state.starts[w]), int(state.starts[w + 1])
    pcs = p.pair_c[lo:hi]
    req = p.request[w]
    fit = p.pair_ub[lo:hi].astype(np.int64)
    for r in np.nonzero(req > 0)[0].tolist():
        fit = np.minimum(fit, np.maximum(state.capacity[pcs, r], 0) // int(req[r]))
    if p.duplicated[w]:
        return int((fit >= p.replicas[w]).sum()) >= max(int(p.count_min[w]), 1)
    return int(fit.sum()) >= int(p.replicas[w])


#: placed workloads that one repair may move aside to make room, at most
MOVERS = 12
#: clusters of the unplaced workload whose occupants are considered
MOVER_CLUSTERS = 3
#: CP-SAT seconds per such solve: a feasible placement is what counts, proving its cost is not
MOVER_SECONDS = 0.25


def _movers(p: Problem, state: Residual, w: int, hood: list[int], placed: np.ndarray,
            widen: int = 1) -> list[int]:
    """Placed workloads worth moving to make room for ``w``: those on the clusters with the most room
    for ``w``, most mobile (most eligible clusters) first. Workloads whose placed followers stay
    outside the neighbourhood are left alone (moving them would strand the followers)."""
    candidates = _occupants(p, state, _roomiest(p, state, w, MOVER_CLUSTERS * widen))
    inside = np.zeros(p.num_workloads, dtype=bool)
    inside[hood] = True
    anchors = concerns.anchored(p, placed & ~inside)
    ok = ~anchors[candidates] & ~inside[candidates] & ~p.broadcast[candidates]
    candidates = candidates[ok]
    mobility = np.diff(state.starts)[candidates]
    return candidates[np.argsort(-mobility, kind="stable")[:MOVERS * widen]].tolist()


def _roomiest(p: Problem, state: Residual, w: int, n: int) -> np.ndarray:
    """The ``n`` eligible clusters of ``w`` with the most room for one of its replicas."""
    lo, hi = int(state.starts[w]), int(state.starts[w + 1])
    pcs = p.pair_c[lo:hi]
    req = p.request[w]
    used_r = np.nonzero(req > 0)[0]
    if not len(used_r) or not len(pcs):
        return np.zeros(0, dtype=pcs.dtype)
    room = np.min(state.capacity[np.ix_(pcs, used_r)] / req[used_r][None, :], axis=1)
    return pcs[np.argsort(-room, kind="stable")[:n]]


def _occupants(p: Problem, state: Residual, clusters: np.ndarray) -> np.ndarray:
    """Workloads with replicas on any of ``clusters``."""
    in_use = np.nonzero(state.y)[0]  # a few thousand of the hundreds of thousands of pairs
    return np.unique(p.pair_w[in_use[np.isin(p.pair_c[in_use], clusters)]])


#: clusters of the unplaced workload emptied by :func:`_eject`, at most
EJECT_CLUSTERS = 3
#: occupants of those clusters tried, most mobile (most eligible clusters) first
EJECT_OCCUPANTS = 48


def _eject(p: Problem, state: Residual, w: int, placed: np.ndarray, score: np.ndarray, widen: int = 1) -> bool:
    """Place ``w`` by moving occupants of its roomiest clusters elsewhere, one by one (each by
    :func:`~engine.solvers.construct.place_one`, never onto those clusters), until ``w`` fits; ``True`` when
    it does. Otherwise every occupant goes back where it was."""
    targets = _roomiest(p, state, w, EJECT_CLUSTERS * widen)
    if not len(targets):
        return False
    occupants = _occupants(p, state, targets)
    # a workload with placed followers stays (moving it would strand them), and so do broadcasts
    anchors = concerns.anchored(p, placed)
    occupants = occupants[~anchors[occupants] & ~p.broadcast[occupants]]
    occupants = occupants[np.argsort(-np.diff(state.starts)[occupants], kind="stable")][:EJECT_OCCUPANTS * widen]
    moved: list[tuple[int, np.ndarray]] = []
    state.capacity[targets] -= BIG  # occupants must leave these clusters: none has room there
    try:
        for v in occupants.tolist():
            old = release(p, state, v)
            if not place_one(p, v, state, score):
                state.take(p, v, old)
                continue
            moved.append((v, old))
            state.capacity[targets] += BIG
            try:
                if place_one(p, w, state, score):
                    return True
            finally:
                state.capacity[targets] -= BIG
        for v, old in reversed(moved):
            release(p, state, v)
            state.take(p, v, old)
        return False
    finally:
        state.capacity[targets] += BIG


def _try(p: Problem, state: Residual, hood: list[int], placed: np.ndarray, deadline: Deadline,
         per_solve: float) -> bool:
    """Solve ``hood`` exactly with every member placed; commit it to ``state`` when that works."""
    saved = {v: release(p, state, v) for v in hood if placed[v]}
    keep = np.zeros(p.num_workloads, dtype=bool)
    keep[hood] = True
    capacity = np.where(p.capacity == UNLIMITED, UNLIMITED, state.capacity)
    quota = np.where(p.quota == UNLIMITED, UNLIMITED, state.quota)
    sub = restrict(p, keep, capacity=capacity, quota=quota)
    _block_outside(p, sub, hood, state)
    sub = keep_pairs(sub, _candidate_pairs(p, sub, hood, saved))
    y_sub = _solve_all_placed(sub, time_limit=max(min(per_solve, deadline.remaining()), 0.05))
    if y_sub is None:
        for v, ys in saved.items():
            state.take(p, v, ys)
        return False
    for i, v in enumerate(hood):
        lo, hi = int(state.starts[v]), int(state.starts[v + 1])
        mine = sub.pair_w == i
        ys = np.zeros(hi - lo, dtype=np.int64)
        # sub's pairs of v are a subset of v's pairs, both sorted by cluster
        ys[np.searchsorted(p.pair_c[lo:hi], sub.pair_c[mine])] = y_sub[mine]
        if ys.any():
            state.take(p, v, ys)
            placed[v] = True
    return True


#: candidate clusters per workload in a neighbourhood solve, besides those it and its partners use
CANDIDATES = 24


def _candidate_pairs(p: Problem, sub: Problem, hood: list[int], saved: dict[int, np.ndarray]) -> np.ndarray:
    """Pairs of ``sub`` worth offering: the cheapest with room, where the neighbourhood runs now,
    the best two of every spread group, and every pair of a broadcast."""
    score = pair_score(sub)
    open_ = sub.pair_ub > 0
    keep = np.zeros(sub.num_pairs, dtype=bool)
    now = np.zeros(p.num_clusters, dtype=bool)
    for v, ys in saved.items():
        lo = int(p.pair_starts[v])
        now[p.pair_c[lo:lo + len(ys)][ys > 0]] = True
    for i in range(len(hood)):
        lo = int(np.searchsorted(sub.pair_w, i, side="left"))
        hi = int(np.searchsorted(sub.pair_w, i, side="right"))
        if sub.broadcast[i]:
            keep[lo:hi] = True
            continue
        cand = np.nonzero(open_[lo:hi])[0]
        order = cand[np.argsort(score[lo:hi][cand], kind="stable")]
        keep[lo + order[:CANDIDATES]] = True
        keep[lo:hi] |= now[sub.pair_c[lo:hi]] & open_[lo:hi]
        keep[lo + concerns.offer(sub, Pairs(i, lo, hi, sub.pair_c[lo:hi]), order)] = True
    return keep


#: CP-SAT seconds spent lowering a neighbourhood's cost once it has a placement: what a repair is
#: for is placing; the cost LP (engine.solvers.refine) and improve_placed lower the cost afterwards
POLISH_SECONDS = 0.04


def _solve_all_placed(sub: Problem, *, time_limit: float) -> np.ndarray | None:
    """Replicas per pair placing *every* workload of ``sub`` at the lowest weighted cost, or ``None``.

    One CP-SAT call instead of the level-by-level solve: in a neighbourhood the
    priority levels are decided (all placed), so only feasibility and cost remain.
    """
    compiled = compile_model(sub)
    model = compiled.model
    for placed in compiled.ctx.placed:
        model.add(placed == 1)
    set_objective(model, compiled.levels[-1])
    solver = cp_model.CpSolver()
    solver.parameters.max_time_in_seconds = time_limit
    solver.parameters.num_workers = 1
    stopper = stop_after_first(solver, POLISH_SECONDS)
    try:
        status = solver.solve(model, stopper)
    finally:
        stopper.cancel()
    if status not in (cp_model.OPTIMAL, cp_model.FEASIBLE):
        return None
    return np.array(solver.response_proto.solution, dtype=np.int64)[compiled.y_index]


def _block_outside(p: Problem, sub: Problem, hood: list[int], state: Residual) -> None:
    """Keep what the concerns ask of the workloads outside the neighbourhood (co-location: follow
    them, or avoid them): a pair of ``sub`` that no concern admits beside them gets no room."""
    inside = np.zeros(p.num_workloads, dtype=bool)
    inside[hood] = True
    for i, v in enumerate(hood):
        lo = int(np.searchsorted(sub.pair_w, i, side="left"))
        hi = int(np.searchsorted(sub.pair_w, i, side="right"))
        sl = p.pairs_of(v)  # sub keeps every pair of v, in the same order
        allow = concerns.admit_pairs(p, Pairs(v, sl.start, sl.stop, p.pair_c[sl]), state, sub.pair_ub[lo:hi], inside)
        sub.pair_ub[lo:hi][~allow] = 0


def improve_placed(problem: Problem, state: Residual, workloads: np.ndarray, *, deadline: Deadline) -> int:
    """Re-place ``workloads`` one at a time, exactly, where that is cheaper; returns how many moved.

    For workloads the LP cannot move (cluster counts, spread, Duplicated): each
    is taken out and solved alone against the residual capacity and quota
    (every constraint of its own, co-location with the rest kept), and the new
    placement is kept only when its (tier, weighted cost) is lower. Largest
    excess cost over the cheapest possible first, until ``deadline``.
    """
    if deadline.expired():
        return 0  # its set-up sorts every pair: seconds at millions of pairs
    p = problem
    weight = pair_weights(p)
    placed = placed_workloads(p, state.y)
    has_followers = concerns.anchored(p, placed)
    cost = np.bincount(p.pair_w, weights=state.y * weight, minlength=p.num_workloads)
    order = np.lexsort((weight, p.pair_w))
    first = np.minimum(np.searchsorted(p.pair_w[order], np.arange(p.num_workloads)), max(len(order) - 1, 0))
    cheapest = weight[order[first]] if len(order) else np.zeros(p.num_workloads)
    excess = cost - cheapest * np.bincount(p.pair_w, weights=state.y, minlength=p.num_workloads)
    todo = np.nonzero(workloads & placed & ~has_followers & (excess > 1e-9))[0]
    moved = 0
    for w in todo[np.argsort(-excess[todo], kind="stable")].tolist():
        if deadline.expired():
            break
        lo, hi = int(state.starts[w]), int(state.starts[w + 1])
        old = state.y[lo:hi].copy()
        old_key = (float((old * p.pair_tier[lo:hi]).sum()), float((old * weight[lo:hi]).sum()))
        if not _try(p, state, [w], placed, deadline, 0.5):
            continue
        new = state.y[lo:hi]
        new_key = (float((new * p.pair_tier[lo:hi]).sum()), float((new * weight[lo:hi]).sum()))
        if new_key < (old_key[0], old_key[1] - 1e-9):
            moved += 1
        else:
            release(p, state, w)
            state.take(p, w, old)
    return moved
