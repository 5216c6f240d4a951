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
from dataclasses import dataclass, field

from engine.documents.bundle import Bundle
from engine.documents.kinds import Cluster, Tenant, Workload
from engine.documents.policy import PlacementPolicy

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


@dataclass
class WarmFleet:
    """Usage of the committed placement on ``fleet``, kept current change by change (thread-safe)."""

    fleet: Bundle
    _committed: dict[str, _Committed] = field(default_factory=dict)
    _used: dict[str, dict[str, int]] = field(default_factory=dict)  # cluster -> resource -> base units
    _tenant_used: dict[str, dict[str, int]] = field(default_factory=dict)
    _named_by: dict[str, set[str]] = field(default_factory=dict)  # key -> committed keys that name it
    _clusters: dict[str, Cluster] = field(default_factory=dict)  # residual Cluster documents, by name
    _lock: threading.RLock = field(default_factory=threading.RLock)
    _fits: bool | None = None  # cached answer of fits(), until the next change

    @classmethod
    def build(cls, fleet: Bundle, committed: Mapping[str, Spread], workloads: Mapping[str, Workload],
              policies: Mapping[str, PlacementPolicy]) -> WarmFleet:
        warm = cls(fleet)
        for key, spread in committed.items():
            w = workloads[key]
            warm.add(key, spread, w, policies.get(f"{w.metadata.namespace}/{w.spec.policy}") if w.spec.policy else None)
        warm.set_fleet(fleet)
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
        for cluster, n in entry.spread.items():
            used = self._used.setdefault(cluster, {})
            for r, amount in entry.request.items():
                used[r] = used.get(r, 0) + sign * n * amount
                tenant[r] = tenant.get(r, 0) + sign * n * amount
            self._clusters.pop(cluster, None)  # its residual document is made again when asked for
        self._fits = None

    @property
    def lock(self) -> threading.RLock:
        """Held across several reads that must see one state (re-entrant)."""
        return self._lock

    def set_fleet(self, fleet: Bundle) -> None:
        """Capacity was refreshed (live inputs): residuals follow it."""
        with self._lock:
            self.fleet = fleet
            self._clusters = {}
            self._fits = None

    # --- reading ------------------------------------------------------------------------------

    def _residual(self, cluster: Cluster, extra: Iterable[_Committed] = ()) -> Cluster:
        """``cluster`` with the capacity the committed placement leaves (plus ``extra``'s own usage)."""
        name = cluster.metadata.name
        used = dict(self._used.get(name, {}))
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
        for c in self.fleet.clusters:
            used = self._used.get(c.metadata.name, {})
            if any(v < used.get(r, 0) for r, v in c.spec.capacity.items()):
                return False
        for t in self.fleet.tenants:
            used = self._tenant_used.get(t.metadata.name, {})
            if any(v < used.get(r, 0) for r, v in t.spec.quota.items()):
                return False
        return {c.metadata.name for c in self.fleet.clusters} >= {c for c, u in self._used.items() if any(u.values())}

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
            for c in self.fleet.clusters:
                name = c.metadata.name
                if name in touched:
                    clusters.append(self._residual(c, extra))
                    continue
                doc = self._clusters.get(name)
                if doc is None:
                    doc = self._clusters[name] = self._residual(c)
                clusters.append(doc)
            tenants: list[Tenant] = []
            for t in self.fleet.tenants:
                used = dict(self._tenant_used.get(t.metadata.name, {}))
                for e in extra:
                    if e.tenant == t.metadata.name:
                        for r, amount in e.request.items():
                            used[r] = used.get(r, 0) - sum(e.spread.values()) * amount
                if any(used.get(r, 0) for r in t.spec.quota):
                    quota = {r: v - used.get(r, 0) for r, v in t.spec.quota.items()}
                    t = t.model_copy(update={"spec": t.spec.model_copy(update={"quota": quota})})
                tenants.append(t)
            return clusters, tenants
