"""Past one machine: cut a problem into parts, solve them apart, put one plan back together.

A national fleet (tens of thousands of workloads over thousands of clusters) is too big for one
construction in a command's time budget, but it is mostly regional. :func:`decompose` cuts it:

1. **Independent parts first.** Workloads and clusters form a graph (an eligible pair, an
   affinity or anti-affinity link, a tenant whose quota binds them all is an edge); each
   connected component can be solved alone, and components are packed into parts of similar
   size. Such parts share nothing: their plans merge into a valid plan, and the sum of their
   bounds at their placements is the whole's at its placement.
2. **Regions when the graph is one piece.** Each workload goes to the region holding most of its
   eligible clusters (with its co-location partners); regions are packed into parts. Parts then
   share some clusters and tenant quotas, and each part gets a share of every shared cluster's
   capacity and of every shared quota (:mod:`engine.shares`): what its workloads use there in the
   LP relaxation of the **whole** problem (:func:`engine.solvers.lp.solve_lp`, solved in the
   main process before the parts start, in at most :data:`LP_SHARE` of the solve's time, and
   only when that holds one round at the bound's ``LP_SECONDS_PER_PAIR``), plus a demand-weighted
   split of what the LP leaves unused (the demand split alone without an LP). The shares are
   floored, so they sum to no more than the whole and the merged plan fits. What the parts leave
   is placed afterwards on the whole problem (the seams: :func:`_seams` re-solves the unplaced
   workloads and those on shared clusters against the full residual, then the repairs).

Bounds: for independent parts the sum of the parts' bounds at their placements is the whole's at
its placement (``boundAtPlacement``). For parts that share, a sum would not hold and none is made.
The bound over every plan with the same replicas per priority and tier (``status.bound``) is
always the whole problem's, proved by :func:`engine.planner.place` (``prove_weighted``) after the
merge, as on one machine.

The parts are solved by whatever ``run`` the caller gives (``adapters.distributed`` runs them on
Dask, within the solve's deadline: moving the parts to the workers and back comes out of their
time); every part is solved by :func:`solve_part`, the same dispatch as one machine. The merged
plan is verified as a whole by :func:`engine.planner.place`, like any other.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

from engine.lazy import lazy_module
from engine.objective import better, evaluate, placed_workloads
from engine.problem import UNLIMITED, Problem, restrict
from engine.shares import shared_clusters, shares
from engine.solvers.bound import LP_SECONDS_PER_PAIR, prove_weighted, weighted_constant
from engine.solvers.construct import Residual
from engine.solvers.dispatch import solve_problem
from engine.solvers.lp import solve_lp
from engine.solvers.progress import ProgressCallback
from engine.solvers.repair import repair_unplaced
from engine.solvers.solution import Deadline, LevelResult, Solution
from policies import registry as concerns

if TYPE_CHECKING:
    from scipy.sparse import csgraph
else:
    csgraph = lazy_module("scipy.sparse.csgraph")

__all__ = ["Decomposition", "PartResult", "RunParts", "decompose", "partition", "solve_decomposed", "solve_part"]

REGION_LABEL = "topology.kubernetes.io/region"


@dataclass
class PartResult:
    """What a part's solve sends back: replicas per pair of the part, its status and its bound."""

    y: np.ndarray
    status: str
    bound: float  # a proved lower bound of the part's weighted cost at its placement (no constants); NaN: none
    seconds: float


#: ``run(parts, seconds, hints, prove)`` solves every part (:func:`solve_part`, ``prove`` passed on) and
#: returns their results within ``seconds`` from the call, whatever moving the parts costs: ``None`` for a
#: part that failed or came back late, and ``None`` instead of the list when moving the parts left them too
#: little of the time to be worth solving apart (the whole problem is then solved here)
RunParts = Callable[[Sequence[Problem], float, Sequence[np.ndarray | None], bool], list[PartResult | None] | None]


@dataclass
class Decomposition:
    """The parts of a problem: ``workloads[k]`` (indices into the whole), their pairs in the whole
    (``pairs[k]``, the order of the part's own pairs) and the sub-problems."""

    workloads: list[np.ndarray]
    pairs: list[np.ndarray]
    problems: list[Problem]
    independent: bool  # the parts share no cluster and no quota
    shared: np.ndarray  # (C,) bool: clusters where workloads of several parts are eligible
    lp_status: str = "none"  # the shares' LP: OPTIMAL / FEASIBLE (cut short), "given", or "none" (demand split)


