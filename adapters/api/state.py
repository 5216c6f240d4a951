"""The service's state: the warm fleet, the committed placement, and the one lock.

Invariant (no overcommit, karmada#1385): every solve that may commit runs
under :attr:`ServiceState.lock`, against the fleet plus *every* placement
already committed, pinned with a moves budget of 0. Committed placements are
the reservation: live capacity (spec section 6) subtracts only pods Berth does
not manage, so a committed replica keeps its capacity reserved for as long as
it is committed, whether or not its pods already run. Git is written by the
holder of the lock only: one writer.
"""

from __future__ import annotations

import logging
import re
import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel

from adapters.api.config import ServiceConfig
from adapters.api.metrics import ServiceMetrics
from adapters.api.problems import Problem
from engine.bundle import Bundle, Origin, check_references, load_bundle, parse_document
from engine.errors import InputError, SourceError
from engine.plan import ObjectiveValues, Placement, Plan, PlanMetadata, PlanStatus
from engine.planner import place as engine_place
from engine.resources import PlacementPolicy, Workload

__all__ = ["Principal", "ServiceState", "objective_of", "parse_request_documents", "stale_detail"]

log = logging.getLogger("berth.api")


@dataclass(frozen=True)
class Principal:
    """Who calls: a token's name, and the namespaces it may see (all for admin)."""

    name: str
    admin: bool
    namespaces: frozenset[str] = frozenset()
    sources: Path | None = None  # where its source.path values must resolve (None: sourcesDir/<namespace>)

    def can(self, namespace: str | None) -> bool:
        return self.admin or (namespace or "default") in self.namespaces


def parse_request_documents(
    docs: list[dict[str, Any]], *, kinds: Iterable[str], principal: Principal, source: str | None = None,
) -> list[tuple[BaseModel, dict[str, Any]]]:
    """Validate request documents one by one (references are checked later, with the state).

    Raises:
        InputError: a document is invalid (422), field ``documents[i]...``.
        Problem: 403 when a namespaced document is outside the token's namespaces.
    """
    allowed = set(kinds)
    out: list[tuple[BaseModel, dict[str, Any]]] = []
    for i, raw in enumerate(docs):
        kind = raw.get("kind") if isinstance(raw, dict) else None
        if kind not in allowed:
            raise InputError(f"expected kind {' or '.join(sorted(allowed))}, got {kind!r}",
                             field=f"documents[{i}].kind")
        try:
            doc = parse_document(raw, source, i)
        except InputError as exc:
            raise InputError(exc.detail, document=exc.document,
                             field=f"documents[{i}]" + (f".{exc.field}" if exc.field else "")) from None
        ns = getattr(doc.metadata, "namespace", None)  # type: ignore[attr-defined]
        if kind in ("Workload", "PlacementPolicy") and not principal.can(ns):
            raise Problem(403, f"this token may not write namespace {ns!r}", field=f"documents[{i}].metadata.namespace")
        out.append((doc, raw))
    return out


def _same(a: BaseModel, b: BaseModel) -> bool:
    return a.model_dump(mode="json") == b.model_dump(mode="json")


@dataclass
class _Definitions:
    workloads: dict[str, Workload] = field(default_factory=dict)
    policies: dict[str, PlacementPolicy] = field(default_factory=dict)  # "ns/name"
    origins: dict[tuple[str, str], Origin] = field(default_factory=dict)


def _load_live(bundle: Bundle, config: ServiceConfig, at: datetime) -> tuple[Bundle, list[str], list[dict[str, str]]]:
    """Live capacity evaluated at ``at``, with the service's ``maxAgeSeconds``.

    Staleness is the age of the *data* (its newest sample against ``at``), not whether
    Prometheus answered. The source always falls back here so that every stale or
    missing cluster is known by name; the service then refuses or reports them
    (``onStale``). Returns the fleet, the warnings and the stale clusters.
    """
    from adapters.live import read_live
    from engine.live import MetricsSource, find_source

    live = config.live
    source = (find_source(bundle) or MetricsSource.default()).model_copy(deep=True)
    source.spec.max_age = f"{max(1, int(live.max_age_seconds))}s"
    source.spec.on_stale = "fallback"
    source.spec.on_missing = "fallback"
    applied, report, _ = read_live(bundle, prometheus=live.prometheus, kubeconfig=live.kubeconfig,
                                   contexts=live.contexts, at=at, source=source)
    stale = [{"name": s.name, "reason": s.reason} for s in report.stale]
    stale += [{"name": name, "reason": "no live data within the lookback"} for name in report.missing]
    return applied, list(report.warnings), sorted(stale, key=lambda s: s["name"])


