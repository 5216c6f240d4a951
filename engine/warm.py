"""Warm state of a committed fleet, for placing a few new workloads exactly without rebuilding it.

The service places one workload (or a few) at a time beside thousands that are committed and
may not move. Committed replicas are then constants of every level of spec section 3; they
touch the new workloads only through the capacity and quota they take, and through
co-location (affinity, anti-affinity, ``dependsOn``) with the workloads they are linked to.
So the lexicographic optimum of "everything committed, pinned, plus the new ones" is the
committed placement plus the optimum of a *small* bundle: the fleet with the capacity and
quota that the committed workloads leave (the residual), the new workloads, and the few
committed workloads they are linked to, given as the current placement and pinned there
(``maxMoves: 0``, frozen) so that the engine's pinned path keeps them exact.

:class:`WarmFleet` keeps what that needs, updated in place per change (``O(clusters of the
change)``, never the fleet): usage per cluster and per tenant, the spread of each committed
workload, and which committed workloads name which (``links``). :meth:`WarmFleet.small_fleet`
gives the residual clusters and tenants for a set of linked partners. :meth:`WarmFleet.partners`
returns ``None`` where the shortcut is not proved exact and the caller must solve the whole
fleet (engine pinned path):

- the residual is negative somewhere (the committed placement no longer fits: capacity shrank);
- a committed workload names a new one (a committed follower, anti-affinity or dependency of
  it: the new workload would constrain a pinned one);
- a policy involved has ``resourceSelectors`` (it could select committed workloads outside the
  small bundle) or a ``dynamicWeight`` division (it divides by capacity, which the residual is not);
- more than :data:`MAX_PARTNERS` committed workloads are linked (co-location with many partners).

Pure: nothing here opens a file or a socket.
"""

from __future__ import annotations

import threading
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

import numpy as np

from engine.documents.bundle import Bundle
from engine.documents.kinds import Cluster, Tenant, Workload
from engine.documents.policy import PlacementPolicy
from engine.problem import UNLIMITED

__all__ = ["MAX_PARTNERS", "WarmFleet", "links_of"]

MAX_PARTNERS = 8
Spread = Mapping[str, int]


def links_of(workload: Workload, policy: PlacementPolicy | None) -> set[str]:
    """The keys (``ns/name``) a workload names: its policy's affinity and anti-affinity, ``dependsOn``."""
    ns = workload.metadata.namespace or "default"
    names = set(workload.spec.depends_on)
    if policy is not None:
        for term in (policy.spec.affinity, policy.spec.anti_affinity):
            if term is not None:
                names |= set(term.workloads)
    return {f"{ns}/{n}" for n in names}


def needs_whole_fleet(policy: PlacementPolicy | None) -> str | None:
    """Why a policy keeps a workload off the fast path (``None``: it does not)."""
    if policy is None:
        return None
    if policy.spec.resource_selectors is not None:
        return "its policy has resourceSelectors"
    preference = policy.spec.replica_scheduling.weight_preference
    if preference is not None and preference.dynamic_weight is not None:
        return "its policy divides by available capacity (dynamicWeight)"
    return None


@dataclass
class _Committed:
    spread: dict[str, int]
    request: dict[str, int]  # per replica, base units, pods = 1
    tenant: str
    links: set[str]


