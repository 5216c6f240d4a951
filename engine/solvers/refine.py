"""Cost refinement at a fixed placement: an LP over the flexible workloads, then rounding.

Construction (:mod:`engine.solvers.construct`) decides *which* workloads are placed; this
step moves their replicas to where the weighted objective is lowest without
changing the replicas placed at any priority and without a worse tier sum:

1. Workloads whose placement is a plain split (Divided, no per-cluster
   minimum above 1, no cluster count, spread or co-location, not Aggregated)
   are *flexible*; every other workload keeps its replicas and its usage is
   taken off capacity and quota.
2. An LP (HiGHS dual simplex through scipy) minimises the weighted cost of the
   flexible workloads: ``sum_c y[w, c] = replicas[w]``, capacity and quota
   per resource, ``tier <= tier now``, over each workload's cheapest
   candidate pairs plus those it uses now; columns with a negative reduced
   cost are added and the LP re-solved (column generation, a few rounds).
3. Rounding: every workload first gets its LP replicas floored (they fit,
   since the LP solution does); the few replicas left go to the cheapest pair
   with room, biggest workloads first. A workload that finds no room moves
   replicas of free workloads off one of its clusters; workloads that still
   fail go first in the next attempt, and after that go back to where they
   were; a free workload that took their room moves on to its next cheapest
   pair with room, and goes back too only when there is none (the rest keep
   the LP's layout). Replicas rounded into a later tier than the workload
   used before go back to its earlier tiers (the LP keeps only the tier sum).
   If the result is not better in the order of section 3, the
   placement is returned unchanged: refinement never makes a plan worse.
   (Completing workloads one by one in turn, as before, failed at 95% load:
   early ones took the room the floors of later ones needed, and the whole
   refinement was lost.)
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

from engine.lazy import lazy_module
from engine.objective import pair_weights, placed_workloads
from engine.problem import BIG, UNLIMITED, Problem, usage
from engine.solvers.solution import Deadline
from policies import registry as concerns

if TYPE_CHECKING:
    import scipy.sparse as sp
    from scipy import optimize
else:
    sp = lazy_module("scipy.sparse")
    optimize = lazy_module("scipy.optimize")

__all__ = ["flexible_workloads", "refine_cost"]

#: cheapest pairs per free workload in the first LP round (pricing adds the rest). 12 made the rounds
#: and the rounding slow enough that, on a busy machine, a 2000 x 300 cloud fleet at 95% lost its
#: whole refinement to the deadline (gap 2.8% instead of 0.9%); 6 solves the same instances in 2.0 s
#: within 0.1% of the cost, where 12 needed 2.4 s
_CANDIDATES = 6
#: replicas of at most this many other workloads are examined to make room on one cluster
_VICTIMS = 64


def flexible_workloads(problem: Problem) -> np.ndarray:
    """(W,) bool: workloads whose replicas may be moved freely between their pairs (no concern makes
    them rigid, :func:`policies.registry.rigid`)."""
    return ~concerns.rigid(problem)


def _candidates(p: Problem, cols_ok: np.ndarray, score: np.ndarray, y: np.ndarray, k: int) -> np.ndarray:
    """Pair indices: the ``k`` cheapest eligible pairs of each flexible workload, and those in use."""
    idx = np.nonzero(cols_ok)[0]
    order = idx[np.lexsort((score[idx], p.pair_w[idx]))]
    w_sorted = p.pair_w[order]
    first = np.searchsorted(w_sorted, w_sorted, side="left")
    rank = np.arange(len(order)) - first
    keep = order[(rank < k) | (y[order] > 0)]
    return np.sort(keep)


def refine_cost(problem: Problem, y: np.ndarray, *, deadline: Deadline, rounds: int = 3) -> np.ndarray:
    """A placement with the same replicas per workload and a lower weighted cost, or ``y`` itself.

    *Free* workloads (see :func:`flexible_workloads`) may use any of their pairs.
    Workloads with cluster counts, per-cluster bounds, spread without skew,
    Aggregated division or co-location keep their *set* of clusters (so those
    constraints keep holding) but may move replicas between those clusters.
    Duplicated workloads and spread with ``maxSkew`` keep their placement.
    """
    p = problem
    placed = placed_workloads(p, y)
    free = flexible_workloads(p) & placed
    semi = placed & ~free & ~concerns.fixed_layout(p)
    movable = free | semi
    if not movable.any():
        return y
    allowed = free[p.pair_w] | (semi[p.pair_w] & (y > 0))
    lower = np.where(semi[p.pair_w] & (y > 0), np.maximum(p.min_per[p.pair_w], 1), 0)
    # rounding takes about two thirds as long as the LP rounds at 10,000 workloads: time is kept for it
    result = column_generation(p, y, movable, free, lower, deadline=deadline.slice(0.6), rounds=rounds)
    if result is None:
        return y
    x, cols, cap, quota, weight = result
    out, _ = _round(p, y, movable, allowed, cols, x, cap, quota, weight, semi, deadline=deadline)
    if out is None:
        return y
    before = (float((y * p.pair_tier).sum()), float((y * weight).sum()))
    after = (float((out * p.pair_tier).sum()), float((out * weight).sum()))
    return out if after < before else y


def _tier_by_workload(p: Problem, y: np.ndarray) -> np.ndarray:
    return np.bincount(p.pair_w, weights=y * p.pair_tier, minlength=p.num_workloads)


def column_generation(problem: Problem, y: np.ndarray, flex: np.ndarray, free: np.ndarray, lower: np.ndarray,
                       *, deadline: Deadline, rounds: int, exact: bool = False, upper: np.ndarray | None = None,
                       totals: np.ndarray | None = None):  # type: ignore[no-untyped-def]
    """LP over the pairs of ``flex`` workloads; only ``free`` ones get new columns by pricing."""
    p = problem
    n_r = len(p.resource_names)
    placed = placed_workloads(p, y)
    pair_flex = flex[p.pair_w]
    weight = pair_weights(p)
    # capacity and quota left by the workloads that keep their placement
    fixed_w = placed & ~flex
    cap = np.where(p.capacity == UNLIMITED, UNLIMITED, p.capacity - usage(p, y, fixed_w))
    quota = p.quota.copy()
    for t in range(len(p.tenant_names)):
        mine = fixed_w[p.pair_w] & (p.tenant[p.pair_w] == t)
        for r in range(n_r):
            if quota[t, r] != UNLIMITED:
                quota[t, r] -= int((y[mine] * p.request[p.pair_w[mine], r]).sum())
    tier_now = float((y[pair_flex] * p.pair_tier[pair_flex]).sum())

    pair_free = free[p.pair_w]
    cols = np.union1d(_candidates(p, pair_free & (p.pair_ub > 0), weight, y, _CANDIDATES),
                      np.nonzero(pair_flex & ~pair_free & (y > 0))[0])
    flex_ids = np.nonzero(flex)[0]
    row_of_w = np.full(p.num_workloads, -1, dtype=np.int64)
    row_of_w[flex_ids] = np.arange(len(flex_ids))
    lim_c = [np.nonzero(cap[:, r] != UNLIMITED)[0] for r in range(n_r)]
    lim_t = [np.nonzero(quota[:, r] != UNLIMITED)[0] for r in range(n_r)]

    solution = None
    converged = False
    lagrangian = -np.inf
    bounds_up = p.pair_ub if upper is None else upper
    totals_w = p.replicas if totals is None else totals
    for _ in range(rounds):
        if deadline.expired():
            break
        latest = _solve_lp(p, cols, row_of_w, len(flex_ids), cap, quota, lim_c, lim_t, weight, tier_now, lower,
                           bounds_up, totals_w, time_limit=max(deadline.remaining(), 0.1))
        if latest is None:
            if solution is None:
                return None
            break  # out of time in this round: the last round's optimum over its columns stands
        solution = latest
        _, duals = solution
        if deadline.expired() and not exact:
            break  # no time for another round: pricing alone takes seconds over millions of pairs
        # pricing: reduced cost of every flexible pair not yet a column
        u_w, v_cap, v_quota, v_tier = duals
        reduced = weight - u_w[row_of_w[p.pair_w]] - v_tier * p.pair_tier
        for r in range(n_r):
            price = np.zeros(p.num_clusters)
            price[lim_c[r]] = v_cap[r]
            reduced -= p.request[p.pair_w, r] * price[p.pair_c]
            qprice = np.zeros(max(len(p.tenant_names), 1))
            if len(lim_t[r]):
                qprice[lim_t[r]] = v_quota[r]
            has_t = p.tenant[p.pair_w] >= 0
            reduced[has_t] -= p.request[p.pair_w[has_t], r] * qprice[p.tenant[p.pair_w[has_t]]]
        new = pair_free & (p.pair_ub > 0) & (reduced < -1e-7)
        new[cols] = False
        if exact:
            lagrangian = max(lagrangian, _lagrangian(p, weight, duals, lim_c, lim_t, cap, quota, tier_now, pair_flex,
                                                     lower, bounds_up, totals_w))
        if not new.any():
            converged = True
            break
        cols = np.union1d(cols, _candidates(p, new, reduced, np.zeros_like(y), _CANDIDATES))
    if solution is None:
        return None
    if exact:
        # converged: the LP optimum; otherwise the best Lagrangian bound met on the way (also valid)
        return float((solution[0] * weight).sum()) if converged else lagrangian
    return solution[0], cols, cap, quota, weight


def _lagrangian(p, weight, duals, lim_c, lim_t, cap, quota, tier_now, pair_flex, lower, upper,  # type: ignore[no-untyped-def]
                totals) -> float:
    """A lower bound on the LP from any dual prices of its shared rows (Lagrangian relaxation).

    With capacity, quota and tier rows priced at ``-v >= 0``, what is left splits by
    workload: each fills its replicas on its cheapest priced pairs within the
    bounds. Every pair of the workload counts, not only the LP's columns, so the
    bound holds before column generation has converged.
    """
    _, v_cap, v_quota, v_tier = duals
    v_tier = min(float(v_tier), 0.0)
    priced = weight - v_tier * p.pair_tier
    constant = v_tier * tier_now
    has_t = p.tenant[p.pair_w] >= 0
    for r in range(len(p.resource_names)):
        price = np.zeros(p.num_clusters)
        price[lim_c[r]] = np.minimum(v_cap[r], 0.0)
        priced = priced - p.request[p.pair_w, r] * price[p.pair_c]
        constant += float((price[lim_c[r]] * np.maximum(cap[lim_c[r], r], 0)).sum())
        qprice = np.zeros(max(len(p.tenant_names), 1))
        if len(lim_t[r]):
            qprice[lim_t[r]] = np.minimum(v_quota[r], 0.0)
            constant += float((qprice[lim_t[r]] * np.maximum(quota[lim_t[r], r], 0)).sum())
        priced[has_t] -= p.request[p.pair_w[has_t], r] * qprice[p.tenant[p.pair_w[has_t]]]
    idx = np.nonzero(pair_flex & (upper > 0))[0]
    lo = lower[idx].astype(float)
    room = np.maximum(upper[idx] - lower[idx], 0).astype(float)
    order = np.lexsort((priced[idx], p.pair_w[idx]))
    w_sorted = p.pair_w[idx][order]
    room_sorted = room[order]
    before = np.cumsum(room_sorted) - room_sorted
    first = np.searchsorted(w_sorted, w_sorted, side="left")
    before -= (np.cumsum(room_sorted) - room_sorted)[first]
    need = totals[w_sorted] - np.bincount(p.pair_w[idx], weights=lo, minlength=p.num_workloads)[w_sorted]
    take = np.clip(need - before, 0, room_sorted)
    return float((priced[idx] * lo).sum() + (priced[idx][order] * take).sum()) + constant


def _solve_lp(p, cols, row_of_w, n_rows, cap, quota, lim_c, lim_t, weight, tier_now, lower, upper,  # type: ignore[no-untyped-def]
              totals, *, time_limit: float):
    """The LP over ``cols`` with HiGHS: (x per pair, duals), or ``None`` (infeasible or out of time)."""
    n = len(cols)
    if n == 0:
        return None
    cw = p.pair_w[cols]
    a_eq = sp.csr_matrix((np.ones(n), (row_of_w[cw], np.arange(n))), shape=(n_rows, n))
    b_eq = totals[np.nonzero(row_of_w >= 0)[0]].astype(float)
    blocks = []
    rhs = []
    n_r = len(p.resource_names)
    for r in range(n_r):
        coef = p.request[cw, r].astype(float)
        pos = np.full(p.num_clusters, -1)
        pos[lim_c[r]] = np.arange(len(lim_c[r]))
        rows = pos[p.pair_c[cols]]
        ok = (rows >= 0) & (coef > 0)
        blocks.append(sp.csr_matrix((coef[ok], (rows[ok], np.nonzero(ok)[0])), shape=(len(lim_c[r]), n)))
        rhs.append(np.maximum(cap[lim_c[r], r], 0).astype(float))
    for r in range(n_r):
        coef = p.request[cw, r].astype(float)
        pos = np.full(max(len(p.tenant_names), 1), -1)
        pos[lim_t[r]] = np.arange(len(lim_t[r]))
        t = p.tenant[cw]
        rows = np.where(t >= 0, pos[np.maximum(t, 0)], -1)
        ok = (rows >= 0) & (coef > 0)
        blocks.append(sp.csr_matrix((coef[ok], (rows[ok], np.nonzero(ok)[0])), shape=(len(lim_t[r]), n)))
        rhs.append(np.maximum(quota[lim_t[r], r], 0).astype(float))
    blocks.append(sp.csr_matrix(p.pair_tier[cols].astype(float)[None, :]))
    rhs.append(np.array([tier_now]))
    a_ub = sp.vstack(blocks).tocsr()
    b_ub = np.concatenate(rhs)
    bounds = np.stack([lower[cols].astype(float), upper[cols].astype(float)], axis=1)
    res = optimize.linprog(weight[cols], A_ub=a_ub, b_ub=b_ub, A_eq=a_eq, b_eq=b_eq, bounds=bounds,
                  method="highs-ds", options={"presolve": True, "time_limit": time_limit})
    if res.status != 0:
        return None
    marg = res.ineqlin.marginals
    v_cap, v_quota = [], []
    k = 0
    for r in range(n_r):
        v_cap.append(marg[k:k + len(lim_c[r])])
        k += len(lim_c[r])
    for r in range(n_r):
        v_quota.append(marg[k:k + len(lim_t[r])])
        k += len(lim_t[r])
    v_tier = float(marg[k])
    x = np.zeros(p.num_pairs)
    x[cols] = res.x
    return x, (res.eqlin.marginals, v_cap, v_quota, v_tier)


def _round(p, y, flex, allowed, cols, x, cap, quota, weight, first,  # type: ignore[no-untyped-def]
           deadline: Deadline | None = None):
    """Round the LP: every movable workload first gets its LP replicas floored (they fit, since the
    LP solution does), then the few replicas the floors leave out go to the cheapest allowed pairs
    with room, biggest first. A workload that finds no room makes room by moving replicas of free
    workloads off one of its clusters (:func:`_make_room`); workloads that still fail go first in the
    next attempt, and after that go back to where they are now (:func:`_revert`). Returns the
    rounded replicas and the workloads that went back."""
    movable = flex[p.pair_w]
    floors = np.zeros(p.num_pairs, dtype=np.int64)
    floors[cols] = np.floor(x[cols] + 1e-6).astype(np.int64)
    floors[~movable] = 0
    lower = np.where(allowed & (y > 0) & first[p.pair_w], np.maximum(p.min_per[p.pair_w], 1), 0)
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
    starts = np.searchsorted(p.pair_w, np.arange(p.num_workloads + 1))
    free = flex & ~first
    todo = np.nonzero(missing > 0)[0]
    size = (p.request[todo] / np.maximum(room.clip(0).max(axis=0), 1)).sum(axis=1) * missing[todo]
    order = todo[np.argsort(-size, kind="stable")].tolist()
    for _ in range(2):
        out, left = base.copy(), room.copy()
        # past the deadline the rest count as failed: they keep their old placement
        failed = [w for w in order if (deadline is not None and deadline.expired())
                  or not _complete(p, w, int(missing[w]), out, left, allowed, weight, starts, free)]
        if not failed:
            break
        again = set(failed)
        order = failed + [w for w in order if w not in again]
    failed += _keep_tiers(p, y, out, left, allowed, weight, starts, free, set(failed))
    # a fixed cluster set must keep every cluster (counts, groups, Aggregated)
    bad = ((out > 0) & (out < p.min_per[p.pair_w])) | (out < lower)
    failed = sorted(set(failed) | set(np.unique(p.pair_w[bad]).tolist()))
    if not failed:
        return out, failed
    return _revert(p, y, out, failed, cap, movable, relocate=(allowed, weight, free)), failed


def _keep_tiers(p, y, out, room, allowed, weight, starts, free, failed) -> list[int]:  # type: ignore[no-untyped-def]
    """Move replicas that rounding put in a later tier than the workload used before back to its
    earlier tiers; returns the workloads where that found no room.

    The LP keeps only the tier *sum*: it may give one workload's earlier-tier room to another and
    push the first into a later tier, and rounding the fractions can then raise the sum (seen at
    95% load: 6 against 5, which threw the whole refinement away)."""
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
        earlier = allowed.copy()
        earlier[lo:hi] &= p.pair_tier[lo:hi] <= latest
        if not _complete(p, w, moved, out, room, earlier, weight, starts, free):
            stuck.append(w)
    return stuck


def _revert(p, y, out, failed, cap, movable, relocate=None):  # type: ignore[no-untyped-def]
    """``out`` with ``failed`` workloads back where ``y`` has them; where that overfills a cluster,
    workloads that gained replicas there go back too, biggest gain first, one at a time, until
    everything fits. Every workload is then either rounded or as before, both valid for it, so the
    mix is a valid plan (``y`` itself at worst).

    With ``relocate = (allowed, weight, free)``, free workloads first move off the overfilled
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
        if relocate is not None and _make_room(p, c, -room[c], mix, room, *relocate[:2], starts, relocate[2]):
            continue
        on_c = p.pairs_on(c)
        gained = on_c[movable[on_c] & (mix[on_c] > y[on_c]) & ~back[p.pair_w[on_c]]]
        if not len(gained):
            return y.copy()
        excess = np.maximum(-room[c], 0)
        share = ((mix[gained] - y[gained])[:, None] * p.request[p.pair_w[gained]] * (excess > 0)).sum(axis=1)
        put_back(int(p.pair_w[gained[int(np.argmax(share))]]))
    return y.copy()


def _complete(p, w, missing, out, room, allowed, weight, starts, free) -> bool:  # type: ignore[no-untyped-def]
    """Add ``missing`` replicas of ``w`` to ``out`` on its cheapest allowed pairs with room."""
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
                if allowed[lo + i] and out[lo + i] < p.pair_ub[lo + i] and _make_room(
                        p, c, need, out, room, allowed, weight, starts, free):
                    break
    return False


def _make_room(p, c, need, out, room, allowed, weight, starts, free) -> bool:  # type: ignore[no-untyped-def]
    """Move replicas of free workloads off cluster ``c`` to their next cheapest allowed pairs with room
    (no later tier) until ``need`` more of each resource is free on ``c``; ``True`` when it is
    (moves are kept either way, and every move keeps the plan valid)."""
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
