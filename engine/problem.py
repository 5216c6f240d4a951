"""The normalised problem: one set of numpy arrays per stage, built once.

:func:`build_problem` turns a validated :class:`~engine.bundle.Bundle` into a
:class:`Problem`; from there on nothing touches pydantic objects. Shapes:

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

from dataclasses import dataclass, field
from functools import cached_property

import numpy as np

from engine.bundle import Bundle
from engine.errors import InputError
from engine.limits import MAX_FLEET_SUM
from engine.quantity import natural_per_base
from engine.resources import ObjectiveWeights, PlacementPolicySpec, ReplicaScheduling, Tenant, Workload
from policies.base import CompileContext

__all__ = [
    "UNLIMITED", "Problem", "SpreadRule", "broadcast_groups", "broadcast_tiers", "build_problem", "eligible_clusters",
]

#: Capacity or quota value meaning "no limit" (e.g. ``pods`` when a cluster does not list it).
UNLIMITED = -1


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
    first_reason: np.ndarray  # (W, C) int8 index into reason_codes, -1 = eligible
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
    #: (G, C) tier index of each cluster under ``clusterAffinities`` (first tier it passes; empty: none)
    group_tier: np.ndarray = field(default_factory=lambda: np.zeros((0, 0), dtype=np.int64))

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

    @cached_property
    def pair_starts(self) -> np.ndarray:
        """(W + 1,) pairs of workload ``w`` are ``pair_starts[w]:pair_starts[w + 1]``."""
        return np.searchsorted(self.pair_w, np.arange(self.num_workloads + 1, dtype=self.pair_w.dtype))

    @cached_property
    def pair_keys(self) -> np.ndarray:
        """(P,) sorted ``w * C + c`` of every pair, for lookups by (workload, cluster)."""
        return self.pair_w.astype(np.int64) * self.num_clusters + self.pair_c

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

    def natural_request(self) -> np.ndarray:
        """(W, R) requests in natural units (cores, GiB, devices), for pricing."""
        per = np.array([natural_per_base(r) for r in self.resource_names], dtype=float)
        return self.request_base.astype(float) * per


# --- building -------------------------------------------------------------------


def _default_spec() -> PlacementPolicySpec:
    return PlacementPolicySpec()


def _resources(bundle: Bundle) -> list[str]:
    names: set[str] = set()
    for w in bundle.workloads:
        names.update(k for k, v in w.spec.resources.items() if v > 0)
    if any("pods" in c.spec.capacity for c in bundle.clusters):
        names.add("pods")
    if any("pods" in t.spec.quota for t in bundle.tenants):
        names.add("pods")
    names.discard("pods")
    ordered = sorted(names)
    if any("pods" in c.spec.capacity for c in bundle.clusters) or any(
        "pods" in t.spec.quota for t in bundle.tenants
    ):
        ordered.append("pods")
    return ordered


def build_problem(
    bundle: Bundle,
    *,
    current: dict[str, dict[str, int]] | None = None,
    weights: ObjectiveWeights | None = None,
    max_moves: int | None = None,
) -> Problem:
    """Normalise ``bundle`` (and the current placement) into arrays.

    Args:
        bundle: a validated bundle.
        current: what runs now, ``{ns/name: {cluster: replicas}}``.
        weights: objective weights overriding the bundle's Objective document.
        max_moves: moves budget overriding ``Objective.spec.maxMoves``.
    """
    from policies.registry import PLUGINS  # the engine sees policies only via the registry

    objective = bundle.objective.spec if bundle.objective else None
    weights = weights or (objective.weights if objective else ObjectiveWeights())
    if max_moves is None and objective is not None:
        max_moves = objective.max_moves

    clusters = bundle.clusters
    workloads = bundle.workloads
    n_w, n_c = len(workloads), len(clusters)
    cluster_names = [c.metadata.name for c in clusters]
    resources = _resources(bundle)
    n_r = len(resources)
    r_index = {r: i for i, r in enumerate(resources)}

    # requests (base units); pods counts replicas
    request_base = np.zeros((n_w, n_r), dtype=np.int64)
    for w, wl in enumerate(workloads):
        for name, amount in wl.spec.resources.items():
            if name in r_index and name != "pods":
                request_base[w, r_index[name]] = amount
    if "pods" in r_index:
        request_base[:, r_index["pods"]] = 1

    capacity_base = np.zeros((n_c, n_r), dtype=np.int64)
    for c, cl in enumerate(clusters):
        for r, name in enumerate(resources):
            if name == "pods" and "pods" not in cl.spec.capacity:
                capacity_base[c, r] = UNLIMITED
            else:
                capacity_base[c, r] = cl.spec.capacity.get(name, 0)

    tenants_by_ns: dict[str, Tenant] = {t.metadata.name: t for t in bundle.tenants}
    quota_tenants = [t for t in bundle.tenants if any(k in r_index for k in t.spec.quota)]
    tenant_names = [t.metadata.name for t in quota_tenants]
    quota_base = np.full((len(quota_tenants), n_r), UNLIMITED, dtype=np.int64)
    for t, ten in enumerate(quota_tenants):
        for name, amount in ten.spec.quota.items():
            if name in r_index:
                quota_base[t, r_index[name]] = amount

    # solver units: divide by the gcd of all requests of a resource (exact)
    scale = np.ones(n_r, dtype=np.int64)
    for r in range(n_r):
        values = request_base[:, r][request_base[:, r] > 0]
        if len(values):
            scale[r] = int(np.gcd.reduce(values))
    request = request_base // scale
    capacity = np.where(capacity_base == UNLIMITED, UNLIMITED, capacity_base // scale)
    quota = np.where(quota_base == UNLIMITED, UNLIMITED, quota_base // scale)

    # policy groups: namespace + the policy that applies (spec.policy, else resourceSelectors)
    group_key: dict[tuple[str, str, str], int] = {}
    group_specs: list[PlacementPolicySpec] = []
    group_ns: list[str] = []
    group = np.zeros(n_w, dtype=np.int32)
    selector = bundle.policy_selector()
    for w, wl in enumerate(workloads):
        ns = wl.metadata.namespace or "default"
        policy = selector.policy_for(wl)
        key = (ns, policy.kind, policy.metadata.name) if policy else (ns, "", "")
        if key not in group_key:
            group_key[key] = len(group_specs)
            group_specs.append(policy.spec if policy else _default_spec())
            group_ns.append(ns)
        group[w] = group_key[key]

    ctx = CompileContext(
        clusters=clusters,
        cluster_labels=[c.effective_labels() for c in clusters],
        groups=group_specs,
        group_namespace=group_ns,
        tenants=tenants_by_ns,
        sites={s.metadata.name: s for s in bundle.sites},
    )

    # eligibility: every filter, first failing filter remembered for explanations
    reason_codes: list[str] = []
    allowed = np.ones((len(group_specs), n_c), dtype=bool)
    # where replicas that run today may stay (spec 2.2: an untolerated NoSchedule taint keeps them)
    allowed_running = np.ones((len(group_specs), n_c), dtype=bool)
    first_reason_g = np.full((len(group_specs), n_c), -1, dtype=np.int8)
    for plugin in PLUGINS:
        mask = plugin.filter(ctx)
        if mask is None:
            continue
        code_index = len(reason_codes)
        reason_codes.append(plugin.name)
        newly = allowed & ~mask
        first_reason_g[newly] = code_index
        allowed &= mask
        running = plugin.filter_running(ctx)
        allowed_running &= mask if running is None else running
    first_reason = first_reason_g[group] if n_w else np.zeros((0, n_c), np.int8)
    eligible = allowed[group] if n_w else np.zeros((0, n_c), bool)
    eligible_count = eligible.sum(axis=1).astype(np.int64)

    # per-workload scheduling arrays
    replicas = np.array([wl.spec.replicas for wl in workloads], dtype=np.int64)
    priority = np.array([wl.spec.priority for wl in workloads], dtype=np.int64)
    rs = [group_specs[g].replica_scheduling for g in group]
    counts = [group_specs[g].clusters for g in group]
    duplicated = np.array([s.replica_scheduling_type == "Duplicated" for s in rs], dtype=bool)
    aggregated = np.array(
        [s.replica_division_preference == "Aggregated" and not d for s, d in zip(rs, duplicated, strict=True)],
        dtype=bool,
    )
    min_per = np.array([s.min_per_cluster for s in rs], dtype=np.int64)
    max_per = np.array(
        [s.max_per_cluster if s.max_per_cluster is not None else 2**31 for s in rs], dtype=np.int64
    )
    max_per = np.minimum(max_per, replicas)
    count_min = np.array([c.min if c else 1 for c in counts], dtype=np.int64)
    count_max = np.array([c.max if c and c.max is not None else n_c for c in counts], dtype=np.int64)
    broadcast = duplicated & np.array([c is None for c in counts], dtype=bool)
    tenant_pos = {name: i for i, name in enumerate(tenant_names)}
    tenant = np.array(
        [tenant_pos.get(wl.metadata.namespace or "default", -1) for wl in workloads], dtype=np.int32
    )

    # capacity presolve: a pair is kept only if the smallest allowed count fits the cluster
    smallest = np.where(duplicated, replicas, min_per)
    need = request * smallest[:, None]  # (W, R)
    fits = np.ones((n_w, n_c), dtype=bool)
    for r in range(n_r):
        cap_r = capacity[:, r]
        limited = cap_r != UNLIMITED
        fits[:, limited] &= need[:, r][:, None] <= cap_r[limited][None, :]
    possible = eligible & fits & (smallest <= max_per)[:, None]
    # replicas running where only a NoSchedule taint now forbids new ones: the pair stays, up to
    # its current count (for Duplicated, only where a whole copy runs today)
    kept_w, kept_c, kept_n = _kept_running(workloads, cluster_names, current or {})
    if len(kept_w):
        ok = ~eligible[kept_w, kept_c] & allowed_running[group[kept_w], kept_c] & fits[kept_w, kept_c]
        ok &= (kept_n >= smallest[kept_w]) & (smallest <= max_per)[kept_w]
        kept_w, kept_c, kept_n = kept_w[ok], kept_c[ok], kept_n[ok]
        possible[kept_w, kept_c] = True
        eligible_count += np.bincount(kept_w, minlength=n_w).astype(np.int64)
    # weightPreference: the division over the eligible clusters is fixed; only its clusters keep pairs
    division = _divisions(rs, eligible, replicas, cluster_names, ctx.cluster_labels, request_base, capacity_base)
    for w, target in division.items():
        possible[w] &= target > 0
    if len(kept_w) and division:
        on = possible[kept_w, kept_c]  # a kept pair outside a division is gone
        kept_w, kept_c, kept_n = kept_w[on], kept_c[on], kept_n[on]
    pair_w, pair_c = np.nonzero(possible)
    pair_w = pair_w.astype(np.int32)
    pair_c = pair_c.astype(np.int32)

    # upper bound of replicas per pair: bounds, and capacity per resource
    ub = max_per[pair_w].copy()
    for r in range(n_r):
        req = request[pair_w, r]
        cap = capacity[pair_c, r]
        limited = (req > 0) & (cap != UNLIMITED)
        ub[limited] = np.minimum(ub[limited], cap[limited] // req[limited])
    pair_ub = np.where(duplicated[pair_w], replicas[pair_w], ub)
    if len(kept_w):
        # y[w, c] <= current[w, c] on a kept pair (Duplicated: current >= replicas, checked above)
        at = np.searchsorted(pair_w.astype(np.int64) * n_c + pair_c, kept_w.astype(np.int64) * n_c + kept_c)
        pair_ub[at] = np.minimum(pair_ub[at], kept_n)
    fixed_division = np.zeros(n_w, dtype=bool)
    for w, target in division.items():
        fixed_division[w] = True
        at = slice(*np.searchsorted(pair_w, [w, w + 1]))
        pair_ub[at] = np.minimum(pair_ub[at], target[pair_c[at]])
    _check_sums(request, pair_w, pair_ub, resources)

    price = np.zeros((n_c, n_r), dtype=float)
    for c, cl in enumerate(clusters):
        for r, name in enumerate(resources):
            price[c, r] = cl.spec.price.get(name, 0.0)
    per = np.array([natural_per_base(r) for r in resources], dtype=float)
    natural = request_base.astype(float) * per
    pair_cost = (natural[pair_w] * price[pair_c]).sum(axis=1) if n_r else np.zeros(len(pair_w))

    problem = Problem(
        workload_keys=[wl.key for wl in workloads],
        replicas=replicas,
        priority=priority,
        duplicated=duplicated,
        aggregated=aggregated,
        broadcast=broadcast,
        min_per=min_per,
        max_per=max_per,
        count_min=count_min,
        count_max=count_max,
        group=group,
        tenant=tenant,
        request=request,
        request_base=request_base,
        cluster_names=cluster_names,
        capacity=capacity,
        capacity_base=capacity_base,
        resource_names=resources,
        resource_scale=scale,
        tenant_names=tenant_names,
        quota=quota,
        group_specs=group_specs,
        group_spread=[[] for _ in group_specs],
        eligible_count=eligible_count,
        first_reason=first_reason,
        reason_codes=reason_codes,
        pair_w=pair_w,
        pair_c=pair_c,
        pair_ub=pair_ub.astype(np.int64),
        pair_tier=np.zeros(len(pair_w), dtype=np.int64),
        pair_cost=pair_cost,
        pair_latency=np.zeros(len(pair_w)),
        pair_preference=np.zeros(len(pair_w)),
        pair_prefer_no_schedule=np.zeros(len(pair_w), dtype=bool),
        affinity_from=np.zeros(0, dtype=np.int32),
        affinity_to=np.zeros(0, dtype=np.int32),
        anti_a=np.zeros(0, dtype=np.int32),
        anti_b=np.zeros(0, dtype=np.int32),
        current_w=np.zeros(0, dtype=np.int32),
        current_c=np.zeros(0, dtype=np.int32),
        current_n=np.zeros(0, dtype=np.int64),
        fixed_moves=0,
        max_moves=max_moves,
        weights=weights,
        context=ctx,
        fixed_division=fixed_division,
        division_target=division,
    )
    _co_location(bundle, problem)
    _current(problem, current or {})
    for plugin in PLUGINS:
        plugin.prepare(ctx, problem)
    return problem


def _check_sums(request: np.ndarray, pair_w: np.ndarray, pair_ub: np.ndarray, resources: list[str]) -> None:
    """Refuse a fleet whose capacity or quota sums could leave int64 (the solver's integers).

    Every capacity and quota row sums ``y * request`` over a subset of the pairs, with
    ``y <= pair_ub``; so the sum over all pairs bounds them all. Computed in floats: it is
    a threshold far from the edge (2^61), not an exact quantity.
    """
    for r, name in enumerate(resources):
        total = float((pair_ub.astype(float) * request[pair_w, r].astype(float)).sum())
        if total > MAX_FLEET_SUM:
            raise InputError(
                f"the workloads' {name} requests, summed over every cluster they may use, exceed what the "
                f"engine can add up exactly (2^61 units of the requests' common divisor); use coarser "
                f"{name} requests or fewer replicas",
                field=f"spec.resources.{name}",
            )


def _divisions(rs: list[ReplicaScheduling], eligible: np.ndarray, replicas: np.ndarray, cluster_names: list[str],
               cluster_labels: list[dict[str, str]], request_base: np.ndarray,
               capacity_base: np.ndarray) -> dict[int, np.ndarray]:
    """Workload -> (C,) replicas its ``weightPreference`` fixes per cluster (engine.division)."""
    from engine.division import division_of

    out: dict[int, np.ndarray] = {}
    for w, sched in enumerate(rs):
        if sched.weight_preference is not None:
            out[w] = division_of(sched.weight_preference, int(replicas[w]), np.nonzero(eligible[w])[0],
                                 cluster_names, cluster_labels, request_base[w], capacity_base)
    return out


def _co_location(bundle: Bundle, problem: Problem) -> None:
    index = {k: i for i, k in enumerate(problem.workload_keys)}
    aff_from: list[int] = []
    aff_to: list[int] = []
    anti: set[tuple[int, int]] = set()
    for w, wl in enumerate(bundle.workloads):
        spec = problem.group_specs[problem.group[w]]
        ns = wl.metadata.namespace
        for name in spec.affinity.workloads if spec.affinity else []:
            v = index[f"{ns}/{name}"]
            if v != w:
                aff_from.append(w)
                aff_to.append(v)
        for name in spec.anti_affinity.workloads if spec.anti_affinity else []:
            v = index[f"{ns}/{name}"]
            if v != w:
                anti.add((min(w, v), max(w, v)))
    problem.affinity_from = np.array(aff_from, dtype=np.int32)
    problem.affinity_to = np.array(aff_to, dtype=np.int32)
    pairs = sorted(anti)
    problem.anti_a = np.array([a for a, _ in pairs], dtype=np.int32)
    problem.anti_b = np.array([b for _, b in pairs], dtype=np.int32)


def _kept_running(
    workloads: list[Workload], cluster_names: list[str], current: dict[str, dict[str, int]]
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(workload, cluster, replicas) of everything that runs today on a cluster of the fleet."""
    w_index = {wl.key: i for i, wl in enumerate(workloads)}
    c_index = {k: i for i, k in enumerate(cluster_names)}
    rows = [(w_index[key], c_index[cluster], n) for key, spread in current.items() if key in w_index
            for cluster, n in spread.items() if n > 0 and cluster in c_index]
    arr = np.array(rows, dtype=np.int64).reshape(-1, 3)
    return arr[:, 0], arr[:, 1], arr[:, 2]


def _current(problem: Problem, current: dict[str, dict[str, int]]) -> None:
    w_index = {k: i for i, k in enumerate(problem.workload_keys)}
    c_index = {k: i for i, k in enumerate(problem.cluster_names)}
    cw: list[int] = []
    cc: list[int] = []
    cn: list[int] = []
    fixed = 0
    gone: dict[int, int] = {}
    for key, spread in sorted(current.items()):
        for cluster, n in sorted(spread.items()):
            if n <= 0:
                continue
            if key not in w_index:
                # a deleted workload is removed, not moved: it costs no moves
                problem.notes.append(
                    f"{key} runs {n} replica(s) on {cluster} but is not in the bundle; "
                    "it will be removed"
                )
            elif cluster not in c_index:
                problem.notes.append(
                    f"{key} runs {n} replica(s) on {cluster}, which is not in the fleet; "
                    "they must move"
                )
                fixed += n
                gone[w_index[key]] = gone.get(w_index[key], 0) + n
            else:
                cw.append(w_index[key])
                cc.append(c_index[cluster])
                cn.append(n)
    problem.current_w = np.array(cw, dtype=np.int32)
    problem.current_c = np.array(cc, dtype=np.int32)
    problem.current_n = np.array(cn, dtype=np.int64)
    problem.fixed_moves = fixed
    problem.current_total = np.zeros(problem.num_workloads, dtype=np.int64)
    problem.current_gone = np.zeros(problem.num_workloads, dtype=np.int64)
    np.add.at(problem.current_total, problem.current_w, problem.current_n)
    for w, n in gone.items():
        problem.current_total[w] += n
        problem.current_gone[w] += n


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
    ub = p.pair_ub[pair_keep].copy()
    if capacity is not None:
        req = p.request[keep_idx][pw]
        for r in range(len(p.resource_names)):
            limited = (req[:, r] > 0) & (cap[pc, r] != UNLIMITED)
            room = np.maximum(cap[pc, r], 0)
            ub[limited] = np.minimum(ub[limited], room[limited] // req[limited, r])
        dup = p.duplicated[keep_idx][pw]
        ub = np.where(dup & (ub < p.replicas[keep_idx][pw]), 0, ub)
        ub = np.where(dup, np.where(ub > 0, p.replicas[keep_idx][pw], 0), ub)

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
        first_reason=p.first_reason[keep_idx],
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
    return np.union1d(np.nonzero(p.first_reason[w] == -1)[0], p.pair_c[sl])


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
    return p.group_tier[g]


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
    from dataclasses import replace

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
