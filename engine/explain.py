"""Why a workload is unplaced: reason codes with the numbers a person needs.

Each unplaced workload is examined in the order a person would ask:
is any cluster eligible at all (policy filters)? could it fit in the empty
fleet (capacity, bounds, spread, quota)? does it fit beside the workloads of
higher priority (else ``OutPrioritized``, naming them)? beside everything
placed (else capacity or quota taken by equals)? Small single-workload
solves answer the "could it fit" questions exactly.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

from engine.lazy import lazy_module
from engine.moves import moves_per_workload
from engine.objective import fewest_copies, placed_workloads
from engine.plan import Reason
from engine.problem import UNLIMITED, Problem, capped_ub, restrict, usage
from engine.quantity import format_quantity
from engine.solvers.construct import Residual, pair_score, place_one
from engine.solvers.model import compile_model
from engine.solvers.solution import Deadline
from policies import registry as concerns
from policies.registry import plugin_by_name

if TYPE_CHECKING:
    from ortools.sat.python import cp_model
else:
    cp_model = lazy_module("ortools.sat.python.cp_model")

__all__ = ["explain_unplaced"]

_MAX_NAMES = 12


def _names(problem: Problem, clusters: np.ndarray) -> list[str]:
    return [problem.cluster_names[c] for c in clusters.tolist()]


#: CP-SAT seconds for one "would it fit" solve, at most
FIT_SECONDS = 2.0


def _fits(problem: Problem, w: int, until: Deadline, *, capacity: np.ndarray | None = None,
          quota: np.ndarray | None = None, drop_spread: bool = False) -> bool:
    """Whether ``w`` alone can be placed under the given capacity/quota overrides.

    Exact: arithmetic for a plain split; otherwise the construction rule first
    (when it places the workload, it fits: a millisecond) and a small CP-SAT
    solve only when that fails (total room only, once ``until`` has passed or when
    the solve ran out of it).
    """
    if until.expired():
        # total room decides (below), read off the whole problem: a sub-problem per question took
        # 4 ms, 21 s for the unplaced workloads of a 50,000-workload fleet
        at = problem.pairs_of(w)
        ub = problem.pair_ub[at] if capacity is None else capped_ub(problem, np.arange(at.start, at.stop), capacity)
        return bool(ub.any()) and _room_fits(problem, w, ub, problem.quota if quota is None else quota)
    keep = np.zeros(problem.num_workloads, dtype=bool)
    keep[w] = True
    sub = restrict(problem, keep, capacity=capacity, quota=quota, drop_spread=drop_spread)
    if sub.num_pairs == 0 or not sub.pair_ub.any():
        return False
    if _plain(sub):
        return _room_fits(sub, 0, sub.pair_ub, sub.quota)
    if place_one(sub, 0, Residual.empty(sub), pair_score(sub)):
        return True  # a valid placement of it alone: it fits (a solve would say the same, slower)
    compiled = compile_model(sub)
    compiled.model.add(compiled.ctx.placed[0] == 1)
    solver = cp_model.CpSolver()
    solver.parameters.max_time_in_seconds = max(min(FIT_SECONDS, until.remaining()), 0.01)
    solver.parameters.num_workers = 1
    status = solver.solve(compiled.model)
    if status == cp_model.UNKNOWN:
        return _room_fits(sub, 0, sub.pair_ub, sub.quota)  # out of time: total room decides, as past ``until``
    return status in (cp_model.OPTIMAL, cp_model.FEASIBLE)


def _room_fits(p: Problem, w: int, ub: np.ndarray, quota: np.ndarray) -> bool:
    """A plain split of ``w`` fits exactly when its pairs' room ``ub`` adds up to its replicas (and
    ``quota`` allows)."""
    t = int(p.tenant[w])
    need = int(p.replicas[w]) * p.request[w]
    if t >= 0 and ((quota[t] != UNLIMITED) & (need > quota[t])).any():
        return False
    return int(ub.sum()) >= int(p.replicas[w])


def _plain(sub: Problem) -> bool:
    """One workload that every concern lets split freely over its pairs (no bounds, count, spread...)."""
    return not bool(concerns.rigid(sub)[0])


def _shortfall(problem: Problem, w: int, free: np.ndarray, eligible: np.ndarray, after: str) -> str:
    """"6 eligible clusters have 3.5 free cpu; 8 needed" for the tightest resource."""
    p = problem
    copies = fewest_copies(p, w)
    worst = None
    for r, name in enumerate(p.resource_names):
        per = int(p.request_base[w, r])
        if per == 0:
            continue
        need = per * int(p.replicas[w]) * copies
        col = free[eligible, r]
        if (col == UNLIMITED).any():
            continue
        have = int(np.maximum(col, 0).sum())
        ratio = have / need
        if worst is None or ratio < worst[0]:
            worst = (ratio, name, have, need)
    n = int(eligible.sum()) if eligible.dtype == bool else len(eligible)
    if worst is None:
        return f"{n} eligible cluster(s) cannot hold its replicas{after}"
    _, name, have, need = worst
    return (
        f"{n} eligible cluster(s) have {format_quantity(name, have)} free {name}{after}; "
        f"{format_quantity(name, need)} needed"
    )


def _base_free(problem: Problem, used: np.ndarray | None = None) -> np.ndarray:
    """(C, R) free capacity in base units, after ``used`` (solver units) is taken."""
    base = problem.capacity_base
    if used is None:
        return base
    return np.where(base == UNLIMITED, UNLIMITED, base - used * problem.resource_scale)


def explain_unplaced(
    problem: Problem, y: np.ndarray, status: str, *, deadline: Deadline
) -> dict[int, list[Reason]]:
    """Reasons for every workload that ``y`` leaves unplaced.

    Whether a workload with bounds, counts or spread "fits" is decided by a
    small exact solve; past ``deadline`` (fleets with thousands of
    unplaced workloads) it is decided by the pairs' total room instead, which
    can only call a "does not fit" case "fits" — the reason is then the later,
    more specific one of the sequence — never the other way round.
    """
    p = problem
    placed = placed_workloads(p, y)
    out: dict[int, list[Reason]] = {}
    cache: dict[object, np.ndarray] = {}
    for w in np.nonzero(~placed)[0].tolist():
        out[w] = _explain_one(p, w, y, placed, status, cache, deadline)
    return out


def _taken(p: Problem, y: np.ndarray, placed: np.ndarray, above: int | None,
           cache: dict[object, np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
    """(capacity used, quota left) by placed workloads of priority above ``above`` (all when ``None``).

    Computed once per priority value: on big fleets each is a pass over every pair.
    """
    if ("used", above) not in cache:
        who = placed if above is None else placed & (p.priority > above)
        cache[("used", above)] = usage(p, y, who)
        cache[("quota", above)] = _quota_left(p, y, who)
    return cache[("used", above)], cache[("quota", above)]


def _explain_one(p: Problem, w: int, y: np.ndarray, placed: np.ndarray, status: str,
                 cache: dict[object, np.ndarray], until: Deadline) -> list[Reason]:
    ctx = p.context
    reasons_at = p.reason_row(w)
    eligible = reasons_at == -1
    if not eligible.any():
        if p.num_clusters == 0:
            return [Reason(code="NoMatchingCluster", message="the fleet has no clusters")]
        reasons = []
        for code_index, plugin_name in enumerate(p.reason_codes):
            excluded = np.nonzero(reasons_at == code_index)[0]
            if len(excluded) and ctx is not None:
                plugin = plugin_by_name(plugin_name)
                reasons.append(
                    Reason(
                        code=plugin.reason,
                        message=plugin.explain(ctx, int(p.group[w]), excluded),
                        clusters=_names(p, excluded)[:_MAX_NAMES],
                    )
                )
        return reasons

    sl = p.pairs_of(w)
    pair_clusters = p.pair_c[sl]
    elig_idx = np.nonzero(eligible)[0]

    def fits(*, capacity: np.ndarray | None = None, quota: np.ndarray | None = None, drop_spread: bool = False) -> bool:
        return _fits(p, w, until, capacity=capacity, quota=quota, drop_spread=drop_spread)

    never = concerns.why_never(p, w)  # the replica shape: a division, bounds, copies no tier can hold
    if never is not None:
        return [never]

    # quota, alone
    t = int(p.tenant[w])
    copies = fewest_copies(p, w)
    if t >= 0:
        for r, name in enumerate(p.resource_names):
            limit = int(p.quota[t, r])
            need = int(p.request[w, r]) * int(p.replicas[w]) * copies
            if limit != UNLIMITED and need > limit:
                scale = int(p.resource_scale[r])
                return [Reason(code="QuotaExceeded", message=(
                    f"tenant {p.tenant_names[t]} has a {name} quota of "
                    f"{format_quantity(name, _quota_base(p, t, r))}; the workload alone needs "
                    f"{format_quantity(name, need * scale)}"))]

    full = p.capacity
    if not len(pair_clusters) or not _fits(p, w, until):
        alone = concerns.why_not_alone(p, w, fits) if len(pair_clusters) else None  # spread
        if alone is not None:
            return [alone]
        message = _shortfall(p, w, _base_free(p), eligible, "")
        bounds = []
        if p.min_per[w] > 1 or p.max_per[w] < p.replicas[w]:
            bounds.append(f"per cluster {int(p.min_per[w])}..{int(p.max_per[w])}")
        if p.count_min[w] > 1 or p.count_max[w] < p.num_clusters:
            bounds.append(f"clusters {int(p.count_min[w])}..{int(p.count_max[w])}")
        if bounds:
            message += f" (with {', '.join(bounds)})"
        return [Reason(code="InsufficientCapacity", message=message,
                       clusters=_names(p, elig_idx)[:_MAX_NAMES])]

    # the placed workloads it depends on (co-location partners)
    beside = concerns.why_not_beside(p, w, y, placed)
    if beside:
        return beside

    # residual capacity after higher priorities
    higher = placed & (p.priority > p.priority[w])
    used_hi, quota_hi = _taken(p, y, placed, int(p.priority[w]), cache)
    resid_hi = np.where(full == UNLIMITED, UNLIMITED, full - used_hi)
    if not _fits(p, w, until, capacity=resid_hi, quota=quota_hi):
        by_quota = _fits(p, w, until, capacity=resid_hi)
        return [_out_prioritized(p, w, y, higher, elig_idx, by_quota=by_quota)]

    used_all, quota_all = _taken(p, y, placed, None, cache)
    resid_all = np.where(full == UNLIMITED, UNLIMITED, full - used_all)
    if not _fits(p, w, until, quota=quota_all):
        r, limit, used_q, need = _tight_quota(p, w, quota_all)
        name = p.resource_names[r]
        scale = int(p.resource_scale[r])
        return [Reason(code="QuotaExceeded", message=(
            f"tenant {p.tenant_names[t]} {name} quota {format_quantity(name, _quota_base(p, t, r))}: "
            f"{format_quantity(name, used_q * scale)} in use by placed workloads; "
            f"{format_quantity(name, need * scale)} needed"))]
    if not _fits(p, w, until, capacity=resid_all):
        budget = _moves_budget_blocks(p, w, y, full, used_all, until)
        if budget is not None:
            return [budget]
        return [Reason(code="InsufficientCapacity",
                       message=_shortfall(p, w, _base_free(p, used_all), eligible,
                                          " after placing workloads of equal priority"),
                       clusters=_names(p, elig_idx)[:_MAX_NAMES])]

    # where its partners run is the room it would need (anti-affinity)
    in_the_way = concerns.why_in_the_way(p, w, y, placed, resid_all, fits)
    if in_the_way is not None:
        return [in_the_way]
    if p.max_moves is not None:
        return [Reason(code="MovesBudget", message=(
            f"placing it would need replicas moved beyond the budget of {p.max_moves} move(s)"))]
    if status != "Optimal":
        return [Reason(code="SolverTimeLimit", message=(
            "it would fit, but the solver ran out of time before placing it; "
            "raise --time-limit"))]
    return [Reason(code="InsufficientCapacity", message=(
        "it fits alone but not together with the workloads it must be placed with"))]


def _quota_base(p: Problem, t: int, r: int) -> int:
    """Tenant ``t``'s quota of resource ``r`` as written (solver units round it down to the gcd)."""
    name = p.resource_names[r]
    tenant = p.context.tenants.get(p.tenant_names[t]) if p.context is not None else None
    if tenant is not None and name in tenant.spec.quota:
        return int(tenant.spec.quota[name])
    return int(p.quota[t, r]) * int(p.resource_scale[r])


