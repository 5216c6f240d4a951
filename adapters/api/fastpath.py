"""The service's warm state and fast path: place a few workloads without rebuilding the fleet.

Today's exact path builds the whole committed fleet into one problem per request
(``engine.solvers.pinned``): its cost grows with the fleet. The fast path keeps
:class:`engine.warm.WarmFleet` (usage per cluster and tenant, links between committed
workloads), updates it in place on every change that becomes current (accept, update,
delete, and the live refresh of capacity), and solves a request as a *small* bundle: the
fleet with the capacity and quota left, the new workloads, and the committed workloads they
are linked to, pinned. That is exact for spec section 3 given nothing committed moves
(engine/warm.py says why and when it is not; then the request takes today's path).

The warm state is trusted only once the committed placement has been checked against the
fleet as today's path checks it (every committed workload pinned, valid by itself:
``engine.solvers.pinned.pinned_placement``), at start and whenever a refresh changes more than
capacity; that check runs in a background thread, and requests take today's path meanwhile.
"""

from __future__ import annotations

import logging
import os
import threading
import time
from collections.abc import Mapping
from dataclasses import replace
from typing import TYPE_CHECKING, Any

from engine import Bundle, Deadline, FastPlacer, Origin, PlacementPolicy, Plan, WarmFleet, Workload, fast_reason
from engine import place as engine_place

if TYPE_CHECKING:
    from adapters.api.state import ServiceState, Snapshot

__all__ = ["FastPath"]

log = logging.getLogger("berth.api")


def _shape(fleet: Bundle) -> list[Any]:
    """What of the fleet the warm state does not follow: everything but capacity."""
    return [(c.metadata.model_dump(mode="json"), c.spec.model_dump(mode="json", exclude={"capacity"}))
            for c in fleet.clusters] + [t.model_dump(mode="json", exclude={"spec": {"quota"}}) for t in fleet.tenants]


