"""Shares of what parts of a decomposed problem hold in common, from an LP over the whole problem.

When :mod:`engine.decompose` cuts a fleet by region, the parts still share some clusters (national
services may use every region's cloud clusters) and some tenant quotas. Each part is solved alone,
so each gets a share of every shared cluster's capacity and of every shared quota, and the shares
sum to no more than the whole: the merged plan then fits wherever the parts' plans fit.

How much of a shared cluster should go to which part is what the LP relaxation of the **whole**
problem answers (:func:`engine.solvers.lp.solve_lp`, the levels of section 3 in one objective):
its replicas ``y`` use each shared cluster and quota in some amounts per part, at an optimum of
the whole, so a part gets what its workloads use there in the LP (:func:`lp_usage`), and what the
LP leaves unused is split by the demand each part could place there (:func:`demand_split`: its
replicas' requests spread over their eligible clusters). Without an LP (no round finished in its
time) the usage is zero and the demand split alone decides, as it did before the LP.

Floors keep every share an integer and their sum within the whole, so no part's plan can run a
merged plan over a cluster or a quota.
"""

from __future__ import annotations

import numpy as np

from engine.problem import UNLIMITED, Problem

__all__ = ["Shares", "demand_split", "lp_usage", "shared_clusters", "shared_tenants", "shares"]


class Shares:
    """Each part's capacity (C, R) and quota (T, R), in solver units (``UNLIMITED`` kept)."""

    def __init__(self, capacity: list[np.ndarray], quota: list[np.ndarray]) -> None:
        self.capacity = capacity
        self.quota = quota


def _parts_on(p: Problem, part_of: np.ndarray, parts: int, key: np.ndarray, n_keys: int) -> np.ndarray:
    """(K, n_keys) bool: part ``k`` has an eligible pair on key ``key[pair]`` (>= 0)."""
    ok = key >= 0
    seen = np.zeros(parts * max(n_keys, 1), dtype=bool)
    seen[part_of[p.pair_w[ok]] * n_keys + key[ok]] = True
    return seen[: parts * n_keys].reshape(parts, n_keys)


def shared_clusters(p: Problem, part_of: np.ndarray, parts: int) -> np.ndarray:
    """(C,) bool: clusters where workloads of more than one part are eligible."""
    return np.asarray(_parts_on(p, part_of, parts, p.pair_c.astype(np.int64), p.num_clusters).sum(axis=0) > 1)


def shared_tenants(p: Problem, part_of: np.ndarray, parts: int) -> np.ndarray:
    """(T,) bool: tenants with workloads in more than one part."""
    n_t = len(p.tenant_names)
    if not n_t:
        return np.zeros(0, dtype=bool)
    seen = np.zeros((parts, n_t), dtype=bool)
    mine = p.tenant >= 0
    seen[part_of[mine], p.tenant[mine]] = True
    return np.asarray(seen.sum(axis=0) > 1)


def demand_split(p: Problem, part_of: np.ndarray, parts: int) -> tuple[np.ndarray, np.ndarray]:
    """Fractions (K, C) of each cluster and (K, T) of each tenant's quota by the demand each part
    can place there: every replica's requests (relative to the fleet's total of each resource)
    spread evenly over its workload's eligible clusters. A cluster or tenant no part asks for is
    split evenly."""
    total = np.maximum(p.capacity.clip(min=0).sum(axis=0), 1).astype(float)
    size = (p.request / total).sum(axis=1) * p.replicas * np.where(p.duplicated, p.count_min, 1)
    n_pairs = np.maximum(np.bincount(p.pair_w, minlength=p.num_workloads), 1)
    spread = (size / n_pairs)[p.pair_w]
    pair_part = part_of[p.pair_w]
    n_c, n_t = p.num_clusters, len(p.tenant_names)
    demand = np.bincount(pair_part * n_c + p.pair_c, weights=spread, minlength=parts * n_c).reshape(parts, n_c)
    mine = p.tenant >= 0
    t_demand = np.bincount(part_of[mine] * n_t + p.tenant[mine], weights=size[mine],
                           minlength=parts * n_t).reshape(parts, n_t)
    return _fractions(demand, parts), _fractions(t_demand, parts)


def _fractions(demand: np.ndarray, parts: int) -> np.ndarray:
    whole = demand.sum(axis=0)
    return np.where(whole > 0, demand / np.where(whole > 0, whole, 1.0), 1.0 / parts)