class WarmFleet:
    """Usage of the committed placement on ``fleet``, kept current change by change (thread-safe).

    The cluster side is arrays over ``fleet.clusters`` (index ``c``) and the resources seen so far
    (column ``r``, added when a request first names a resource): ``capacity`` and ``used`` in base
    units (``UNLIMITED`` where a cluster does not list ``pods``), so the residual of any set of
    clusters is one subtraction (:meth:`residual`). A change costs ``O(clusters of the change)``.
    """

    def __init__(self, fleet: Bundle) -> None:
        self.fleet = fleet
        self._committed: dict[str, _Committed] = {}
        self._tenant_used: dict[str, dict[str, int]] = {}
        self._named_by: dict[str, set[str]] = {}  # key -> committed keys that name it
        self._clusters: dict[str, Cluster] = {}  # residual Cluster documents, by name
        self._lock = threading.RLock()
        self._fits: bool | None = None  # cached answer of fits(), until the next change
        self._gone: dict[str, dict[str, int]] = {}  # usage on clusters that are not in the fleet
        #: one more per change of usage or fleet: what a reader's copy of the residual was taken at
        self.version = 0
        self._index(fleet)

    def _index(self, fleet: Bundle) -> None:
        self.names = [c.metadata.name for c in fleet.clusters]
        self.cluster_index = {n: i for i, n in enumerate(self.names)}
        self.columns: dict[str, int] = {}
        self.capacity = np.zeros((len(self.names), 0), dtype=np.int64)
        self.used = np.zeros((len(self.names), 0), dtype=np.int64)
        #: whether ``pods`` is a resource of every problem on this fleet (engine.build: a cluster or quota lists it)
        self.counts_pods = any("pods" in c.spec.capacity for c in fleet.clusters) or any(
            "pods" in t.spec.quota for t in fleet.tenants)

    def column(self, resource: str) -> int:
        """The column of ``resource`` in :attr:`capacity` and :attr:`used` (added on first use)."""
        col = self.columns.get(resource)
        if col is None:
            with self._lock:
                col = self.columns.get(resource)
                if col is None:
                    cap = [UNLIMITED if resource == "pods" and "pods" not in c.spec.capacity
                           else int(c.spec.capacity.get(resource, 0)) for c in self.fleet.clusters]
                    self.capacity = np.column_stack([self.capacity, np.array(cap, dtype=np.int64)])
                    self.used = np.column_stack([self.used, np.zeros(len(self.names), dtype=np.int64)])
                    col = self.columns[resource] = self.capacity.shape[1] - 1
        return col

    @classmethod
    def build(cls, fleet: Bundle, committed: Mapping[str, Spread], workloads: Mapping[str, Workload],
              policies: Mapping[str, PlacementPolicy]) -> WarmFleet:
        warm = cls(fleet)
        for key, spread in committed.items():
            w = workloads[key]
            warm.add(key, spread, w, policies.get(f"{w.metadata.namespace}/{w.spec.policy}") if w.spec.policy else None)
        return warm

    # --- changes ------------------------------------------------------------------------------

    def add(self, key: str, spread: Spread, workload: Workload, policy: PlacementPolicy | None) -> None:
        """``key`` is committed with ``spread`` (replaces what it had)."""
        with self._lock:
            self.remove(key)
            request = {**workload.spec.resources, "pods": 1}
            entry = _Committed({c: int(n) for c, n in spread.items() if n > 0}, request,
                               workload.metadata.namespace or "default", links_of(workload, policy))
            self._committed[key] = entry
            self._charge(entry, +1)
            for other in entry.links:
                self._named_by.setdefault(other, set()).add(key)

    def remove(self, key: str) -> None:
        with self._lock:
            entry = self._committed.pop(key, None)
            if entry is None:
                return
            self._charge(entry, -1)
            for other in entry.links:
                self._named_by.get(other, set()).discard(key)

    def _charge(self, entry: _Committed, sign: int) -> None:
        tenant = self._tenant_used.setdefault(entry.tenant, {})
        cols = [(self.column(r), r, amount) for r, amount in entry.request.items()]
        for cluster, n in entry.spread.items():
            c = self.cluster_index.get(cluster)
            for col, r, amount in cols:
                if c is None:
                    gone = self._gone.setdefault(cluster, {})
                    gone[r] = gone.get(r, 0) + sign * n * amount
                else:
                    self.used[c, col] += sign * n * amount
                tenant[r] = tenant.get(r, 0) + sign * n * amount
            self._clusters.pop(cluster, None)  # its residual document is made again when asked for
        self._fits = None
        self.version += 1

    @property
    def lock(self) -> threading.RLock:
        """Held across several reads that must see one state (re-entrant)."""
        return self._lock

    def set_fleet(self, fleet: Bundle) -> None:
        """Capacity was refreshed (live inputs): residuals follow it; another set of clusters re-indexes."""
        with self._lock:
            same = [c.metadata.name for c in fleet.clusters] == self.names
            columns, used = list(self.columns), self.used
            self.fleet = fleet
            self._index(fleet)
            for r in columns:  # the same columns, in the same order, with the new capacity
                self.column(r)
            if same:
                self.used = used
            else:  # charge every committed workload again on the new index
                self._gone, self._tenant_used = {}, {}
                for entry in self._committed.values():
                    self._charge(entry, +1)
            self._clusters = {}
            self._fits = None
            self.version += 1

    # --- reading ------------------------------------------------------------------------------

    def residual(self, clusters: np.ndarray, resources: list[str]) -> np.ndarray:
        """(len(clusters), len(resources)) base units left on those clusters (``UNLIMITED`` kept)."""
        cols = np.array([self.column(r) for r in resources], dtype=np.int64)
        with self._lock:
            cap = self.capacity[np.ix_(clusters, cols)]
            used = self.used[np.ix_(clusters, cols)]
        return np.where(cap == UNLIMITED, UNLIMITED, cap - used)

    def tenant_residual(self, tenant: Tenant, resources: list[str]) -> dict[str, int]:
        """Quota left of ``tenant`` per resource of ``resources`` it limits."""
        with self._lock:
            used = self._tenant_used.get(tenant.metadata.name, {})
            return {r: int(v) - used.get(r, 0) for r, v in tenant.spec.quota.items() if r in resources}

    def named(self, key: str) -> bool:
        """Whether a committed workload names ``key`` (affinity, anti-affinity, ``dependsOn``)."""
        with self._lock:
            return bool(self._named_by.get(key))

    def residual_cluster(self, c: int) -> Cluster:
        """Cluster ``c`` with the capacity the committed placement leaves (cached until it changes)."""
        name = self.names[c]
        with self._lock:
            doc = self._clusters.get(name)
            if doc is None:
                doc = self._clusters[name] = self._residual(self.fleet.clusters[c])
            return doc

    def _residual(self, cluster: Cluster, extra: Iterable[_Committed] = ()) -> Cluster:
        """``cluster`` with the capacity the committed placement leaves (plus ``extra``'s own usage)."""
        name = cluster.metadata.name
        c = self.cluster_index[name]
        used = {r: int(self.used[c, col]) for r, col in self.columns.items() if self.used[c, col]}
        for entry in extra:
            n = entry.spread.get(name, 0)
            for r, amount in entry.request.items():
                used[r] = used.get(r, 0) - n * amount
        if not any(used.values()):
            return cluster
        capacity = {r: v - used.get(r, 0) for r, v in cluster.spec.capacity.items()}
        return cluster.model_copy(update={"spec": cluster.spec.model_copy(update={"capacity": capacity})})

    def fits(self) -> bool:
        """Whether the committed placement fits the fleet's capacity and quota (no residual below 0)."""
        with self._lock:
            if self._fits is None:
                self._fits = self._check_fits()
            return self._fits

    def _check_fits(self) -> bool:
        if ((self.capacity != UNLIMITED) & (self.capacity < self.used)).any():
            return False
        for t in self.fleet.tenants:
            used = self._tenant_used.get(t.metadata.name, {})
            if any(v < used.get(r, 0) for r, v in t.spec.quota.items()):
                return False
        return not any(any(u.values()) for u in self._gone.values())

    def partners(self, new: Mapping[str, Workload], policies: Mapping[str, PlacementPolicy]) -> set[str] | None:
        """The committed workloads linked to ``new`` (closed under links), or ``None`` when the small
        bundle would not be exact (module docstring)."""
        with self._lock:
            if any(self._named_by.get(k) for k in new):
                return None
            todo: list[str] = []
            for w in new.values():
                policy = policies.get(f"{w.metadata.namespace}/{w.spec.policy}") if w.spec.policy else None
                if needs_whole_fleet(policy) is not None:
                    return None
                todo += [k for k in links_of(w, policy) if k in self._committed]
            found: set[str] = set()
            while todo:
                key = todo.pop()
                if key in found:
                    continue
                found.add(key)
                if len(found) > MAX_PARTNERS:
                    return None
                todo += [k for k in self._committed[key].links if k in self._committed]
            return found

    def spread(self, key: str) -> dict[str, int]:
        with self._lock:
            return dict(self._committed[key].spread)

    def small_fleet(self, partners: Iterable[str]) -> tuple[list[Cluster], list[Tenant]]:
        """Clusters and tenants with the capacity and quota left by the committed workloads other than
        ``partners`` (which the small bundle holds itself, pinned)."""
        with self._lock:
            extra = [self._committed[k] for k in partners]
            touched = {c for e in extra for c in e.spread}
            clusters: list[Cluster] = []
            for i, c in enumerate(self.fleet.clusters):
                clusters.append(self._residual(c, extra) if c.metadata.name in touched else self.residual_cluster(i))
            return clusters, [self.residual_tenant(t, extra) for t in self.fleet.tenants]

    def residual_tenant(self, tenant: Tenant, extra: Iterable[_Committed] = ()) -> Tenant:
        """``tenant`` with the quota the committed placement leaves (plus ``extra``'s own usage)."""
        with self._lock:
            name = tenant.metadata.name
            used = dict(self._tenant_used.get(name, {}))
            for e in extra:
                if e.tenant == name:
                    for r, amount in e.request.items():
                        used[r] = used.get(r, 0) - sum(e.spread.values()) * amount
        if not any(used.get(r, 0) for r in tenant.spec.quota):
            return tenant
        quota = {r: v - used.get(r, 0) for r, v in tenant.spec.quota.items()}
        return tenant.model_copy(update={"spec": tenant.spec.model_copy(update={"quota": quota})})
