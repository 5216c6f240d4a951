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
(:mod:`engine.solvers.neighbourhood`) against the residual capacity and quota. The result is kept only when every
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
priority is lost. Trades within a tenant's quota are :mod:`engine.solvers.quota_swap`.
"""

from __future__ import annotations

import numpy as np

from engine.objective import placed_workloads
from engine.problem import BIG, Problem
from engine.solvers.construct import Residual, pair_score, place_one, release
from engine.solvers.neighbourhood import solve_neighbourhood
from engine.solvers.quota_swap import within_quota
from engine.solvers.solution import Deadline
from policies import registry as concerns
from policies import replica_shape

__all__ = ["repair_unplaced"]


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
    todo = np.array([w for w in todo.tolist() if within_quota(p, state, w)], dtype=np.int64)
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
        if _fits_alone(p, state, w) and solve_neighbourhood(p, state, [w], placed, exact_deadline, per_solve):
            added += 1
            continue
        hood = concerns.neighbourhood(p, w, placed)
        if len(hood) > 1 and solve_neighbourhood(p, state, hood, placed, exact_deadline, per_solve):
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
        if movers and solve_neighbourhood(p, state, sorted(hood + movers), placed, exact_deadline,
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


def _fits_alone(p: Problem, state: Residual, w: int) -> bool:
    """A quick necessary condition for placing ``w`` without moving anything: its eligible clusters
    have room for all its replicas (copies for Duplicated) taken together."""
    lo, hi = int(state.starts[w]), int(state.starts[w + 1])
    pcs = p.pair_c[lo:hi]
    req = p.request[w]
    fit = p.pair_ub[lo:hi].astype(np.int64)
    for r in np.nonzero(req > 0)[0].tolist():
        fit = np.minimum(fit, np.maximum(state.capacity[pcs, r], 0) // int(req[r]))
    return replica_shape.fits_alone(p, w, fit)


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
    movers: list[int] = candidates[np.argsort(-mobility, kind="stable")[:MOVERS * widen]].tolist()
    return movers


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