class FastPath:
    """Owns the warm fleet of one service; all methods are safe from any thread."""

    def __init__(self, state: ServiceState) -> None:
        self.state = state
        self.warm: WarmFleet | None = None
        self.placer: FastPlacer | None = None  # the warm arrays' request side (engine.fast), made on first use
        self._referenced: set[tuple[str, str, str]] = set()  # (namespace, policy name, spec) whose references held
        self.checked = False  # the committed placement passed today's pinned check on this fleet
        self.status = "starting"
        self._lock = threading.Lock()
        self._shape: list[Any] = []
        self._generation = 0

    # --- keeping it warm ------------------------------------------------------------------------

    def start(self, *, background: bool = True) -> None:
        """Build the warm state from the current snapshot, then check it (in a thread by default)."""
        if os.environ.get("BERTH_FAST_PATH", "").lower() == "off":  # an operator's (and the benchmark's) switch
            self.status = "off: BERTH_FAST_PATH=off"
            return
        snap = self.state.snap
        with self._lock:
            self.warm = WarmFleet.build(self.state.fleet, snap.committed, snap.defs.workloads, snap.defs.policies)
            self._shape = _shape(self.state.fleet)
        self._check(background)

    def _check(self, background: bool) -> None:
        with self._lock:
            self._generation += 1
            generation = self._generation
            self.checked = False
            self.status = "checking"
        if background:
            threading.Thread(target=self._run_check, args=(generation,), name="berth-warm-check", daemon=True).start()
        else:
            self._run_check(generation)

    def _run_check(self, generation: int) -> None:
        from engine import build_problem, pinned_placement

        started = time.perf_counter()
        try:
            snap = self.state.snap
            if not snap.committed:
                ok = True
            else:
                bundle = self.state.committed_bundle(snap)
                problem = build_problem(bundle, current=dict(snap.committed), max_moves=0)
                ok = pinned_placement(problem, frozen=True) is not None
        except Exception as exc:  # the fast path is an optimisation: never fail the service for it
            log.warning("warm state check failed, placements take the whole-fleet path: %s", exc)
            ok = False
        with self._lock:
            if generation != self._generation:
                return  # a newer check was started
            self.checked = ok
            self.status = "ready" if ok else "off: the committed placement is not valid by itself on this fleet"
        log.info("warm state %s after %.1f s", self.status, time.perf_counter() - started)

    def changed(self, new: Snapshot, keys: Any) -> None:
        """``keys`` changed in ``new`` (accepted, updated or deleted); the caller holds the writer lock."""
        warm = self.warm
        if warm is None:
            return
        d = new.defs
        for key in keys:
            spread = new.committed.get(key)
            if spread is None:
                warm.remove(key)
                continue
            w = d.workloads[key]
            warm.add(key, spread, w, d.policies.get(f"{w.metadata.namespace}/{w.spec.policy}") if w.spec.policy
                     else None)

    def refreshed(self, fleet: Bundle) -> None:
        """The live fleet was refreshed: capacity follows in place; any other change is checked again."""
        warm = self.warm
        if warm is None:
            return
        warm.set_fleet(fleet)
        self._referenced = set()  # sites may have changed with the fleet
        shape = _shape(fleet)
        if shape != self._shape:
            self._shape = shape
            self._check(background=True)

    # --- placing ----------------------------------------------------------------------------------

    def solve(self, snap: Snapshot, new: dict[str, Workload], policies: Mapping[str, PlacementPolicy],
              origins: Mapping[tuple[str, str], Origin], *, time_limit: float, warnings: list[str]
              ) -> tuple[Plan, Bundle] | None:
        """The plan of the small bundle for ``new``, or ``None`` when today's path must decide."""
        warm = self.warm
        metrics = self.state.metrics
        if warm is None or not self.checked:
            metrics.fast_path.labels("fallback", "warm state not checked yet").inc()
            return None
        if not warm.fits():
            metrics.fast_path.labels("fallback", "committed placement over capacity or quota").inc()
            return None
        arrays = self._arrays(warm, new, policies, origins, time_limit=time_limit, warnings=warnings)
        if arrays is not None:
            metrics.fast_path.labels("fast", "").inc()
            return arrays
        with warm.lock:  # partners and residual of one state (a delete may run beside a dry run)
            partners = warm.partners(new, policies)
            if partners is None or any(k not in snap.committed for k in partners):
                metrics.fast_path.labels("fallback", "linked to committed workloads").inc()
                return None
            clusters, tenants = warm.small_fleet(partners)
        fleet = replace(self.state.fleet, clusters=clusters, tenants=tenants)
        workloads = {**{k: snap.defs.workloads[k] for k in partners}, **new}
        current = {k: dict(snap.committed[k]) for k in partners}
        names = {("Workload", k) for k in workloads} | {("PlacementPolicy", k) for k in policies}
        bundle = self.state.working_bundle(workloads, policies, {k: origins[k] for k in names if k in origins},
                                           fleet=fleet)
        plan = engine_place(bundle, current=current, max_moves=0, time_limit=time_limit, warnings=warnings,
                            freeze_current=True)
        assignment = plan.assignment()
        if plan.status.solver in ("Optimal", "Feasible") and any(assignment.get(k) != v for k, v in current.items()):
            metrics.fast_path.labels("fallback", "a linked committed workload would change").inc()
            return None
        metrics.fast_path.labels("small", "").inc()
        return plan, bundle

    def _arrays(self, warm: WarmFleet, new: dict[str, Workload], policies: Mapping[str, PlacementPolicy],
                origins: Mapping[tuple[str, str], Origin], *, time_limit: float, warnings: list[str]
                ) -> tuple[Plan, Bundle] | None:
        """The request on the warm arrays (engine.fast), or ``None`` when that path does not apply.

        Raises:
            InputError: a reference of the request does not resolve (422, as on every path).
        """
        placer = self.placer
        if placer is None or placer.warm is not warm:
            placer = self.placer = FastPlacer(warm)
        workloads = list(new.values())
        pols = [policies.get(f"{w.metadata.namespace}/{w.spec.policy}") if w.spec.policy else None for w in workloads]
        if any(fast_reason(w, p, warm) is not None for w, p in zip(workloads, pols, strict=True)):
            return None
        # the request's references, checked against the fleet as every path checks them (422 names the field);
        # without links a workload's references are its policy's, so a policy that passed once passes again
        groups = {(w.metadata.namespace, w.spec.policy or "", p.model_dump_json() if p is not None else "")
                  for w, p in zip(workloads, pols, strict=True)}
        if not groups <= self._referenced:
            names = {("Workload", k) for k in new} | {("PlacementPolicy", f"{p.metadata.namespace}/{p.metadata.name}")
                                                      for p in pols if p is not None}
            self.state.working_bundle(new, policies, {k: origins[k] for k in names if k in origins})
            self._referenced |= groups
        return placer.place(workloads, pols, deadline=Deadline(time_limit), warnings=warnings)