def solve_part(problem: Problem, seconds: float, hint_y: np.ndarray | None = None, *,
               prove: bool = True) -> PartResult:
    """Solve one part as one machine would (``engine.solvers.dispatch``) within ``seconds``; with
    ``prove`` (independent parts, whose bounds add up) a quarter of them for its bound at its placement."""
    deadline = Deadline(seconds)
    solution = solve_problem(problem, deadline=deadline.slice(0.75) if prove else deadline, hint_y=hint_y)
    if not prove:
        return PartResult(solution.y.astype(np.int64), solution.status, float("nan"), solution.seconds)
    solution = prove_weighted(problem, solution, deadline=deadline)
    # at its placement: the bound at the part's own workloads, else the weighted level's (over more plans)
    level = next((lv.bound for lv in solution.levels if lv.name == "weighted"), float("nan"))
    bound = solution.bound_at_placement if solution.bound_at_placement is not None else level
    return PartResult(solution.y.astype(np.int64), solution.status, float(bound), solution.seconds)


def _pack(sizes: np.ndarray, parts: int) -> np.ndarray:
    """Bin of each item: biggest first into the lightest bin (balanced by ``sizes``)."""
    load = np.zeros(parts)
    out = np.zeros(len(sizes), dtype=np.int64)
    for i in np.argsort(-sizes, kind="stable").tolist():
        k = int(np.argmin(load))
        out[i] = k
        load[k] += sizes[i]
    return out


def _links(p: Problem) -> tuple[np.ndarray, np.ndarray]:
    """Workload pairs that must be solved together (co-location partners, through the registry)."""
    pairs = [(w, v) for w in np.nonzero(concerns.ties(p))[0].tolist() for v in concerns.partners(p, w)]
    arr = np.array(pairs, dtype=np.int64).reshape(-1, 2)
    return arr[:, 0], arr[:, 1]


def _binding_tenants(p: Problem) -> np.ndarray:
    """(T,) tenants with a quota that could bind (some limited resource)."""
    return (p.quota != UNLIMITED).any(axis=1) if len(p.quota) else np.zeros(0, dtype=bool)


def _components(p: Problem) -> np.ndarray:
    """(W,) component of each workload in the graph of pairs, links and binding quotas."""
    sp = lazy_module("scipy.sparse")
    n_w, n_c, n_t = p.num_workloads, p.num_clusters, len(p.tenant_names)
    a, b = _links(p)
    rows = [p.pair_w.astype(np.int64), a]
    cols = [n_w + p.pair_c.astype(np.int64), b]
    binding = _binding_tenants(p)
    with_quota = np.nonzero((p.tenant >= 0) & binding[np.maximum(p.tenant, 0)])[0] if n_t else np.zeros(0, np.int64)
    rows.append(with_quota)
    cols.append(n_w + n_c + p.tenant[with_quota].astype(np.int64))
    r, c = np.concatenate(rows), np.concatenate(cols)
    n = n_w + n_c + n_t
    graph = sp.coo_matrix((np.ones(len(r), dtype=np.int8), (r, c)), shape=(n, n))
    _, label = csgraph.connected_components(graph, directed=False)
    return np.asarray(label[:n_w])


def _regions(p: Problem) -> np.ndarray:
    """(W,) home region of each workload: where most of its eligible clusters are; partners follow."""
    names = p.context.label_table.codes(REGION_LABEL) if p.context is not None else np.zeros(p.num_clusters)
    region = np.asarray(names, dtype=np.int64)
    region = np.where(region < 0, region.max(initial=0) + 1, region)
    n_r = int(region.max(initial=0)) + 1
    counts = np.bincount(p.pair_w.astype(np.int64) * n_r + region[p.pair_c], minlength=p.num_workloads * n_r)
    home = counts.reshape(p.num_workloads, n_r).argmax(axis=1)
    group = _groups(p)
    if group is not None:  # co-location partners go where the first of their group goes
        first = np.full(group.max() + 1, p.num_workloads)
        np.minimum.at(first, group, np.arange(p.num_workloads))
        home = home[first[group]]
    return np.asarray(home)


