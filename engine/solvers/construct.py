"""Construction: place one workload at a time against what is left, in the order of spec section 3.

:func:`place_one` is the construction rule every heuristic shares (:mod:`engine.solvers.large`,
:mod:`engine.solvers.repair`, :mod:`engine.solvers.incremental`, the explanations and the
greedy baseline in ``benchmarks/``): all or nothing, every hard constraint of section 2 that
concerns the workload, earlier tiers first, then the cheapest clusters by the weighted objective
per replica. The rules themselves are the concerns' own (their construction faces, through
:mod:`policies.registry`): this module only orders pairs and keeps the residual state.
:class:`Residual` is the capacity and quota left; :func:`hardest_first` and :func:`smallest_first`
are the construction orders.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from engine.objective import pair_weights
from engine.problem import BIG, UNLIMITED, FloatArray, Problem, usage
from policies import registry as concerns
from policies.base import Candidates, Pairs

__all__ = ["COST_WEIGHT", "ROOM_WEIGHT", "Residual", "hardest_first", "pair_score", "place_one", "place_scored",
           "release", "smallest_first"]


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
        if len(p.tenant_names):  # only the pairs that carry replicas (a mask per tenant took seconds at 9M pairs)
            on = np.nonzero(state.y)[0]
            w = p.pair_w[on]
            t = p.tenant[w]
            mine = t >= 0
            np.subtract.at(state.quota, t[mine], state.y[on[mine], None] * p.request[w[mine]])
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
    score: FloatArray = problem.pair_tier * 1e9 + pair_weights(problem)
    return score


def place_one(problem: Problem, w: int, state: Residual, score: np.ndarray) -> bool:
    """Place every replica of workload ``w`` against ``state`` or nothing; ``True`` when placed.

    Every hard constraint of spec section 2 that concerns ``w`` holds for the result, given the
    workloads already in ``state`` (affinity partners must already be placed): each concern says
    it through the registry (:mod:`policies.registry`): the room per pair, which pairs it admits,
    the order and the shape of the replicas, and a last "may these replicas go there?". ``score``
    orders pairs, lower first.
    """
    p = problem
    lo, hi = int(state.starts[w]), int(state.starts[w + 1])
    at = Pairs(w, lo, hi, p.pair_c[lo:hi])
    if not len(at):
        return False
    if state.y[at.lo:at.hi].any():
        raise ValueError(f"workload {p.workload_keys[w]} is already placed in this state")
    room = concerns.room(p, at, state)
    ok = concerns.admit_pairs(p, at, state, room)
    mine = score[at.lo:at.hi]
    cand = np.nonzero(ok)[0]
    order = concerns.order(p, at, cand[np.argsort(mine[cand], kind="stable")])
    ys = concerns.propose(p, at, Candidates(order, room, ok, mine, concerns.fewest_clusters(p, w)))
    if not len(ys) or not concerns.admit(p, at, ys, state):
        return False
    state.take(p, w, ys)
    return True


def release(problem: Problem, state: Residual, w: int) -> np.ndarray:
    """Take workload ``w`` out of ``state``; returns its replicas per pair (to put back)."""
    lo, hi = int(state.starts[w]), int(state.starts[w + 1])
    old = state.y[lo:hi].copy()
    if old.any():
        state.take(problem, w, -old)
        state.y[lo:hi] = 0
    return old


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
