"""The normalised problem: one set of numpy arrays per stage, built once (types only).

:func:`engine.build.build_problem` turns a validated :class:`~engine.documents.bundle.Bundle`
into a :class:`Problem`; from there on nothing touches pydantic objects. Shapes:

* ``W`` workloads, ``C`` clusters, ``R`` resources, ``G`` policy groups
  (workloads sharing namespace + the policy that applies to them), ``T`` tenants with quota.
* ``P`` eligible (workload, cluster) pairs, sorted by workload then cluster;
  every per-pair array is indexed by ``p`` and only eligible pairs get solver
  variables.

Resources are integers in *solver units*: base units (millicores, bytes,
devices) divided by the gcd of every request of that resource, which keeps
coefficients small and capacity checks exact (``floor(cap / g)``).
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from functools import cached_property

import numpy as np
import numpy.typing as npt

from engine.documents.kinds import Cluster, ObjectiveWeights, Site, Tenant
from engine.documents.policy import PlacementPolicySpec
from engine.documents.selectors import LabelTable

__all__ = [
    "BIG", "UNLIMITED", "BoolArray", "CompileContext", "FloatArray", "IntArray", "Problem", "SpreadRule",
    "broadcast_groups", "broadcast_tiers", "eligible_clusters", "keep_pairs", "restrict", "side_by_side", "usage",
]

#: The array types of the solvers: counts and indices, weights and LP values, masks.
IntArray = npt.NDArray[np.int64]
FloatArray = npt.NDArray[np.float64]
BoolArray = npt.NDArray[np.bool_]

#: Capacity or quota value meaning "no limit" (e.g. ``pods`` when a cluster does not list it).
UNLIMITED = -1
#: What an unlimited capacity or quota becomes where arithmetic needs a number (residual room,
#: CP-SAT domains): far above any fleet sum (``engine.limits.MAX_FLEET_SUM`` is 2^61), far from overflow.
BIG = 2**62


@dataclass
class CompileContext:
    """What filters see: the fleet and one effective policy per group.

    Attributes:
        clusters: the fleet, index ``c``.
        cluster_labels: effective labels (including topology labels) per cluster.
        groups: effective policy spec per group ``g`` (default policy when none).
        group_namespace: namespace (tenant) of each group.
        tenants: Tenant document per namespace that has one.
        sites: Site documents by name.
    """

    clusters: list[Cluster]
    cluster_labels: list[dict[str, str]]
    groups: list[PlacementPolicySpec]
    group_namespace: list[str]
    tenants: dict[str, Tenant]
    sites: dict[str, Site]
    cluster_index: dict[str, int] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.cluster_index = {c.metadata.name: i for i, c in enumerate(self.clusters)}

    @cached_property
    def cluster_names(self) -> list[str]:
        return [c.metadata.name for c in self.clusters]

    @cached_property
    def label_table(self) -> LabelTable:
        """The clusters' labels and names as columns: every filter's selectors read it (vectorised)."""
        return LabelTable(self.cluster_labels, self.cluster_names)

    @property
    def num_clusters(self) -> int:
        return len(self.clusters)

    @property
    def num_groups(self) -> int:
        return len(self.groups)


@dataclass
class SpreadRule:
    """One spread constraint of a group: ``group_of[c]`` is the value index or -1."""

    key: str
    group_of: np.ndarray
    group_names: list[str]
    min_groups: int
    max_groups: int | None
    max_skew: int | None


@dataclass
class Problem:
    """Everything the model needs, as arrays. See the module docstring for shapes."""

    # workloads (W)
    workload_keys: list[str]
    replicas: np.ndarray
    priority: np.ndarray
    duplicated: np.ndarray
    aggregated: np.ndarray
    broadcast: np.ndarray
    min_per: np.ndarray
    max_per: np.ndarray
    count_min: np.ndarray
    count_max: np.ndarray
    group: np.ndarray
    tenant: np.ndarray
    request: np.ndarray  # (W, R) solver units
    request_base: np.ndarray  # (W, R) base units
    # clusters (C)
    cluster_names: list[str]
    capacity: np.ndarray  # (C, R) solver units, UNLIMITED = no limit
    capacity_base: np.ndarray  # (C, R) base units, UNLIMITED = no limit
    # resources (R)
    resource_names: list[str]
    resource_scale: np.ndarray
    # tenants (T)
    tenant_names: list[str]
    quota: np.ndarray  # (T, R) solver units, UNLIMITED = no limit
    # policy groups (G)
    group_specs: list[PlacementPolicySpec]
    group_spread: list[list[SpreadRule]]
    # eligibility
    eligible_count: np.ndarray  # (W,) clusters passing every policy filter
    #: (G, C) int8 index into reason_codes of the first filter each cluster fails for the group, -1 = eligible;
    #: per group, not per workload (a (W, C) table was 250 MB at 50,000 x 5,000, and went to every Dask part)
    group_reason: np.ndarray
    reason_codes: list[str]
    # pairs (P)
    pair_w: np.ndarray
    pair_c: np.ndarray
    pair_ub: np.ndarray
    pair_tier: np.ndarray
    pair_cost: np.ndarray  # per replica, per hour
    pair_latency: np.ndarray  # ms per replica (0 for workloads without latency)
    pair_preference: np.ndarray  # sum of weight/100 of matching preferred terms
    pair_prefer_no_schedule: np.ndarray  # bool: untolerated PreferNoSchedule taint
    # co-location (arrays of workload indices)
    affinity_from: np.ndarray
    affinity_to: np.ndarray
    anti_a: np.ndarray
    anti_b: np.ndarray
    # current placement
    current_w: np.ndarray
    current_c: np.ndarray
    current_n: np.ndarray
    fixed_moves: int
    max_moves: int | None
    weights: ObjectiveWeights
    #: (W,) replicas each workload runs today in total, on clusters that left the fleet too (empty: none)
    current_total: np.ndarray = field(default_factory=lambda: np.zeros(0, dtype=np.int64))
    #: (W,) replicas each workload runs today on clusters that left the fleet (empty: none)
    current_gone: np.ndarray = field(default_factory=lambda: np.zeros(0, dtype=np.int64))
    #: workloads that the bundle knew but whose current replicas sit on unknown clusters etc.
    notes: list[str] = field(default_factory=list)
    #: the filters' view of the bundle, kept for explanations (not used by the model)
    context: CompileContext | None = None
    #: (group, cluster) -> tolerationSeconds of a NoExecute taint tolerated only for that long
    toleration_seconds: dict[tuple[int, int], int] = field(default_factory=dict)
    #: (W,) a weightPreference fixes the workload's division: its pairs' upper bounds are the counts
    fixed_division: np.ndarray = field(default_factory=lambda: np.zeros(0, dtype=bool))
    #: workload -> (C,) replicas its weightPreference gives each cluster (for explanations)
    division_target: dict[int, np.ndarray] = field(default_factory=dict)
    #: (G, C) int16 tier index of each cluster under ``clusterAffinities`` (first tier it passes; empty: none)
    group_tier: np.ndarray = field(default_factory=lambda: np.zeros((0, 0), dtype=np.int16))

    @property
    def has_current(self) -> bool:
        """Whether some workload of the problem runs today (on the fleet or on a cluster that left it)."""
        return bool(len(self.current_total) and self.current_total.any())

    @property
    def num_workloads(self) -> int:
        return len(self.workload_keys)

    @property
    def num_clusters(self) -> int:
        return len(self.cluster_names)

    @property
    def num_pairs(self) -> int:
        return len(self.pair_w)

    def reason_row(self, w: int) -> np.ndarray:
        """(C,) the first filter each cluster fails for workload ``w`` (index into ``reason_codes``), -1 = eligible."""
        return np.asarray(self.group_reason[int(self.group[w])])

    @cached_property
    def pair_starts(self) -> np.ndarray:
        """(W + 1,) pairs of workload ``w`` are ``pair_starts[w]:pair_starts[w + 1]``."""
        return np.searchsorted(self.pair_w, np.arange(self.num_workloads + 1, dtype=self.pair_w.dtype))

    @cached_property
    def pair_cells(self) -> np.ndarray:
        """(P,) ``group * C + cluster`` of every pair: where a pair reads a (G, C) table (:meth:`at_pairs`)."""
        return np.asarray(self.group[self.pair_w].astype(np.int64) * self.num_clusters + self.pair_c)

    def at_pairs(self, table: np.ndarray) -> np.ndarray:
        """A (G, C) per-group table read at every pair: ``table[group[pair_w], pair_c]``, one flat gather."""
        return np.asarray(np.ascontiguousarray(table).ravel()[self.pair_cells])

    @cached_property
    def pair_keys(self) -> np.ndarray:
        """(P,) sorted ``w * C + c`` of every pair, for lookups by (workload, cluster)."""
        keys: IntArray = self.pair_w.astype(np.int64) * self.num_clusters + self.pair_c
        return keys

    @cached_property
    def cluster_pair_order(self) -> tuple[np.ndarray, np.ndarray]:
        """Pairs grouped by cluster: those on cluster ``c`` are ``order[starts[c]:starts[c + 1]]``."""
        order = np.argsort(self.pair_c, kind="stable")
        return order, np.searchsorted(self.pair_c[order], np.arange(self.num_clusters + 1))

    def pairs_on(self, c: int) -> np.ndarray:
        """Indices of the pairs on cluster ``c`` (a lookup, not a scan of every pair)."""
        order, starts = self.cluster_pair_order
        return order[int(starts[c]):int(starts[c + 1])]

    def pairs_of(self, w: int) -> slice:
        """The slice of pairs that belong to workload ``w`` (pairs are sorted)."""
        starts = self.pair_starts
        return slice(int(starts[w]), int(starts[w + 1]))

    def pair_index(self, w: np.ndarray, c: np.ndarray) -> np.ndarray:
        """Pair index of each (w, c), or -1 where the pair is not eligible."""
        keys = self.pair_keys
        want = np.asarray(w, dtype=np.int64) * self.num_clusters + np.asarray(c, dtype=np.int64)
        pos = np.searchsorted(keys, want)
        pos_ok = np.minimum(pos, max(len(keys) - 1, 0))
        found = (pos < len(keys)) & (keys[pos_ok] == want) if len(keys) else np.zeros_like(want, bool)
        return np.where(found, pos_ok, -1)


def capped_ub(problem: Problem, pairs: np.ndarray, capacity: np.ndarray) -> np.ndarray:
    """The most replicas each of ``pairs`` can hold under ``capacity`` (C, R) (and its own bound):
    a Duplicated workload's copy needs room for all its replicas, else none."""
    p = problem
    w, pc = p.pair_w[pairs], p.pair_c[pairs]
    ub = p.pair_ub[pairs].copy()
    req = p.request[w]
    for r in range(len(p.resource_names)):
        limited = (req[:, r] > 0) & (capacity[pc, r] != UNLIMITED)
        room = np.maximum(capacity[pc, r], 0)
        ub[limited] = np.minimum(ub[limited], room[limited] // req[limited, r])
    dup, replicas = p.duplicated[w], p.replicas[w]
    ub = np.where(dup & (ub < replicas), 0, ub)
    return np.where(dup, np.where(ub > 0, replicas, 0), ub)


def restrict(
    problem: Problem,
    keep: np.ndarray,
    *,
    capacity: np.ndarray | None = None,
    quota: np.ndarray | None = None,
    drop_spread: bool = False,
    keep_current: bool = False,
) -> Problem:
    """A sub-problem over the workloads where ``keep`` is true.

    With ``keep_current`` the kept workloads' current placement and the moves budget stay
    (solving the rest of a fleet around workloads that do not change, :mod:`engine.keep`).

    Used for explanations ("would it fit alone?") and for incremental
    placement against residual capacity. Co-location links to workloads left
    out are dropped; the current placement and the moves budget are dropped.

    Args:
        problem: the full problem.
        keep: (W,) bool, the workloads to keep.
        capacity: (C, R) solver-unit capacity to use instead (e.g. residual).
        quota: (T, R) solver-unit quota to use instead.
        drop_spread: leave spread rules out (to test whether spread is what binds).
    """
    p = problem
    keep_idx = np.nonzero(keep)[0]
    new_of_old = np.full(p.num_workloads, -1, dtype=np.int64)
    new_of_old[keep_idx] = np.arange(len(keep_idx))
    cap = p.capacity if capacity is None else capacity
    if len(keep_idx) <= 64:
        # a few workloads (explanations, repairs): slice their pairs instead of masking all of them
        lo = p.pair_starts[keep_idx]
        hi = p.pair_starts[keep_idx + 1]
        pair_keep = np.concatenate([np.arange(a, b) for a, b in zip(lo.tolist(), hi.tolist(), strict=True)]
                                   or [np.zeros(0, dtype=np.int64)])
    else:
        pair_keep = np.nonzero(keep[p.pair_w])[0]
    pw = new_of_old[p.pair_w[pair_keep]].astype(np.int32)
    pc = p.pair_c[pair_keep]
    ub = p.pair_ub[pair_keep].copy() if capacity is None else capped_ub(p, pair_keep, cap)

    def sel_links(a: np.ndarray, b: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        ok = (new_of_old[a] >= 0) & (new_of_old[b] >= 0) if len(a) else np.zeros(0, bool)
        return (new_of_old[a[ok]].astype(np.int32), new_of_old[b[ok]].astype(np.int32))

    aff_from, aff_to = sel_links(p.affinity_from, p.affinity_to)
    cur_w, cur_c, cur_n = np.zeros(0, np.int32), np.zeros(0, np.int32), np.zeros(0, np.int64)
    cur_total, cur_gone, fixed = np.zeros(0, np.int64), np.zeros(0, np.int64), 0
    if keep_current and len(p.current_total):
        sel = keep[p.current_w]
        cur_w = new_of_old[p.current_w[sel]].astype(np.int32)
        cur_c, cur_n = p.current_c[sel], p.current_n[sel]
        cur_total, cur_gone = p.current_total[keep_idx], p.current_gone[keep_idx]
        fixed = int(cur_gone.sum())
    anti_a, anti_b = sel_links(p.anti_a, p.anti_b)
    group_spread = [[] for _ in p.group_specs] if drop_spread else p.group_spread
    return Problem(
        workload_keys=[p.workload_keys[i] for i in keep_idx],
        replicas=p.replicas[keep_idx],
        priority=p.priority[keep_idx],
        duplicated=p.duplicated[keep_idx],
        aggregated=p.aggregated[keep_idx],
        broadcast=p.broadcast[keep_idx],
        min_per=p.min_per[keep_idx],
        max_per=p.max_per[keep_idx],
        count_min=p.count_min[keep_idx],
        count_max=p.count_max[keep_idx],
        group=p.group[keep_idx],
        tenant=p.tenant[keep_idx],
        request=p.request[keep_idx],
        request_base=p.request_base[keep_idx],
        cluster_names=p.cluster_names,
        capacity=cap,
        capacity_base=p.capacity_base,
        resource_names=p.resource_names,
        resource_scale=p.resource_scale,
        tenant_names=p.tenant_names,
        quota=p.quota if quota is None else quota,
        group_specs=p.group_specs,
        group_spread=group_spread,
        eligible_count=p.eligible_count[keep_idx],
        group_reason=p.group_reason,
        reason_codes=p.reason_codes,
        pair_w=pw,
        pair_c=pc,
        pair_ub=ub,
        pair_tier=p.pair_tier[pair_keep],
        pair_cost=p.pair_cost[pair_keep],
        pair_latency=p.pair_latency[pair_keep],
        pair_preference=p.pair_preference[pair_keep],
        pair_prefer_no_schedule=p.pair_prefer_no_schedule[pair_keep],
        affinity_from=aff_from,
        affinity_to=aff_to,
        anti_a=anti_a,
        anti_b=anti_b,
        current_w=cur_w,
        current_c=cur_c,
        current_n=cur_n,
        fixed_moves=fixed,
        max_moves=p.max_moves if keep_current else None,
        weights=p.weights,
        context=p.context,
        current_total=cur_total,
        current_gone=cur_gone,
        fixed_division=p.fixed_division[keep_idx] if len(p.fixed_division) else np.zeros(len(keep_idx), bool),
        group_tier=p.group_tier,
    )


def eligible_clusters(p: Problem, w: int) -> np.ndarray:
    """Clusters eligible for ``w`` (every filter passed, or kept under NoSchedule), pairs or not."""
    sl = p.pairs_of(w)
    return np.union1d(np.nonzero(p.reason_row(w) == -1)[0], p.pair_c[sl])


def broadcast_groups(p: Problem, w: int) -> list[SpreadRule]:
    """Spread rules with ``maxGroups`` of a broadcast workload: a copy goes on every eligible
    cluster of the groups chosen (spec 2.6, as Karmada), not on every eligible cluster."""
    return [r for r in p.group_spread[int(p.group[w])] if r.max_groups is not None]


def broadcast_tiers(p: Problem, w: int) -> np.ndarray | None:
    """(C,) tier index of each cluster for a broadcast workload with several ``clusterAffinities``
    tiers, else ``None``: its copies go on the eligible clusters of one tier (spec 2.6, as Karmada)."""
    g = int(p.group[w])
    if not p.broadcast[w] or not len(p.group_tier) or len(p.group_specs[g].cluster_affinities or []) < 2:
        return None
    tiers: IntArray = p.group_tier[g]
    return tiers


def usage(problem: Problem, y: np.ndarray, workloads: np.ndarray | None = None) -> np.ndarray:
    """(C, R) solver units used by ``y`` (optionally only by the given workloads mask)."""
    p = problem
    on = np.nonzero(y)[0]  # only pairs that carry replicas matter
    if workloads is not None:
        on = on[workloads[p.pair_w[on]]]
    used = np.zeros((p.num_clusters, len(p.resource_names)), dtype=np.int64)
    for r in range(len(p.resource_names)):
        np.add.at(used[:, r], p.pair_c[on], y[on] * p.request[p.pair_w[on], r])
    return used


def keep_pairs(problem: Problem, mask: np.ndarray) -> Problem:
    """The same problem over the pairs where ``mask`` is true (a candidate list for small solves)."""
    p = problem
    return replace(
        p,
        pair_w=p.pair_w[mask],
        pair_c=p.pair_c[mask],
        pair_ub=p.pair_ub[mask],
        pair_tier=p.pair_tier[mask],
        pair_cost=p.pair_cost[mask],
        pair_latency=p.pair_latency[mask],
        pair_preference=p.pair_preference[mask],
        pair_prefer_no_schedule=p.pair_prefer_no_schedule[mask],
    )


def side_by_side(groups: list[Problem]) -> dict[str, object]:
    """The group fields of one-group problems side by side (group ``i`` is the ``i``-th's), no links between
    them: what the service's fast path (:mod:`engine.fast`) puts beside a request's own workload arrays."""
    none = np.zeros(0, dtype=np.int32)
    tiers = [g.group_tier[0] if len(g.group_tier) else np.zeros(g.num_clusters, dtype=np.int16) for g in groups]
    return {"group_specs": [g.group_specs[0] for g in groups], "group_spread": [g.group_spread[0] for g in groups],
            "group_tier": np.stack(tiers), "eligible_count": np.concatenate([g.eligible_count[:1] for g in groups]),
            "group_reason": np.concatenate([g.group_reason[:1] for g in groups]),
            "reason_codes": groups[0].reason_codes,
            "affinity_from": none, "affinity_to": none, "anti_a": none, "anti_b": none}