def _moves_budget_blocks(p: Problem, w: int, y: np.ndarray, full: np.ndarray, used_all: np.ndarray,
                         until: Deadline) -> Reason | None:
    """``MovesBudget`` when replicas kept where they run (the budget is spent) hold the room ``w`` needs."""
    if not p.max_moves or not len(p.current_w):
        return None  # maxMoves 0 is the service's frozen placement: capacity, not a budget, is what it lacks
    idx = p.pair_index(p.current_w, p.current_c)
    on = idx >= 0
    moved = int(moves_per_workload(p, y).sum())  # spec 3.3: a scale-down is not a move
    if moved < p.max_moves:
        return None
    kept = np.zeros_like(y)
    kept[idx[on]] = np.minimum(y[idx[on]], p.current_n[on])
    without_kept = used_all - usage(p, kept)
    if not _fits(p, w, until, capacity=np.where(full == UNLIMITED, UNLIMITED, full - without_kept)):
        return None  # even with running replicas moved away it would not fit: capacity, not the budget
    return Reason(code="MovesBudget", message=(
        f"it fits if running replicas move aside, but the plan already moves {moved} replica(s), "
        f"the whole budget of maxMoves {p.max_moves}"))


def _quota_left(p: Problem, y: np.ndarray, who: np.ndarray) -> np.ndarray:
    """(T, R) quota left after the replicas ``y`` of the workloads ``who``: from the pairs that carry
    replicas (a mask over every pair per tenant took seconds at 9M pairs and 160 tenants)."""
    on = np.nonzero(y)[0]
    on = on[who[p.pair_w[on]]]
    w = p.pair_w[on]
    t = p.tenant[w]
    mine = t >= 0
    used = np.zeros_like(p.quota)
    np.add.at(used, t[mine], y[on[mine], None] * p.request[w[mine]])
    return np.where(p.quota == UNLIMITED, UNLIMITED, np.maximum(p.quota - used, 0))