class ServiceState:
    """Fleet, definitions and committed placement of one running service."""

    def __init__(self, config: ServiceConfig, *, metrics: ServiceMetrics | None = None,
                 clock: Callable[[], float] = time.time) -> None:
        self.config = config
        self.metrics = metrics or ServiceMetrics()
        self.clock = clock
        self.lock = threading.Lock()
        self.base = load_bundle(config.bundle)
        self.fleet = self.base
        self.fleet_warnings: list[str] = []
        self.fleet_ok_at: float | None = clock()
        self.fleet_error: str | None = None
        self.stale_clusters: list[dict[str, str]] = []
        self.live = bool(config.live.prometheus or config.live.kubeconfig)
        if self.live:
            self.fleet_ok_at = None
        self.sources_file = str((config.sources_dir or Path.cwd()) / "_api.yaml")
        self.api_raw: dict[tuple[str, str], dict[str, Any]] = {}
        self.defs = self._base_definitions()
        self._load_state_file()
        self.committed: dict[str, dict[str, int]] = self._read_current()
        self.orphans = sorted(k for k in self.committed if k not in self.defs.workloads)
        self.committed = {k: v for k, v in self.committed.items() if k in self.defs.workloads}
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self.metrics.reserved.set(sum(sum(v.values()) for v in self.committed.values()))

    # --- start-up -----------------------------------------------------------------

    def _base_definitions(self) -> _Definitions:
        d = _Definitions()
        for w in self.base.workloads:
            d.workloads[w.key] = w
            d.origins[("Workload", w.key)] = self.base.origin("Workload", w.key)
        for p in self.base.policies:
            key = f"{p.metadata.namespace}/{p.metadata.name}"
            d.policies[key] = p
            d.origins[("PlacementPolicy", key)] = self.base.origin("PlacementPolicy", key)
        return d

    def _load_state_file(self) -> None:
        path = self.config.state_file
        if path is None or not path.is_file():
            return
        raws = [d for d in yaml.safe_load_all(path.read_text(encoding="utf-8")) if d]
        for i, raw in enumerate(raws):
            doc = parse_document(raw, self.sources_file, i)
            self._define(doc, raw)

    def _read_current(self) -> dict[str, dict[str, int]]:
        gitops = self.config.gitops
        if gitops is not None and gitops.repo.is_dir():
            from adapters.gitops import read_current

            return read_current(gitops.repo)
        if self.config.current is not None:
            from adapters.cli.common import load_assignment

            return load_assignment(self.config.current)
        return {}

    def _define(self, doc: BaseModel, raw: dict[str, Any]) -> None:
        kind = str(doc.kind)  # type: ignore[attr-defined]
        key = f"{doc.metadata.namespace}/{doc.metadata.name}"  # type: ignore[attr-defined]
        if isinstance(doc, Workload):
            self.defs.workloads[key] = doc
        elif isinstance(doc, PlacementPolicy):
            self.defs.policies[key] = doc
        self.defs.origins[(kind, key)] = Origin(self.sources_file, len(self.api_raw))
        meta = dict(raw.get("metadata") or {})
        meta.setdefault("namespace", "default")
        self.api_raw[(kind, key)] = {**raw, "metadata": meta}

    def _save_state_file(self) -> None:
        path = self.config.state_file
        if path is None:
            return
        from adapters.cli.common import atomic_write

        text = yaml.safe_dump_all([self.api_raw[k] for k in sorted(self.api_raw)], sort_keys=False)
        atomic_write(path, text)

    # --- live fleet -----------------------------------------------------------------

    def refresh(self) -> None:
        """Read live capacity once; on failure keep the last good fleet and say why."""
        if not self.live:
            return
        try:
            fleet, warnings, stale = _load_live(self.base, self.config, datetime.fromtimestamp(self.clock(), UTC))
        except SourceError as exc:
            with self.lock:
                self.fleet_error = str(exc)
            log.warning("live refresh failed: %s", exc)
        else:
            with self.lock:
                self.fleet, self.fleet_warnings, self.stale_clusters = fleet, warnings, stale
                self.fleet_ok_at = self.clock()
                self.fleet_error = None
        self.freshness()

    def start(self) -> None:
        if not self.live:
            return
        self.refresh()

        def loop() -> None:
            while not self._stop.wait(self.config.live.refresh_seconds):
                self.refresh()

        self._thread = threading.Thread(target=loop, name="berth-fleet-refresh", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=5)

    def freshness(self) -> dict[str, Any]:
        now = self.clock()
        age = None if self.fleet_ok_at is None else max(0.0, now - self.fleet_ok_at)
        old = self.live and (age is None or age > self.config.live.max_age_seconds)
        stale = bool(old or self.stale_clusters)
        used = "none" if self.config.live.on_stale == "refuse" else "file"
        self.metrics.fleet_age.set(age or 0.0)
        self.metrics.fleet_stale.set(1 if stale else 0)
        refreshed = (None if self.fleet_ok_at is None
                     else datetime.fromtimestamp(self.fleet_ok_at, UTC).strftime("%Y-%m-%dT%H:%M:%SZ"))
        return {
            "source": "live" if self.live else "file",
            "refreshedAt": refreshed,
            "ageSeconds": None if age is None else round(age, 3),
            "stale": stale,
            "staleClusters": [{**c, "capacityFrom": used} for c in self.stale_clusters],
            "onStale": self.config.live.on_stale,
            "lastError": self.fleet_error,
            "warnings": list(self.fleet_warnings),
        }

    def require_fresh(self) -> None:
        """503 when live inputs are stale and the config says refuse."""
        info = self.freshness()
        if info["stale"] and self.config.live.on_stale == "refuse":
            raise Problem(503, stale_detail(info) + "; the service is configured to refuse (onStale: refuse)",
                          headers={"Retry-After": "30"}, extra={"freshness": info})

    # --- bundles ----------------------------------------------------------------------

    def working_bundle(self, workloads: dict[str, Workload], policies: dict[str, PlacementPolicy],
                       origins: dict[tuple[str, str], Origin]) -> Bundle:
        """Fleet + the given workloads + the policies they use, closed and cross-checked.

        Anti-affinity to a workload that is not placed binds nothing, so such names are
        dropped from the copy of the policy; affinity and ``dependsOn`` to a workload
        that is not placed are errors (422): place it first.
        """
        used = {f"{w.metadata.namespace}/{w.spec.policy}" for w in workloads.values() if w.spec.policy}
        pols: list[PlacementPolicy] = []
        for key in sorted(used & policies.keys()):
            policy = policies[key]
            anti = policy.spec.anti_affinity
            if anti is not None:
                ns = policy.metadata.namespace
                keep = [n for n in anti.workloads if f"{ns}/{n}" in workloads]
                if keep != anti.workloads:
                    policy = policy.model_copy(deep=True)
                    assert policy.spec.anti_affinity is not None
                    policy.spec.anti_affinity.workloads = keep
            pols.append(policy)
        f = self.fleet
        bundle = Bundle(
            clusters=f.clusters, sites=f.sites, tenants=f.tenants,
            workloads=[workloads[k] for k in sorted(workloads)], policies=pols,
            objective=f.objective, extras=[],
            origins={**{k: v for k, v in f.origins.items() if k[0] in ("Cluster", "Site", "Tenant", "Objective")},
                     **origins},
        )
        check_references(bundle)
        return bundle

    def committed_bundle(self) -> Bundle:
        d = self.defs
        return self.working_bundle({k: d.workloads[k] for k in self.committed}, d.policies, d.origins)

    def committed_plan(self, bundle: Bundle) -> Plan:
        """The committed placement as a plan (for the GitOps writer and what-if baselines)."""
        return Plan(
            metadata=PlanMetadata(input_digest=bundle.digest(),
                                  created_at=datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")),
            status=PlanStatus(solver="Feasible", solve_seconds=0.0, objective=ObjectiveValues()),
            placements=[Placement(workload=k, clusters=dict(v)) for k, v in sorted(self.committed.items())],
        )

    def _write_git(self, bundle: Bundle, plan: Plan) -> dict[str, Any] | None:
        gitops = self.config.gitops
        if gitops is None:
            return None
        from adapters.gitops import write_plan

        result = write_plan(bundle, plan, gitops.repo, fmt=gitops.format, commit=True, push=gitops.push)
        return {"commits": [c.sha for c in result.commits], "clusters": list(result.changed_clusters),
                "pushed": result.pushed}

    # --- placement ----------------------------------------------------------------------

    def place(self, principal: Principal, items: list[tuple[BaseModel, dict[str, Any]]], *, dry_run: bool,
              time_limit: float) -> tuple[Plan, bool, dict[str, Any] | None]:
        """Place the request's workloads against everything committed; commit unless ``dry_run``.

        Returns the plan (filtered to the request), whether every requested workload
        was placed, and what the GitOps writer did.
        """
        docs = [doc for doc, _ in items]
        req_w = [d for d in docs if isinstance(d, Workload)]
        req_p = [d for d in docs if isinstance(d, PlacementPolicy)]
        if not req_w:
            raise InputError("a placement request needs at least one Workload", field="documents")
        keys = [w.key for w in req_w]
        dupes = sorted({k for k in keys if keys.count(k) > 1})
        if dupes:
            raise InputError(f"workload {dupes[0]} appears twice in the request", field="documents")
        with self.lock:
            self.require_fresh()
            d = self.defs
            for w in req_w:
                if w.key in self.committed:
                    raise Problem(409, f"{w.key} is already placed; DELETE it first to place it again",
                                  field="documents")
                known = d.workloads.get(w.key)
                if known is not None and not _same(known, w) and ("Workload", w.key) not in self.api_raw:
                    raise Problem(409, f"{w.key} is defined differently in the service's bundle",
                                  field="documents")
            policies = dict(d.policies)
            origins = dict(d.origins)
            for p in req_p:
                key = f"{p.metadata.namespace}/{p.metadata.name}"
                known_p = d.policies.get(key)
                if known_p is not None and not _same(known_p, p):
                    raise Problem(409, f"PlacementPolicy {key} already exists with a different spec",
                                  field="documents")
                policies[key] = p
                origins[("PlacementPolicy", key)] = Origin(self.sources_file, -1)
            workloads = {k: d.workloads[k] for k in self.committed}
            for w in req_w:
                workloads[w.key] = w
                origins[("Workload", w.key)] = Origin(self.sources_file, -1)
            bundle = self.working_bundle(workloads, policies, origins)
            started = time.perf_counter()
            plan = engine_place(bundle, current=dict(self.committed), max_moves=0, time_limit=time_limit,
                                warnings=list(self.fleet_warnings), freeze_current=True)
            self.metrics.solve.labels("placements").observe(time.perf_counter() - started)
            assignment = plan.assignment()
            ok = plan.status.solver in ("Optimal", "Feasible") and all(k in assignment for k in keys)
            if ok and any(assignment.get(k) != v for k, v in self.committed.items()):
                raise SourceError("internal: a committed placement moved")  # guarded by maxMoves 0
            git = None
            if ok and not dry_run:
                git = self._write_git(bundle, plan)
                self.committed = {k: v for k, v in assignment.items() if k in workloads}
                for doc, raw in items:
                    kind = str(doc.kind)  # type: ignore[attr-defined]
                    key = f"{doc.metadata.namespace}/{doc.metadata.name}"  # type: ignore[attr-defined]
                    if kind == "Workload" or (kind, key) not in d.origins:
                        self._define(doc, raw)
                self._save_state_file()
                self.metrics.reserved.set(sum(sum(v.values()) for v in self.committed.values()))
        outcome = ("dryrun" if dry_run else "accepted") if ok else "rejected"
        self.metrics.placements.labels(outcome).inc()
        for u in plan.unplaced:
            if u.workload in keys:
                for r in u.reasons:
                    self.metrics.unplaced.labels(r.code).inc()
        return self.visible_plan(plan, principal, set(keys), bundle), ok, git

    def delete(self, principal: Principal, key: str) -> dict[str, Any] | None:
        """Remove a committed placement (404 when absent or not visible) and commit."""
        ns = key.split("/", 1)[0]
        with self.lock:
            if not principal.can(ns) or key not in self.committed:
                raise Problem(404, f"no placement {key}")
            self.require_fresh()
            name = key.split("/", 1)[1]
            for other in self.committed:
                if other == key or not other.startswith(ns + "/"):
                    continue
                w = self.defs.workloads[other]
                pol = self.defs.policies.get(f"{ns}/{w.spec.policy}") if w.spec.policy else None
                needs = set(w.spec.depends_on)
                if pol is not None and pol.spec.affinity is not None:
                    needs |= set(pol.spec.affinity.workloads)
                if name in needs:
                    raise Problem(409, f"{other} depends on or is co-located with {key}; delete it first")
            remaining = {k: v for k, v in self.committed.items() if k != key}
            before = self.committed
            self.committed = remaining
            try:
                bundle = self.committed_bundle()
                git = self._write_git(bundle, self.committed_plan(bundle))
            except BaseException:
                self.committed = before
                raise
            self.api_raw.pop(("Workload", key), None)
            self._save_state_file()
            self.metrics.reserved.set(sum(sum(v.values()) for v in self.committed.values()))
            return git

    # --- what a principal may see -----------------------------------------------------------

    def hidden_keys(self, principal: Principal) -> list[str]:
        if principal.admin:
            return []
        return [k for k in self.defs.workloads if not principal.can(k.split("/", 1)[0])]

    def scrub(self, text: str, hidden: list[str]) -> str:
        for key in sorted(hidden, key=len, reverse=True):
            if key in text:
                text = re.sub(rf"(?<![\w./-]){re.escape(key)}(?![\w-])", "(another tenant's workload)", text)
        return text

    def visible_plan(self, plan: Plan, principal: Principal, keys: set[str], bundle: Bundle) -> Plan:
        """The plan restricted to ``keys``; objective recomputed for them; no other tenant's names.

        ``bound``, ``gap`` and ``levels`` describe the whole fleet's solve and are left out.
        """
        hidden = self.hidden_keys(principal)
        out = plan.model_copy(deep=True)
        out.placements = [p for p in out.placements if p.workload in keys]
        out.status.objective = objective_of(bundle, out.placements)
        out.status.bound = None
        out.status.gap = None
        out.status.levels = []
        out.unplaced = [u for u in out.unplaced if u.workload in keys]
        out.moves = [m for m in out.moves if m.workload in keys]
        for u in out.unplaced:
            for r in u.reasons:
                r.message = self.scrub(r.message, hidden)
        out.status.warnings = [w for w in out.status.warnings if self.scrub(w, hidden) == w]
        return out



def stale_detail(info: dict[str, Any]) -> str:
    """One sentence: why the live fleet is stale, naming the stale clusters."""
    parts: list[str] = []
    if info["staleClusters"]:
        parts.append("stale clusters: " + "; ".join(f"{c['name']} ({c['reason']})" for c in info["staleClusters"]))
    if info["ageSeconds"] is None:
        parts.append("live inputs were never read")
    elif info["ageSeconds"] > 0 and not info["staleClusters"]:
        parts.append(f"last refreshed {info['ageSeconds']} s ago")
    if info["lastError"]:
        parts.append(f"last error: {info['lastError']}")
    return "live fleet data is stale: " + ", ".join(parts)


def objective_of(bundle: Bundle, placements: list[Placement]) -> ObjectiveValues:
    """Cost, latency and replicas by priority of some placements (section 3, natural units)."""
    from engine.reoptimize import assignment_values

    v = assignment_values(bundle, {p.workload: p.clusters for p in placements})
    return ObjectiveValues(placed_by_priority=v["placedByPriority"], cost=v["cost"], latency=v["latency"])