def lp_usage(p: Problem, part_of: np.ndarray, parts: int, y: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """What the LP's replicas ``y`` (per pair, fractional) of each part use: (K, C, R) of every
    cluster and (K, T, R) of every tenant's quota, in solver units."""
    n_r = len(p.resource_names)
    y = np.clip(np.asarray(y, dtype=float), 0.0, None)
    on = np.nonzero(y > 1e-9)[0]
    w, c, k = p.pair_w[on], p.pair_c[on], part_of[p.pair_w[on]]
    load = y[on, None] * p.request[w].astype(float)
    cap_use = np.zeros((parts, p.num_clusters, n_r))
    np.add.at(cap_use, (k, c), load)
    n_t = len(p.tenant_names)
    quota_use = np.zeros((parts, n_t, n_r))
    t = p.tenant[w]
    mine = t >= 0
    np.add.at(quota_use, (k[mine], t[mine]), load[mine])
    return cap_use, quota_use


def _split(limit: np.ndarray, used: np.ndarray, fraction: np.ndarray) -> list[np.ndarray]:
    """Integer shares of ``limit`` (N, R): each part its LP use ``used`` (K, N, R), scaled down where
    the LP's sum runs over the limit (its tolerances), plus ``fraction`` (K, N) of what the LP
    leaves; floored, so the shares never sum to more than ``limit``."""
    cap = np.where(limit == UNLIMITED, 0, limit).astype(float)
    total = used.sum(axis=0)
    scale = np.where(total > cap, cap / np.where(total > 0, total, 1.0), 1.0)
    used = used * scale[None]
    spare = np.maximum(cap - used.sum(axis=0), 0.0)
    out = []
    for k in range(len(used)):
        share = np.floor(used[k] + spare * fraction[k][:, None] + 1e-9).astype(np.int64)
        out.append(np.where(limit == UNLIMITED, UNLIMITED, np.minimum(share, np.maximum(limit, 0))))
    # floors of parts that add up to exactly the limit may still carry a rounding excess: take it back
    over = np.maximum(sum(np.where(limit == UNLIMITED, 0, s) for s in out) - np.maximum(limit, 0), 0)
    for k in range(len(out) - 1, -1, -1):
        if not over.any():
            break
        take = np.minimum(over, np.where(limit == UNLIMITED, 0, out[k]))
        out[k] = np.where(limit == UNLIMITED, UNLIMITED, out[k] - take)
        over = over - take
    return out


def shares(p: Problem, part_of: np.ndarray, parts: int, lp_y: np.ndarray | None) -> Shares:
    """Each part's capacity and quota (see the module docstring); ``lp_y``: the whole problem's LP
    replicas per pair, or ``None`` for the demand split alone.

    A cluster or tenant only one part can use goes to that part whole (and nothing to the others,
    which have no pair or workload there)."""
    fraction, t_fraction = demand_split(p, part_of, parts)
    own_c = _parts_on(p, part_of, parts, p.pair_c.astype(np.int64), p.num_clusters)
    alone = own_c.sum(axis=0) <= 1
    fraction = np.where(alone[None], own_c | (~own_c.any(axis=0) & (np.arange(parts) == 0)[:, None]), fraction)
    n_t, n_r = len(p.tenant_names), len(p.resource_names)
    if n_t:
        own_t = np.zeros((parts, n_t), dtype=bool)
        mine = p.tenant >= 0
        own_t[part_of[mine], p.tenant[mine]] = True
        alone_t = own_t.sum(axis=0) <= 1
        t_fraction = np.where(alone_t[None], own_t | (~own_t.any(axis=0) & (np.arange(parts) == 0)[:, None]),
                              t_fraction)
    if lp_y is None:
        cap_use, quota_use = np.zeros((parts, p.num_clusters, n_r)), np.zeros((parts, n_t, n_r))
    else:
        cap_use, quota_use = lp_usage(p, part_of, parts, lp_y)
        # where one part alone can be there, its share is the whole: its LP use does not matter
        cap_use[:, alone] = 0.0
        if n_t:
            quota_use[:, alone_t] = 0.0
    capacity = _split(p.capacity, cap_use, fraction.astype(float))
    quota = _split(p.quota, quota_use, t_fraction.astype(float)) if n_t else [p.quota] * parts
    return Shares(capacity, quota)
