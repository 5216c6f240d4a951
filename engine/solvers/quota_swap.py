"""Quota trades: a placed workload of a tenant makes way for bigger (or more) of the same priority.

Quotas are sized near demand, so what the repairs (:mod:`engine.solvers.repair`) leave out is
often a workload whose tenant spent its quota on smaller ones of the same priority; section 3
counts replicas, so trading them places more. Every trade is by the construction rule and is
undone when it does not gain.
"""

from __future__ import annotations

import numpy as np

from engine.objective import fewest_copies, placed_workloads
from engine.problem import Problem
from engine.solvers.construct import Residual, pair_score, place_one, release
from engine.solvers.solution import Deadline
from policies import registry as concerns
from policies import replica_shape

__all__ = ["swap_for_quota", "within_quota"]


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
    split = replica_shape.divided(p)
    placed = placed_workloads(p, state.y)
    has_followers = concerns.anchored(p, placed)
    score = pair_score(p)
    blocked = np.nonzero(~placed & (np.diff(state.starts) > 0) & (p.tenant >= 0) & split)[0]
    gained = 0
    for w in blocked[np.argsort(-p.replicas[blocked], kind="stable")].tolist():
        if deadline.expired():
            break
        if placed[w] or within_quota(p, state, w):
            continue  # not quota-bound: the repairs have had their turn at it
        t = int(p.tenant[w])
        deficit = int(p.replicas[w]) * p.request[w] - state.quota[t]
        donors = np.nonzero(placed & (p.tenant == t) & (p.priority == p.priority[w]) & split
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
    split = replica_shape.divided(p)
    blocked = ~placed & (np.diff(state.starts) > 0) & (p.tenant >= 0) & split
    blocked &= np.array([not within_quota(p, state, w) if blocked[w] else False for w in range(p.num_workloads)],
                        dtype=bool)
    if not blocked.any():
        return 0
    gained = 0
    donors = np.nonzero(placed & (p.tenant >= 0) & split & ~has_followers
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


def within_quota(p: Problem, state: Residual, w: int) -> bool:
    """Whether the tenant's quota left can take ``w`` at its smallest (a necessary condition)."""
    t = int(p.tenant[w])
    copies = fewest_copies(p, w)
    return t < 0 or bool((int(p.replicas[w]) * copies * p.request[w] <= state.quota[t]).all())
