"""The service's fast path: a few new workloads on the warm arrays, exact, in milliseconds.

:class:`engine.warm.WarmFleet` keeps the committed fleet as arrays (capacity and usage per
cluster and resource, quota used per tenant). :class:`FastPlacer` adds the other half of a
compiled fleet: per *policy group* (namespace + the policy's spec, as :func:`engine.build.build_problem`
groups workloads) the clusters every filter lets through and their tier, latency, preference and
``PreferNoSchedule`` terms, computed once by the same builder and plugins as every other strategy
(a probe bundle: the fleet and one request-less workload of that group), kept until the fleet
changes. A request's problem is then a few numpy operations: its eligible clusters, the residual
room there, its cost per replica; :func:`engine.solvers.dispatch.solve_new` solves it exactly.

:meth:`FastPlacer.place` answers ``None`` where this path does not claim exactness or has nothing
to say, and the caller takes the exact pinned paths: a workload linked to another (affinity,
anti-affinity, ``dependsOn``, or named by a committed workload), a policy with
``resourceSelectors`` or ``weightPreference``, a solve that did not prove its optimum, a workload
that cannot be placed (the pinned paths explain why), a plan the independent verifier refuses.

Every plan is verified (:mod:`engine.verification`) on a bundle of its own: the clusters it uses
with the capacity left on them (every cluster for a broadcast), the tenants with the quota left,
the request's documents.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

from engine.build import build_problem
from engine.documents.bundle import Bundle
from engine.documents.kinds import Workload
from engine.documents.policy import PlacementPolicy, PlacementPolicySpec
from engine.plan import Plan
from engine.planner import plan_from_solution
from engine.problem import UNLIMITED, Problem, side_by_side
from engine.quantity import natural_per_base
from engine.solvers.dispatch import solve_new
from engine.solvers.solution import Deadline
from engine.verification import verify
from engine.warm import links_of, needs_whole_fleet

if TYPE_CHECKING:
    from engine.warm import WarmFleet

__all__ = ["FastPlacer", "fast_reason"]

log = logging.getLogger("berth.engine")
_PROBE = "berth-fast-path-probe"


@dataclass
class _Template:
    """The fleet side of one policy group: what every filter lets through, and the per-pair terms."""

    clusters: np.ndarray  # eligible cluster indices, sorted
    tier: np.ndarray
    latency: np.ndarray
    preference: np.ndarray
    prefer_no_schedule: np.ndarray
    probe: Problem  # the builder's problem of one request-less workload of the group: its group fields

    @property
    def spec(self) -> PlacementPolicySpec:
        return self.probe.group_specs[0]


def fast_reason(workload: Workload, policy: PlacementPolicy | None, warm: WarmFleet) -> str | None:
    """Why ``workload`` is not for the fast path (``None``: it is)."""
    if links_of(workload, policy):
        return "linked to other workloads"
    if warm.named(workload.key):
        return "named by a committed workload"
    why = needs_whole_fleet(policy)
    if why is not None:
        return why
    if policy is not None and policy.spec.replica_scheduling.weight_preference is not None:
        return "its policy fixes a division (weightPreference)"
    return None


class FastPlacer:
    """Templates per policy group over ``warm``'s fleet; :meth:`place` per request (thread-safe)."""

    def __init__(self, warm: WarmFleet) -> None:
        self.warm = warm
        self._fleet = warm.fleet
        self._templates: dict[tuple[str, str], _Template] = {}
        self._prices: dict[str, np.ndarray] = {}

    def _fresh(self) -> None:
        if self._fleet is not self.warm.fleet:  # another fleet (a refresh): everything is made again
            self._fleet, self._templates, self._prices = self.warm.fleet, {}, {}

    def template(self, namespace: str, policy: PlacementPolicy | None) -> _Template:
        """The group of ``policy`` in ``namespace`` on the current fleet (built once, by the engine's builder)."""
        self._fresh()
        key = (namespace, policy.model_dump_json() if policy is not None else "")
        found = self._templates.get(key)
        if found is not None:
            return found
        fleet = self._fleet
        low = policy.spec.replica_scheduling.min_per_cluster if policy is not None else 1
        probe = Workload.model_validate({
            "apiVersion": "placement.berth.dev/v1alpha1", "kind": "Workload",
            "metadata": {"name": _PROBE, "namespace": namespace},
            "spec": {"replicas": max(1, low), **({"policy": policy.metadata.name} if policy is not None else {})}})
        bundle = Bundle(clusters=fleet.clusters, sites=fleet.sites, tenants=fleet.tenants, workloads=[probe],
                        policies=[policy] if policy is not None else [], objective=fleet.objective)
        p = build_problem(bundle)
        sl = p.pairs_of(0)
        made = _Template(
            clusters=p.pair_c[sl].astype(np.int64), tier=p.pair_tier[sl], latency=p.pair_latency[sl],
            preference=p.pair_preference[sl], prefer_no_schedule=p.pair_prefer_no_schedule[sl], probe=p)
        self._templates[key] = made
        return made

    def _price(self, resource: str) -> np.ndarray:
        found = self._prices.get(resource)
        if found is None:
            found = np.array([float(c.spec.price.get(resource, 0.0)) for c in self._fleet.clusters])
            self._prices[resource] = found
        return found

    # --- one request --------------------------------------------------------------------------

    def problem(self, workloads: list[Workload], policies: list[PlacementPolicy | None]) -> Problem:
        """The request's workloads alone against the room the committed ones leave (engine.build's rules)."""
        warm = self.warm
        templates = [self.template(w.metadata.namespace or "default", pol)
                     for w, pol in zip(workloads, policies, strict=True)]
        fleet = self._fleet
        n_w, n_c = len(workloads), len(warm.names)
        names = sorted({r for w in workloads for r, v in w.spec.resources.items() if v > 0} - {"pods"})
        resources = names + (["pods"] if warm.counts_pods else [])
        request_base = np.array([[1 if r == "pods" else w.spec.resources.get(r, 0) for r in resources]
                                 for w in workloads], dtype=np.int64).reshape(n_w, len(resources))
        scale = np.ones(len(resources), dtype=np.int64)
        for r in range(len(resources)):
            values = request_base[:, r][request_base[:, r] > 0]
            if len(values):
                scale[r] = int(np.gcd.reduce(values))
        request = request_base // scale
        left = warm.residual(np.arange(n_c), resources)
        capacity = np.where(left == UNLIMITED, UNLIMITED, left // scale)
        quota_tenants = [t for t in fleet.tenants if any(k in resources for k in t.spec.quota)]
        tenant_names = [t.metadata.name for t in quota_tenants]
        quota = np.full((len(quota_tenants), len(resources)), UNLIMITED, dtype=np.int64)
        for row, ten in enumerate(quota_tenants):
            for name, amount in warm.tenant_residual(ten, resources).items():
                r = resources.index(name)
                quota[row, r] = amount // scale[r]
        per = np.array([natural_per_base(r) for r in resources], dtype=float)
        price = np.column_stack([self._price(r) for r in resources]) if resources else np.zeros((n_c, 0))
        pw, pc, pub, ptier, plat, ppref, ppns, pcost = [], [], [], [], [], [], [], []
        rows: dict[str, list[int]] = {k: [] for k in ("replicas", "dup", "agg", "bcast", "lo", "hi", "cmin", "cmax")}
        for i, (w, t) in enumerate(zip(workloads, templates, strict=True)):
            rs, counts = t.spec.replica_scheduling, t.spec.clusters
            replicas = w.spec.replicas
            dup = rs.replica_scheduling_type == "Duplicated"
            hi = min(rs.max_per_cluster if rs.max_per_cluster is not None else 2**31, replicas)
            smallest = replicas if dup else rs.min_per_cluster
            cs = t.clusters
            ok = np.full(len(cs), smallest <= hi)
            ub = np.full(len(cs), hi, dtype=np.int64)
            for r in range(len(resources)):
                cap, req = capacity[cs, r], int(request[i, r])
                limited = cap != UNLIMITED
                ok &= ~limited | (req * smallest <= cap)
                if req > 0:
                    ub = np.where(limited, np.minimum(ub, np.maximum(cap, 0) // req), ub)
            keep = np.nonzero(ok)[0]
            pw.append(np.full(len(keep), i, dtype=np.int32))
            pc.append(cs[keep].astype(np.int32))
            pub.append(np.full(len(keep), replicas, dtype=np.int64) if dup else ub[keep])
            ptier.append(t.tier[keep])
            plat.append(t.latency[keep])
            ppref.append(t.preference[keep])
            ppns.append(t.prefer_no_schedule[keep])
            pcost.append((request_base[i] * per * price[cs[keep]]).sum(axis=1) if resources else np.zeros(len(keep)))
            for k, v in (("replicas", replicas), ("dup", dup),
                         ("agg", rs.replica_division_preference == "Aggregated" and not dup),
                         ("bcast", dup and counts is None), ("lo", rs.min_per_cluster), ("hi", hi),
                         ("cmin", counts.min if counts else 1),
                         ("cmax", counts.max if counts and counts.max is not None else n_c)):
                rows[k].append(int(v))
        tenant_pos = {n: i for i, n in enumerate(tenant_names)}

        def arr(key: str, dtype: type = np.int64) -> np.ndarray:
            return np.array(rows[key], dtype=dtype)

        none32, none64 = np.zeros(0, dtype=np.int32), np.zeros(0, dtype=np.int64)
        return Problem(
            workload_keys=[w.key for w in workloads], replicas=arr("replicas"),
            priority=np.array([w.spec.priority for w in workloads], dtype=np.int64),
            duplicated=arr("dup", bool), aggregated=arr("agg", bool), broadcast=arr("bcast", bool),
            min_per=arr("lo"), max_per=arr("hi"), count_min=arr("cmin"), count_max=arr("cmax"),
            group=np.arange(n_w, dtype=np.int32),
            tenant=np.array([tenant_pos.get(w.metadata.namespace or "default", -1) for w in workloads],
                            dtype=np.int32),
            request=request, request_base=request_base, cluster_names=warm.names, capacity=capacity,
            capacity_base=left, resource_names=resources, resource_scale=scale, tenant_names=tenant_names,
            # one mapping of fields of several types: mypy cannot match it to the keywords, each is checked there
            quota=quota, **side_by_side([t.probe for t in templates]),  # type: ignore[arg-type]
            pair_w=np.concatenate(pw), pair_c=np.concatenate(pc), pair_ub=np.concatenate(pub),
            pair_tier=np.concatenate(ptier).astype(np.int64), pair_cost=np.concatenate(pcost),
            pair_latency=np.concatenate(plat).astype(float), pair_preference=np.concatenate(ppref).astype(float),
            pair_prefer_no_schedule=np.concatenate(ppns).astype(bool),
            current_w=none32, current_c=none32, current_n=none64, fixed_moves=0, max_moves=None,
            weights=templates[0].probe.weights, current_total=np.zeros(n_w, dtype=np.int64),
            current_gone=np.zeros(n_w, dtype=np.int64), fixed_division=np.zeros(n_w, dtype=bool),
        )

    def place(self, workloads: list[Workload], policies: list[PlacementPolicy | None], *, deadline: Deadline,
              warnings: list[str] | None = None) -> tuple[Plan, Bundle] | None:
        """The exact plan of ``workloads`` beside everything committed, verified, with the bundle it was
        verified on; ``None`` when the caller must take the pinned paths (module docstring).

        The caller has checked :func:`fast_reason` for every workload and that the committed
        placement fits (:meth:`engine.warm.WarmFleet.fits`).
        """
        warm = self.warm
        with warm.lock:  # the groups and the residual of one fleet (a refresh may swap it beside a request)
            problem = self.problem(workloads, policies)
        solution = solve_new(problem, deadline)
        if solution.status != "Optimal" or (np.bincount(problem.pair_w, weights=solution.y,
                                                        minlength=len(workloads)) == 0).any():
            return None
        with warm.lock:  # verified against the residual as it is now, by cluster name
            bundle = self._bundle(problem, solution.y, workloads, policies)
            if bundle is None:
                return None
            plan = plan_from_solution(problem, solution, input_digest=bundle.digest(), warnings=warnings,
                                      explained={})
            violations = verify(bundle, plan)
        if violations:  # the room was taken meanwhile (a dry run beside a commit), or a bug: the pinned paths decide
            log.warning("fast path plan does not verify against the residual now, taking the pinned path: %s",
                        violations[0])
            return None
        return plan, bundle

    def _bundle(self, problem: Problem, y: np.ndarray, workloads: list[Workload],
                policies: list[PlacementPolicy | None]) -> Bundle | None:
        """What the plan is verified on: the clusters it uses (every one for a broadcast), with the room left
        now; ``None`` when one of them left the fleet since the problem was made."""
        warm, fleet = self.warm, self.warm.fleet
        names = [problem.cluster_names[c] for c in np.unique(problem.pair_c[y > 0]).tolist()]
        if problem.broadcast.any():
            names = list(problem.cluster_names)
        at = [warm.cluster_index.get(n) for n in names]
        if None in at:
            return None
        namespaces = {w.metadata.namespace or "default" for w in workloads}
        pols = {f"{p.metadata.namespace}/{p.metadata.name}": p for p in policies if p is not None}
        tenants = [warm.residual_tenant(t) for t in fleet.tenants if t.metadata.name in namespaces]
        return Bundle(clusters=[warm.residual_cluster(c) for c in at if c is not None], sites=fleet.sites,
                      tenants=tenants, workloads=list(workloads), policies=list(pols.values()),
                      objective=fleet.objective)