def _groups(p: Problem) -> np.ndarray | None:
    """(W,) group of each workload in the graph of co-location and anti-affinity links (``None``: no
    link): a sub-problem keeps a link only when it holds both ends, so groups are solved whole."""
    sp = lazy_module("scipy.sparse")
    a, b = _links(p)
    if not len(a):
        return None
    graph = sp.coo_matrix((np.ones(len(a), dtype=np.int8), (a, b)), shape=(p.num_workloads,) * 2)
    _, group = csgraph.connected_components(graph, directed=False)
    return np.asarray(group)


def partition(problem: Problem, parts: int) -> tuple[np.ndarray, bool]:
    """(W,) part of each workload (``0 .. n - 1``, ``n <= parts``), and whether the parts are
    independent (connected components: no shared cluster, no shared quota)."""
    p = problem
    parts = max(1, min(parts, p.num_workloads))
    component = _components(p)
    n_comp = int(component.max(initial=-1)) + 1
    weight = np.bincount(p.pair_w, minlength=p.num_workloads).astype(float) + 1.0
    independent = n_comp >= parts
    if independent:
        part_of = _pack(np.bincount(component, weights=weight, minlength=n_comp), parts)[component]
    else:
        home = _regions(p)
        n_home = int(home.max(initial=0)) + 1
        part_of = _pack(np.bincount(home, weights=weight, minlength=n_home), min(parts, n_home))[home]
    used = np.unique(part_of)
    remap = np.full(parts, -1)
    remap[used] = np.arange(len(used))
    return remap[part_of], independent or len(used) == 1


def decompose(problem: Problem, parts: int, *, lp_y: np.ndarray | None = None,
              lp_deadline: Deadline | None = None) -> Decomposition:
    """Cut ``problem`` into at most ``parts`` parts (see the module docstring).

    Parts that share clusters or quotas get shares of them (:func:`engine.shares.shares`) from the
    LP relaxation of the whole: ``lp_y`` (its replicas per pair) when the caller has it, else
    :func:`engine.solvers.lp.solve_lp` solved by ``lp_deadline``; without either, or when no
    LP round finishes, the demand split alone.
    """
    p = problem
    part_of, independent = partition(p, parts)
    n_parts = int(part_of.max(initial=0)) + 1
    lp_status = "none"
    if independent:
        caps, quotas = [p.capacity] * n_parts, [p.quota] * n_parts
    else:
        # one LP round needs LP_SECONDS_PER_PAIR a pair (the bound's measure): with less it is not tried
        if lp_y is None and lp_deadline is not None \
                and lp_deadline.remaining() >= max(LP_SECONDS_PER_PAIR * p.num_pairs, 0.5):
            lp = solve_lp(p, time_limit=lp_deadline.remaining(), keep=4)
            lp_y, lp_status = (lp.y, lp.status) if lp.y.any() else (None, lp.status)
        elif lp_y is not None:
            lp_status = "given"
        split = shares(p, part_of, n_parts, lp_y)
        caps, quotas = split.capacity, split.quota
    workloads, pairs, problems = [], [], []
    for k in range(n_parts):
        keep = part_of == k
        workloads.append(np.nonzero(keep)[0])
        pairs.append(np.nonzero(keep[p.pair_w])[0])
        problems.append(restrict(p, keep, capacity=None if independent else caps[k],
                                 quota=None if independent else quotas[k], keep_current=True))
    return Decomposition(workloads, pairs, problems, independent=independent,
                         shared=np.zeros(p.num_clusters, dtype=bool) if independent
                         else shared_clusters(p, part_of, n_parts), lp_status=lp_status)


def _seams(p: Problem, split: Decomposition, y: np.ndarray, deadline: Deadline) -> np.ndarray:
    """Re-solve where parts meet: the workloads left unplaced and those placed on a cluster that
    several parts share, with every workload linked to them (co-location, anti-affinity), together,
    against what every other workload leaves of the whole fleet (capacity and quota no longer split).
    Kept only when better in the order of section 3; then the repairs place what still fits."""
    shared = split.shared
    on = y > 0
    seam = ~placed_workloads(p, y)
    seam[np.unique(p.pair_w[on & shared[p.pair_c]])] = True
    seam &= np.diff(p.pair_starts) > 0
    group = _groups(p)
    if group is not None:
        # with a whole group: left out, a partner's link would be dropped from the re-solve (a follower
        # re-placed where its leader does not run, or beside a workload it avoids)
        seam = np.bincount(group, weights=seam, minlength=group.max() + 1)[group] > 0
    if seam.any():
        others = np.where(seam[p.pair_w], 0, y)
        state = Residual.from_y(p, others)
        room = np.where(p.capacity == UNLIMITED, UNLIMITED, state.capacity)
        left = np.where(p.quota == UNLIMITED, UNLIMITED, state.quota)
        sub = restrict(p, seam, capacity=room, quota=left, keep_current=True)
        at = np.nonzero(seam[p.pair_w])[0]
        old = y[at]
        new = solve_problem(sub, deadline=deadline.slice(0.7), hint_y=old).y
        if better(sub, new, old):
            y = y.copy()
            y[at] = new
    state = Residual.from_y(p, y)
    repair_unplaced(p, state, deadline=deadline.slice(0.8))
    return state.y


