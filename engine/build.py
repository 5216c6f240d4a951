"""Bundle -> :class:`~engine.problem.Problem`: the arrays, through the policy registry.

The engine sees policies only through :data:`policies.registry.PLUGINS`: each filter narrows
eligibility (the first one that fails is remembered for explanations), each ``prepare`` hook
fills its arrays. Policies import the problem's types, never this builder.
"""

from __future__ import annotations

import numpy as np

from engine.division import division_of
from engine.documents.bundle import Bundle
from engine.documents.kinds import ObjectiveWeights, Tenant, Workload
from engine.documents.policy import PlacementPolicySpec, ReplicaScheduling
from engine.documents.selectors import LabelTable
from engine.errors import InputError
from engine.limits import MAX_FLEET_SUM
from engine.problem import BIG, UNLIMITED, CompileContext, Problem
from engine.quantity import natural_per_base
from policies.registry import PLUGINS

__all__ = ["build_problem"]


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
    group_reason = np.full((len(group_specs), n_c), -1, dtype=np.int8)
    for plugin in PLUGINS:
        mask = plugin.filter(ctx)
        if mask is None:
            continue
        code_index = len(reason_codes)
        reason_codes.append(plugin.name)
        newly = allowed & ~mask
        group_reason[newly] = code_index
        allowed &= mask
        running = plugin.filter_running(ctx)
        allowed_running &= mask if running is None else running
    # eligibility is per group: the pairs are each group's allowed clusters for each of its workloads,
    # made from the group rows (never a dense (W, C) mask: 250M cells at 50,000 x 5,000)
    allowed_rows = [np.nonzero(allowed[g])[0].astype(np.int32) for g in range(len(group_specs))]
    eligible_count = allowed.sum(axis=1).astype(np.int64)[group] if n_w else np.zeros(0, np.int64)

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

    def fits(ws: np.ndarray, cs: np.ndarray) -> np.ndarray:
        ok: np.ndarray = (smallest <= max_per)[ws]
        for r in range(n_r):
            cap_r = capacity[:, r]
            limited = cap_r != UNLIMITED
            if limited.any():
                ok &= ~limited[cs] | (need[:, r][ws] <= cap_r[cs])
        return ok

    pair_w = np.repeat(np.arange(n_w, dtype=np.int32), eligible_count)
    pair_c = np.concatenate([allowed_rows[g] for g in group.tolist()]) if n_w else np.zeros(0, np.int32)
    keep = fits(pair_w, pair_c)
    pair_w, pair_c = pair_w[keep], pair_c[keep]
    # replicas running where only a NoSchedule taint now forbids new ones: the pair stays, up to
    # its current count (for Duplicated, only where a whole copy runs today)
    kept_w, kept_c, kept_n = _kept_running(workloads, cluster_names, current or {})
    if len(kept_w):
        ok = ~allowed[group[kept_w], kept_c] & allowed_running[group[kept_w], kept_c] & fits(kept_w, kept_c)
        ok &= kept_n >= smallest[kept_w]
        kept_w, kept_c, kept_n = kept_w[ok], kept_c[ok], kept_n[ok]
        eligible_count += np.bincount(kept_w, minlength=n_w).astype(np.int64)
        pair_w = np.concatenate([pair_w, kept_w.astype(np.int32)])
        pair_c = np.concatenate([pair_c, kept_c.astype(np.int32)])
        order = np.argsort(pair_w.astype(np.int64) * n_c + pair_c, kind="stable")
        pair_w, pair_c = pair_w[order], pair_c[order]
    # weightPreference: the division over the eligible clusters is fixed; only its clusters keep pairs
    division = _divisions(rs, allowed_rows, group, replicas, cluster_names, ctx.label_table, request_base,
                          capacity_base)
    if division:
        keep = np.ones(len(pair_w), dtype=bool)
        for w, target in division.items():
            lo, hi = np.searchsorted(pair_w, [w, w + 1])
            keep[lo:hi] = target[pair_c[lo:hi]] > 0
        pair_w, pair_c = pair_w[keep], pair_c[keep]
        if len(kept_w):  # a kept pair outside a division is gone
            on = np.array([w not in division or division[w][c] > 0
                           for w, c in zip(kept_w.tolist(), kept_c.tolist(), strict=True)], dtype=bool)
            kept_w, kept_c, kept_n = kept_w[on], kept_c[on], kept_n[on]
    pair_w = pair_w.astype(np.int32)
    pair_c = pair_c.astype(np.int32)

    # upper bound of replicas per pair: bounds, and capacity per resource
    # (one column at a time, gathered by workload and by cluster: a (P, R) gather costs far more at
    # millions of pairs)
    ub = max_per[pair_w]
    for r in range(n_r):
        req_w = request[:, r]
        cap_c = capacity[:, r]
        if not (req_w > 0).any() or (cap_c == UNLIMITED).all():
            continue
        room_wc = np.where(cap_c == UNLIMITED, BIG, cap_c)
        req = req_w[pair_w]
        np.minimum(ub, np.where(req > 0, room_wc[pair_c] // np.maximum(req, 1), BIG), out=ub)
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
    pair_cost = np.zeros(len(pair_w))
    for r in range(n_r):  # column by column (see the upper bounds above); unpriced resources add nothing
        if price[:, r].any() and natural[:, r].any():
            pair_cost += natural[pair_w, r] * price[pair_c, r]

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
        group_reason=group_reason,
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
    per_workload = np.bincount(pair_w, weights=pair_ub.astype(float), minlength=len(request))
    for r, name in enumerate(resources):
        total = float(per_workload @ request[:, r].astype(float))
        if total > MAX_FLEET_SUM:
            raise InputError(
                f"the workloads' {name} requests, summed over every cluster they may use, exceed what the "
                f"engine can add up exactly (2^61 units of the requests' common divisor); use coarser "
                f"{name} requests or fewer replicas",
                field=f"spec.resources.{name}",
            )


def _divisions(rs: list[ReplicaScheduling], allowed_rows: list[np.ndarray], group: np.ndarray, replicas: np.ndarray,
               cluster_names: list[str],
               cluster_labels: LabelTable, request_base: np.ndarray,
               capacity_base: np.ndarray) -> dict[int, np.ndarray]:
    """Workload -> (C,) replicas its ``weightPreference`` fixes per cluster (engine.division)."""
    out: dict[int, np.ndarray] = {}
    for w, sched in enumerate(rs):
        if sched.weight_preference is not None:
            out[w] = division_of(sched.weight_preference, int(replicas[w]), allowed_rows[int(group[w])],
                                 cluster_names, cluster_labels, request_base[w], capacity_base)
    return out


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