def _tight_quota(p: Problem, w: int, left: np.ndarray) -> tuple[int, int, int, int]:
    t = int(p.tenant[w])
    best = (0, 0, 0, 0)
    worst_ratio = np.inf
    for r in range(len(p.resource_names)):
        limit = int(p.quota[t, r])
        need = int(p.request[w, r]) * int(p.replicas[w]) * fewest_copies(p, w)
        if limit == UNLIMITED or need == 0:
            continue
        ratio = int(left[t, r]) / need
        if ratio < worst_ratio:
            worst_ratio = ratio
            best = (r, limit, limit - int(left[t, r]), need)
    return best


def _out_prioritized(
    p: Problem, w: int, y: np.ndarray, higher: np.ndarray, elig_idx: np.ndarray, *, by_quota: bool
) -> Reason:
    on = np.nonzero(y > 0)[0]  # few pairs carry replicas: filter those, not every pair
    on_w = p.pair_w[on]
    if by_quota:
        # the tenant's quota, not the clusters, is what higher priorities used up
        keep = higher[on_w] & (p.tenant[on_w] == p.tenant[w])
    else:
        keep = np.isin(p.pair_c[on], elig_idx) & higher[on_w]
    totals = np.bincount(on_w[keep], weights=y[on][keep], minlength=p.num_workloads)
    top = np.argsort(-totals)[: min(5, int((totals > 0).sum()))]
    names = [
        f"{p.workload_keys[v]} (priority {int(p.priority[v])}, {int(totals[v])} replica(s))"
        for v in top.tolist()
    ]
    more = int((totals > 0).sum()) - len(names)
    tail = f" and {more} more" if more > 0 else ""
    what = (
        f"the quota of tenant {p.tenant_names[int(p.tenant[w])]} is used"
        if by_quota
        else f"capacity on its {len(elig_idx)} eligible cluster(s) is taken"
    )
    return Reason(
        code="OutPrioritized",
        message=f"{what} by higher-priority workloads: {', '.join(names)}{tail}",
        clusters=_names(p, elig_idx)[:_MAX_NAMES],
    )