def solve_decomposed(problem: Problem, *, run: RunParts, parts: int, deadline: Deadline,
                     hint_y: np.ndarray | None = None, freeze_current: bool = False,
                     on_progress: ProgressCallback | None = None) -> Solution:
    """Solve ``problem`` part by part through ``run`` and merge the parts into one solution by ``deadline``.

    A moves budget over what runs couples every workload (one budget for the fleet): such a
    problem is solved whole, as is a problem with one part. Parts that share clusters first get
    their shares from the LP of the whole (at most :data:`LP_SHARE` of the time), then 70% of what
    is left, and the seams (re-solved against the whole residual) the rest; independent parts get
    90% (a quarter of it for their bounds at their placement).
    """
    p = problem
    if parts <= 1 or (p.max_moves is not None and p.has_current) or p.num_workloads < 2:
        return solve_problem(p, deadline=deadline, hint_y=hint_y, freeze_current=freeze_current,
                             on_progress=on_progress)
    split = decompose(p, parts, lp_deadline=deadline.slice(LP_SHARE))
    if len(split.problems) == 1:
        return solve_problem(p, deadline=deadline, hint_y=hint_y, freeze_current=freeze_current,
                             on_progress=on_progress)
    seconds = deadline.remaining() * (0.9 if split.independent else 0.7)
    hints = [hint_y[at] if hint_y is not None else None for at in split.pairs]
    results = run(split.problems, seconds, hints, split.independent)
    if results is None:
        # moving the parts took most of their time: a construction given next to nothing places next
        # to nothing (a national run on a loaded machine placed no replica), so the whole problem is
        # solved here with what is left, as without parts
        solution = solve_problem(p, deadline=deadline, hint_y=hint_y, freeze_current=freeze_current,
                                 on_progress=on_progress)
        solution.notes.append(f"moving the {len(split.problems)} parts to the Dask workers failed or took most "
                              "of their time: the whole problem was solved on this machine")
        return solution
    y = np.zeros(p.num_pairs, dtype=np.int64)
    lost = [k for k, result in enumerate(results) if result is None]
    for at, result in zip(split.pairs, results, strict=True):
        if result is not None:
            y[at] = result.y
    seamed = (bool(lost) or not split.independent) and not deadline.expired()
    if seamed:
        # a lost part's workloads are unplaced: the seams re-solve them on the whole residual
        y = _seams(p, split, y, deadline)
    pair_prio = p.priority[p.pair_w]
    levels = [LevelResult(f"priority:{v}", float(y[pair_prio == v].sum()), float("nan"), False, 0.0)
              for v in sorted(set(p.priority.tolist()), reverse=True)]
    bounds = [r.bound if r is not None else float("nan") for r in results]
    at_placement = None
    if split.independent and all(np.isfinite(b) for b in bounds) and not lost:
        # the parts share nothing and the weighted cost adds up over workloads: at this placement (the
        # same replicas per workload) the sum of the parts' bounds holds for the whole. Over every plan
        # with the same replicas per priority it need not (another plan may place them in other parts):
        # that bound is the planner's, over the whole problem
        weighted = float(evaluate(p, y).weighted) - weighted_constant(p)
        at_placement = min(float(sum(bounds)), weighted)
    notes = [f"{len(lost)} of the {len(results)} parts failed or came back late: their workloads were "
             + ("re-solved on this machine" if seamed else "left unplaced (no time was left)")] if lost else []
    return Solution(y, "Feasible", deadline.elapsed(), levels, bound_at_placement=at_placement, notes=notes)


#: the part of the solve's time the LP of the shares may take (the workers wait for it)
LP_SHARE = 0.15
