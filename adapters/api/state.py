"""The service's state: the warm fleet, the committed placement, and the one lock.

Invariant (no overcommit, karmada#1385): every solve that may commit runs
under :attr:`ServiceState.lock`, against the fleet plus *every* placement
already committed, pinned with a moves budget of 0. Committed placements are
the reservation: live capacity (spec section 6) subtracts only pods Berth does
not manage, so a committed replica keeps its capacity reserved for as long as
it is committed, whether or not its pods already run. Git is written by the
holder of the lock only: one writer.

Readers (dry runs, GETs, what-if, useFleet plans) take the current
:class:`Snapshot` and no lock. A change is made durable before it becomes the
snapshot: write-ahead record in the state file, git commit, done
(:mod:`adapters.api.journal`); a crash in between is resolved on the next start.
"""

from __future__ import annotations

import gc
import logging
import re
import threading
import time
from collections import ChainMap
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from pydantic import BaseModel

from adapters.api.config import ServiceConfig
from adapters.api.fastpath import FastPath
from adapters.api.groups import CommitGroups, Group
from adapters.api.journal import Journal, Pending, Saved, StateFileError
from adapters.api.metrics import ServiceMetrics
from adapters.api.pagination import Paginator
from adapters.api.problems import Problem
from adapters.api.watch import ChangeFeed, changes
from engine import (
    Bundle,
    GitOpsError,
    InputError,
    ObjectiveValues,
    Origin,
    Placement,
    PlacementPolicy,
    Plan,
    PlanMetadata,
    PlanStatus,
    SourceError,
    Workload,
    check_references,
    find_source,
    load_bundle,
    parse_document,
    redact,
)
from engine import place as engine_place

if TYPE_CHECKING:
    from adapters.api.failover import ServiceFailover
    from adapters.failover import Healing
    from adapters.gitops.repo import GitSession
    from engine import LiveFleet, LiveReport

__all__ = ["Principal", "ServiceState", "objective_of", "parse_request_documents", "stale_detail"]

log = logging.getLogger("berth.api")


@dataclass(frozen=True)
class Principal:
    """Who calls: a token's name, and the namespaces it may see (all for admin)."""

    name: str
    admin: bool
    namespaces: frozenset[str] = frozenset()
    sources: Path | None = None  # where its source.path values must resolve (None: sourcesDir/<namespace>)
    digest: str = ""  # sha256 of its token: what binds continue tokens and idempotent answers to it

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
    errors: list[tuple[str | None, str]] = []  # every document's problems, reported together
    first: InputError | None = None
    for i, raw in enumerate(docs):
        kind = raw.get("kind") if isinstance(raw, dict) else None
        try:
            if kind not in allowed:
                raise InputError(f"expected kind {' or '.join(sorted(allowed))}, got {kind!r}", field="kind")
            doc = parse_document(raw, source, i)
        except InputError as exc:
            here = [(f"documents[{i}]" + (f".{f}" if f else ""), m) for f, m in exc.errors]
            first = first or InputError(exc.detail, document=exc.document, field=here[0][0])
            errors += here
            continue
        ns = getattr(doc.metadata, "namespace", None)  # type: ignore[attr-defined]
        if kind in ("Workload", "PlacementPolicy") and not principal.can(ns):
            raise Problem(403, f"this token may not write namespace {ns!r}", field=f"documents[{i}].metadata.namespace")
        out.append((doc, raw))
    if first is not None:
        others = len({f.split("]", 1)[0] for f, _ in errors if f}) - 1
        more = f" (and problems in {others} more document(s), see errors)" if others > 0 else ""
        raise InputError(first.detail + more, document=first.document, field=first.field, errors=errors)
    return out


def _same(a: BaseModel, b: BaseModel) -> bool:
    return a.model_dump(mode="json") == b.model_dump(mode="json")


@dataclass
class _Definitions:
    workloads: dict[str, Workload] = field(default_factory=dict)
    policies: dict[str, PlacementPolicy] = field(default_factory=dict)  # "ns/name"
    origins: dict[tuple[str, str], Origin] = field(default_factory=dict)


def _recover_clone(repo: Path, *, push: bool, pending: bool) -> dict[str, dict[str, int]]:
    """The committed placement from the clone, after undoing a write a crash interrupted.

    A write that was killed leaves its marker: the clone goes back to the commit the write
    started from (its half-written files and unpushed commits dropped). A ``git`` killed
    with it (also before the write began: ``git status`` takes the index lock) can leave
    ``.git/index.lock``; it is removed only when a Berth writer died holding the clone or
    left its marker, while this process holds Berth's own lock (so none is running there).

    With ``push``, the remote branch is fetched and the clone fast-forwarded to it: a write
    killed after its push but before it finished is undone locally yet is on the remote,
    so what the remote holds decides whether a pending change is replayed. If the remote
    cannot be read while a change is pending, the start fails (exit 3) rather than guess.
    """
    from adapters.gitops import read_current
    from adapters.gitops.repo import LOCK_NAME, WRITE_MARKER, GitSession, _stale

    if not repo.is_dir():
        return {}
    lock = repo / ".git" / LOCK_NAME
    died = lock.is_file() and _stale(lock)  # a Berth writer was killed holding the clone
    try:
        with GitSession(repo, create=False) as session:
            if died or (session.git_dir / WRITE_MARKER).is_file():
                (session.git_dir / "index.lock").unlink(missing_ok=True)
            if session.recover_interrupted_write():
                log.warning("%s: undid a write that was interrupted", repo)
            if push:
                _fast_forward(session, pending)
    except GitOpsError as exc:
        if "is not a git repository" not in str(exc):
            raise
    return read_current(repo)


def _fast_forward(session: GitSession, pending: bool, remote: str = "origin") -> None:
    """Move the clone to ``remote``'s branch when it only adds to the clone's commits."""
    from git import GitCommandError

    from adapters.gitops.repo import sanitize

    git = session.repo.git
    branch = session.branch()
    tracking = f"refs/remotes/{remote}/{branch}"
    try:
        git.fetch("-q", remote, f"+refs/heads/{branch}:{tracking}")
    except GitCommandError as exc:
        if pending:
            detail = sanitize(" ".join(str(exc.stderr or exc).split()))
            raise GitOpsError(f"cannot fetch {remote} to recover an interrupted change: {detail}") from None
        log.warning("cannot fetch %s at start; using the clone as it is", remote)
        return
    head = session.head()
    try:
        if head is not None:
            git.merge_base("--is-ancestor", head, tracking)
    except GitCommandError:
        return  # diverged: the next push fetches, rebases or re-writes on top of the remote
    git.reset("-q", "--hard", tracking)


def _load_live(bundle: Bundle, config: ServiceConfig, at: datetime
               ) -> tuple[Bundle, list[str], list[dict[str, str]], LiveReport, LiveFleet]:
    """Live capacity evaluated at ``at``, with the service's ``maxAgeSeconds``.

    Staleness is the age of the *data* (its newest sample against ``at``), not whether
    Prometheus answered. The source always falls back here so that every stale or
    missing cluster is known by name; the service then refuses or reports them
    (``onStale``). Returns the fleet, the warnings, the stale clusters, and the report and
    snapshot that self-healing reads (:mod:`adapters.api.failover`).
    """
    from adapters.live import read_live
    from engine import MetricsSource, find_source

    live = config.live
    source = (find_source(bundle) or MetricsSource.default()).model_copy(deep=True)
    source.spec.max_age = f"{max(1, int(live.max_age_seconds))}s"
    source.spec.on_stale = "fallback"
    source.spec.on_missing = "fallback"
    applied, report, fleet = read_live(bundle, prometheus=live.prometheus, kubeconfig=live.kubeconfig,
                                       contexts=live.contexts, at=at, source=source)
    stale = [{"name": s.name, "reason": s.reason} for s in report.stale]
    stale += [{"name": name, "reason": "no live data within the lookback"} for name in report.missing]
    return applied, list(report.warnings), sorted(stale, key=lambda s: s["name"]), report, fleet


@dataclass(frozen=True)
class Snapshot:
    """One consistent view of what is committed and defined; replaced whole, never changed.

    Readers (dry runs, GETs, what-if) take ``state.snap`` once and need no lock;
    the holder of :attr:`ServiceState.lock` builds the next snapshot and swaps it in
    only after the change is durable.
    """

    committed: dict[str, dict[str, int]]
    defs: _Definitions
    api_raw: dict[tuple[str, str], dict[str, Any]]
    orphans: tuple[str, ...] = ()
    orphan_clusters: frozenset[str] = frozenset()
    #: the resource version of this view (lists and watches): one more per change that became current
    revision: int = 0

    def reserved(self) -> int:
        return sum(sum(v.values()) for v in self.committed.values())


def _changed_clusters(before: dict[str, dict[str, int]], after: dict[str, dict[str, int]],
                      keys: Iterable[str] | None = None) -> set[str]:
    """Clusters where any workload's replica count differs (of ``keys``, default all): the only folders to render."""
    out: set[str] = set()
    for key in (before.keys() | after.keys()) if keys is None else keys:
        old, new = before.get(key, {}), after.get(key, {})
        out |= {c for c in old.keys() | new.keys() if old.get(c, 0) != new.get(c, 0)}
    return out


def _spread(value: dict[str, int] | None) -> dict[str, int] | None:
    clean = {c: n for c, n in (value or {}).items() if n > 0}
    return dict(sorted(clean.items())) or None


class ServiceState:
    """Fleet, definitions and committed placement of one running service."""

    def __init__(self, config: ServiceConfig, *, metrics: ServiceMetrics | None = None,
                 clock: Callable[[], float] = time.time) -> None:
        self.config = config
        self.metrics = metrics or ServiceMetrics()
        self.clock = clock
        #: serialises every change (placements that reserve, deletes): no overcommit
        self.lock = threading.Lock()
        self.base = load_bundle(config.bundle)
        self.fleet = self.base
        self.fleet_warnings: list[str] = []
        self.fleet_ok_at: float | None = clock()
        self.fleet_error: str | None = None
        self.stale_clusters: list[dict[str, str]] = []
        self.live = bool(config.live.prometheus or config.live.kubeconfig or _bundle_names_prometheus(self.base))
        if self.live:
            self.fleet_ok_at = None
        self.failover: ServiceFailover | None = None
        if config.failover is not None:
            if not self.live:
                raise InputError("self-healing needs live inputs: set live.prometheus or live.kubeconfig "
                                 "(or a MetricsSource in the bundle)", field="failover")
            from adapters.api.failover import ServiceFailover

            self.failover = ServiceFailover(self, config.failover)
        self.sources_file = str((config.sources_dir or Path.cwd()) / "_api.yaml")
        self.journal = Journal(config.state_file)
        self.recovered: str | None = None
        self._fleet_origins: tuple[object, dict[tuple[str, str], Origin]] = (None, {})
        first = int(clock() * 1000)  # resource versions of a later process are always higher
        self.snap = replace(self._start(), revision=first)
        self.feed = ChangeFeed(first)
        self.pages = Paginator()
        self.fast = FastPath(self)
        self.groups = CommitGroups(self)
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self.metrics.reserved.set(self.snap.reserved())

    # the current snapshot's parts, for readers that need only one of them
    @property
    def committed(self) -> dict[str, dict[str, int]]:
        return self.snap.committed

    @property
    def defs(self) -> _Definitions:
        return self.snap.defs

    @property
    def api_raw(self) -> dict[tuple[str, str], dict[str, Any]]:
        return self.snap.api_raw

    @property
    def orphans(self) -> list[str]:
        return list(self.snap.orphans)

    # --- start-up and recovery ------------------------------------------------------

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

    def _definitions(self, documents: dict[tuple[str, str], dict[str, Any]]
                     ) -> tuple[_Definitions, dict[tuple[str, str], dict[str, Any]]]:
        defs, raw = self._base_definitions(), {}
        for i, key in enumerate(sorted(documents)):
            doc = parse_document(documents[key], self.sources_file, i)
            raw = self._define(defs, raw, doc, documents[key])
        return defs, raw

    def _start(self) -> Snapshot:
        """Load the state file, bring the clone back to a commit, resolve a pending change."""
        saved = self.journal.load()
        gitops = self.config.gitops
        # without git, the state file holds what was placed over the API
        current = (_recover_clone(gitops.repo, push=gitops.push, pending=saved.pending is not None)
                   if gitops is not None else {**self._file_current(), **saved.placements})
        if saved.pending is not None:
            saved, current = self._resolve(saved, current)
        defs, raw = self._definitions(saved.documents)
        orphans = tuple(sorted(k for k in current if k not in defs.workloads))
        if orphans:
            log.warning("%d committed workload(s) have no definition (orphans), their clusters are not "
                        "written until it is restored: %s", len(orphans), ", ".join(orphans))
        return Snapshot(
            committed={k: v for k, v in current.items() if k in defs.workloads}, defs=defs, api_raw=raw,
            orphans=orphans, orphan_clusters=frozenset(c for k in orphans for c in current[k]),
        )

    def _file_current(self) -> dict[str, dict[str, int]]:
        if self.config.current is None:
            return {}
        from adapters.cli.common import load_assignment

        return load_assignment(self.config.current)

    def _resolve(self, saved: Saved, current: dict[str, dict[str, int]]
                 ) -> tuple[Saved, dict[str, dict[str, int]]]:
        """Replay or roll back the change a crash interrupted, so that git and the state agree.

        Replayed when git holds every "after" spread (the change was committed, the
        crash came before it was marked done); otherwise rolled back, and git is
        written back to the "before" spreads if it holds a part of the change.
        """
        pending = saved.pending
        assert pending is not None
        done = all(_spread(current.get(k)) == _spread(v) for k, v in pending.after.items())
        docs = dict(saved.documents)
        if done:
            for kk in pending.removed:
                docs.pop(kk, None)
            self.recovered = f"replayed {pending.op} {', '.join(sorted(pending.after))} (it was committed)"
        else:
            for kk in pending.added:
                docs.pop(kk, None)
            docs.update(pending.restore)  # an update's previous documents
            target = dict(current)
            for k, v in pending.before.items():
                if _spread(v) is None:
                    target.pop(k, None)
                else:
                    target[k] = dict(v or {})
            if target != current and self.config.gitops is not None:
                defs, _ = self._definitions(docs)
                keep = {k: v for k, v in target.items() if k in defs.workloads}
                bundle = self.working_bundle({k: defs.workloads[k] for k in keep}, defs.policies, defs.origins)
                self._write_git(bundle, self.committed_plan(bundle, keep), _changed_clusters(current, target))
            current = target
            self.recovered = f"rolled back {pending.op} {', '.join(sorted(pending.after))} (it was not committed)"
        log.warning("state file: %s", self.recovered)
        out = Saved(documents=docs, placements=saved.placements if self.config.gitops is None else {})
        if self.config.gitops is None and done:
            out.placements = {k: v for k, v in current.items()}
        try:
            self.journal.save(out)
        except StateFileError as exc:
            raise SourceError(str(exc)) from None
        return out, current

    def _define(self, defs: _Definitions, raw: dict[tuple[str, str], dict[str, Any]], doc: BaseModel,
                data: dict[str, Any]) -> dict[tuple[str, str], dict[str, Any]]:
        """Add one accepted document to ``defs`` (in place) and return the new raw map."""
        kind = str(doc.kind)  # type: ignore[attr-defined]
        key = f"{doc.metadata.namespace}/{doc.metadata.name}"  # type: ignore[attr-defined]
        if isinstance(doc, Workload):
            defs.workloads[key] = doc
        elif isinstance(doc, PlacementPolicy):
            defs.policies[key] = doc
        defs.origins[(kind, key)] = Origin(self.sources_file, len(raw))
        meta = dict(data.get("metadata") or {})
        meta.setdefault("namespace", "default")
        return {**raw, (kind, key): {**data, "metadata": meta}}

    def _save(self, snap: Snapshot, pending: Pending | None,
              documents: dict[tuple[str, str], dict[str, Any]] | None = None, *,
              changed: Iterable[str] | None = None) -> None:
        """Write the state file for ``snap``; 503 (and nothing else happens) when it cannot be written.
        ``changed``: the placements whose spread differs from the last save (the rest is not rendered again)."""
        saved = Saved(documents=dict(snap.api_raw if documents is None else documents), pending=pending,
                      placements=dict(snap.committed) if self.config.gitops is None else {})
        try:
            self.journal.save(saved, None if changed is None else set(changed))
        except StateFileError as exc:
            raise Problem(503, f"{exc}; nothing was committed or reserved", title="State file not writable",
                          slug="state-file", headers={"Retry-After": "30"}) from None

    # --- live fleet -----------------------------------------------------------------

    def refresh(self) -> None:
        """Read live capacity once; on failure keep the last good fleet and say why."""
        if not self.live:
            return
        at = self.clock()
        try:
            fleet, warnings, stale, report, live = _load_live(self.base, self.config, datetime.fromtimestamp(at, UTC))
        except SourceError as exc:
            self.fleet_error = str(exc)
            log.warning("live refresh failed: %s", exc)
        else:
            self.fleet, self.fleet_warnings, self.stale_clusters = fleet, warnings, stale
            self.fast.refreshed(fleet)
            self.fleet_ok_at = self.clock()
            self.fleet_error = None
            if self.failover is not None:  # a failed refresh moves nothing: a monitoring outage is not a lost fleet
                try:
                    self.failover.run(at, report, live)
                except Exception:  # a bug must not stop the refresh loop; nothing was committed
                    log.exception("failover pass failed; nothing was committed")
        self.freshness()

    def start(self) -> None:
        self.fast.start()
        # the fleet's documents and arrays live as long as the service: keep them out of the collector's
        # full passes, which otherwise walk every one of them, tens of milliseconds in the middle of a request
        gc.freeze()
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
            "lastError": redact(self.fleet_error) if self.fleet_error else None,
            "warnings": list(self.fleet_warnings),
        }

    def require_fresh(self) -> None:
        """503 when live inputs are stale and the config says refuse."""
        info = self.freshness()
        if info["stale"] and self.config.live.on_stale == "refuse":
            raise Problem(503, stale_detail(info) + "; the service is configured to refuse (onStale: refuse)",
                          headers={"Retry-After": "30"}, extra={"freshness": info})

    # --- bundles ----------------------------------------------------------------------

    def working_bundle(self, workloads: Mapping[str, Workload], policies: Mapping[str, PlacementPolicy],
                       origins: Mapping[tuple[str, str], Origin], *, fleet: Bundle | None = None) -> Bundle:
        """Fleet (``fleet``, default the service's) + the given workloads + the policies they use,
        closed and cross-checked.

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
        f = fleet or self.fleet
        if self._fleet_origins[0] is not f.origins:  # the fleet's own documents, once per fleet
            self._fleet_origins = (f.origins, {k: v for k, v in f.origins.items()
                                               if k[0] in ("Cluster", "Site", "Tenant", "Objective")})
        bundle = Bundle(
            clusters=f.clusters, sites=f.sites, tenants=f.tenants,
            workloads=[workloads[k] for k in sorted(workloads)], policies=pols,
            objective=f.objective, extras=[],
            origins={**self._fleet_origins[1], **origins},
        )
        check_references(bundle)
        return bundle

    def committed_bundle(self, snap: Snapshot | None = None) -> Bundle:
        snap = snap or self.snap
        d = snap.defs
        return self.working_bundle({k: d.workloads[k] for k in snap.committed}, d.policies, d.origins)

    def committed_plan(self, bundle: Bundle, committed: dict[str, dict[str, int]] | None = None) -> Plan:
        """A committed placement as a plan (for the GitOps writer and what-if baselines)."""
        committed = self.snap.committed if committed is None else committed
        return Plan(
            metadata=PlanMetadata(input_digest=bundle.digest(),
                                  created_at=datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")),
            status=PlanStatus(solver="Feasible", solve_seconds=0.0, objective=ObjectiveValues()),
            placements=[Placement(workload=k, clusters=dict(v)) for k, v in sorted(committed.items())],
        )

    def _write_git(self, bundle: Bundle, plan: Plan, clusters: set[str]) -> dict[str, Any] | None:
        """Commit (and push) the folders of ``clusters`` only: the cost of a change is its own size."""
        gitops = self.config.gitops
        if gitops is None:
            return None
        from adapters.gitops import write_plan

        result = write_plan(bundle, plan, gitops.repo, fmt=gitops.format, commit=True, push=gitops.push,
                            clusters=clusters, credentials_secret=gitops.credentials_secret)
        return {"commits": [c.sha for c in result.commits], "clusters": list(result.changed_clusters),
                "pushed": result.pushed}

    def _apply(self, old: Snapshot, new: Snapshot, pending: Pending, bundle: Bundle | None = None,
               plan: Plan | None = None) -> dict[str, Any] | None:
        """Make ``new`` durable and current: write-ahead record, git, done. Caller holds the lock.

        A state file that cannot be written fails the request before git is touched
        (503). Once git has the change it is acknowledged even if marking it done
        fails: the write-ahead record already holds it, and the next start replays it.
        ``bundle`` and ``plan`` are what the GitOps writer renders; without them, the committed
        placement of ``new`` (made only when there is a repository: it costs the fleet's size).
        """
        changed = _changed_clusters(old.committed, new.committed, pending.after)  # a change names what it changes
        blocked = sorted(changed & old.orphan_clusters)
        if blocked:
            raise Problem(409, f"cluster(s) {', '.join(blocked)} hold committed workloads the service has no "
                               "definition for (orphans, see /readyz); restore the state file before changing them")
        new = replace(new, revision=self.snap.revision + 1)
        if self.config.gitops is None:
            self._save(new, None, changed=pending.after)
            self._swap(old, new, pending)
            return None
        self._save(new, pending, {**old.api_raw, **new.api_raw})
        try:
            if bundle is None or plan is None:
                bundle = self.committed_bundle(new)
                plan = self.committed_plan(bundle, new.committed)
            git = self._write_git(bundle, plan, changed)
        except BaseException:
            try:
                self._save(old, None)
            except Problem:
                log.warning("could not clear the write-ahead record; the next start rolls it back")
            raise
        self._swap(old, new, pending)
        try:
            self._save(new, None)
        except Problem as exc:
            log.warning("committed, but could not mark it done (%s); the next start replays it", exc.detail)
        return git

    def _swap(self, old: Snapshot, new: Snapshot, pending: Pending) -> None:
        """Make the durable ``new`` current, then tell watchers what changed (caller holds the lock)."""
        self.snap = new
        # the gauge moves by what changed (summing the whole fleet per change would cost its size)
        self.metrics.reserved.inc(sum(sum((new.committed.get(k) or {}).values())
                                      - sum((old.committed.get(k) or {}).values()) for k in pending.after))
        self.fast.changed(new, pending.after)
        self.feed.publish(changes(new.revision, old.committed, new.committed, pending.after))

    def commit_failover(self, snap: Snapshot, healing: Healing) -> tuple[str, list[str]]:
        """Commit a failover's new spreads like a placement: write-ahead record, git, done. Caller holds the lock.

        Returns the plan's digest (the id in the commits' trailers) and the commits.
        """
        from adapters.gitops.layout import plan_id

        assert healing.plan is not None and healing.bundle is not None
        changed = sorted(k for k, v in healing.after.items() if _spread(v) != _spread(snap.committed.get(k)))
        new = Snapshot(committed=dict(healing.after), defs=snap.defs, api_raw=snap.api_raw, orphans=snap.orphans,
                       orphan_clusters=snap.orphan_clusters)
        pending = Pending("failover", before={k: snap.committed.get(k) for k in changed},
                          after={k: healing.after[k] for k in changed})
        git = self._apply(snap, new, pending, healing.bundle, healing.plan)
        return plan_id(healing.plan), list((git or {}).get("commits", []))

    # --- placement ----------------------------------------------------------------------

    def place(self, principal: Principal, items: list[tuple[BaseModel, dict[str, Any]]], *, dry_run: bool,
              time_limit: float) -> tuple[Plan, bool, dict[str, Any] | None]:
        """Place the request's workloads against everything committed; commit unless ``dry_run``.

        A dry run solves against one snapshot and takes no lock. A request that
        reserves holds the lock while it is solved against everything committed or
        reserved and is reserved, so two requests never take the same capacity; it is
        then committed with the others reserved meanwhile (:mod:`adapters.api.groups`)
        and answered once that commit is durable.

        Returns the plan (filtered to the request), whether every requested workload
        was placed, and what the GitOps writer did.
        """
        docs = [doc for doc, _ in items]
        req_w = [d for d in docs if isinstance(d, Workload)]
        if not req_w:
            raise InputError("a placement request needs at least one Workload", field="documents")
        keys = [w.key for w in req_w]
        dupes = sorted({k for k in keys if keys.count(k) > 1})
        if dupes:
            raise InputError(f"workload {dupes[0]} appears twice in the request", field="documents")
        git = None
        if dry_run:
            self.require_fresh()
            plan, bundle, ok = self._solve(self.snap, items, time_limit)
        else:
            with self.lock:
                self.require_fresh()
                snap = self.groups.base()
                plan, bundle, ok = self._solve(snap, items, time_limit)
                if ok:
                    group = self._reserve(snap, items, plan)
            if ok:
                git = self.groups.wait(group)
        outcome = ("dryrun" if dry_run else "accepted") if ok else "rejected"
        self.metrics.placements.labels(outcome).inc()
        for u in plan.unplaced:
            if u.workload in keys:
                for r in u.reasons:
                    self.metrics.unplaced.labels(r.code).inc()
        return self.visible_plan(plan, principal, set(keys), bundle), ok, git

    def _solve(self, snap: Snapshot, items: list[tuple[BaseModel, dict[str, Any]]], time_limit: float
               ) -> tuple[Plan, Bundle, bool]:
        docs = [doc for doc, _ in items]
        req_w = [d for d in docs if isinstance(d, Workload)]
        req_p = [d for d in docs if isinstance(d, PlacementPolicy)]
        d = snap.defs
        for w in req_w:
            if w.key in snap.committed:
                raise Problem(409, f"{w.key} is already placed; DELETE it first to place it again",
                              field="documents")
            known = d.workloads.get(w.key)
            if known is not None and not _same(known, w) and ("Workload", w.key) not in snap.api_raw:
                raise Problem(409, f"{w.key} is defined differently in the service's bundle",
                              field="documents")
        # the request's own entries in front of the snapshot's (a copy of those would cost the fleet's size)
        policies: ChainMap[str, PlacementPolicy] = ChainMap({}, d.policies)
        origins: ChainMap[tuple[str, str], Origin] = ChainMap({}, d.origins)
        for p in req_p:
            key = f"{p.metadata.namespace}/{p.metadata.name}"
            known_p = d.policies.get(key)
            if known_p is not None and not _same(known_p, p):
                raise Problem(409, f"PlacementPolicy {key} already exists with a different spec",
                              field="documents")
            policies[key] = p
            origins[("PlacementPolicy", key)] = Origin(self.sources_file, -1)
        for w in req_w:
            origins[("Workload", w.key)] = Origin(self.sources_file, -1)
        started = time.perf_counter()
        # the fast path first: the request against the warm residual (exact, or None: the whole fleet)
        fast = self.fast.solve(snap, {w.key: w for w in req_w}, policies, origins, time_limit=time_limit,
                               warnings=list(self.fleet_warnings))
        if fast is not None:
            plan, bundle = fast
        else:
            workloads = {k: d.workloads[k] for k in snap.committed}
            workloads.update({w.key: w for w in req_w})
            bundle = self.working_bundle(workloads, policies, origins)
            plan = engine_place(bundle, current=dict(snap.committed), max_moves=0, time_limit=time_limit,
                                warnings=list(self.fleet_warnings), freeze_current=True)
        self.metrics.solve.labels("placements").observe(time.perf_counter() - started)
        assignment = plan.assignment()
        ok = plan.status.solver in ("Optimal", "Feasible") and all(w.key in assignment for w in req_w)
        # the small bundle holds only the linked committed workloads (checked by the fast path itself)
        if ok and fast is None and any(assignment.get(k) != v for k, v in snap.committed.items()):
            raise SourceError("internal: a committed placement moved")  # guarded by maxMoves 0
        return plan, bundle, ok

    def _reserve(self, snap: Snapshot, items: list[tuple[BaseModel, dict[str, Any]]], plan: Plan) -> Group:
        """Reserve a solved request: the next snapshot, in the open commit group (the caller holds the lock)."""
        keys = [d.key for d, _ in items if isinstance(d, Workload)]
        assignment = plan.assignment()
        blocked = sorted({c for k in keys for c in assignment[k]} & snap.orphan_clusters)
        if blocked:
            raise Problem(409, f"cluster(s) {', '.join(blocked)} hold committed workloads the service has no "
                               "definition for (orphans, see /readyz); restore the state file before changing them")
        committed = {**snap.committed, **{k: assignment[k] for k in keys}}  # nothing committed moved (_solve)
        defs = _Definitions(dict(snap.defs.workloads), dict(snap.defs.policies), dict(snap.defs.origins))
        raw, added = snap.api_raw, []
        for doc, data in items:
            kind = str(doc.kind)  # type: ignore[attr-defined]
            key = f"{doc.metadata.namespace}/{doc.metadata.name}"  # type: ignore[attr-defined]
            if kind == "Workload" or (kind, key) not in defs.origins:
                raw = self._define(defs, raw, doc, data)
                if (kind, key) not in snap.api_raw:
                    added.append((kind, key))
        new = Snapshot(committed=committed, defs=defs, api_raw=raw, orphans=snap.orphans,
                       orphan_clusters=snap.orphan_clusters, revision=snap.revision)
        return self.groups.reserve(new, {k: committed[k] for k in keys}, added)

    def delete(self, principal: Principal, key: str, *, if_match: str | None = None) -> dict[str, Any] | None:
        """Remove a committed placement (404 when absent or not visible; 412 when ``if_match``
        does not name its ETag) and commit."""
        from adapters.api.conditional import current_etag
        from adapters.api.conditional import if_match as check_if_match

        ns = key.split("/", 1)[0]
        with self.groups.exclusive():
            snap = self.snap
            if not principal.can(ns) or key not in snap.committed:
                raise Problem(404, f"no placement {key}")
            check_if_match(if_match, current_etag(snap, key))
            self.require_fresh()
            name = key.split("/", 1)[1]
            for other in snap.committed:
                if other == key or not other.startswith(ns + "/"):
                    continue
                w = snap.defs.workloads[other]
                pol = snap.defs.policies.get(f"{ns}/{w.spec.policy}") if w.spec.policy else None
                needs = set(w.spec.depends_on)
                if pol is not None and pol.spec.affinity is not None:
                    needs |= set(pol.spec.affinity.workloads)
                if name in needs:
                    raise Problem(409, f"{other} depends on or is co-located with {key}; delete it first")
            committed = {k: v for k, v in snap.committed.items() if k != key}
            defs = _Definitions(dict(snap.defs.workloads), dict(snap.defs.policies), dict(snap.defs.origins))
            raw = dict(snap.api_raw)
            removed = []
            if raw.pop(("Workload", key), None) is not None:  # defined over the API: forget it
                defs.workloads.pop(key, None)
                defs.origins.pop(("Workload", key), None)
                removed.append(("Workload", key))
            new = Snapshot(committed=committed, defs=defs, api_raw=raw, orphans=snap.orphans,
                           orphan_clusters=snap.orphan_clusters)
            pending = Pending("delete", before={key: snap.committed[key]}, after={key: None}, removed=removed)
            return self._apply(snap, new, pending)

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

        ``bound``, ``gap``, ``boundAtPlacement``, ``gapAtPlacement`` and ``levels`` describe the whole
        fleet's solve and are left out.
        """
        placements = [p.model_copy() for p in plan.placements if p.workload in keys]
        unplaced = [u.model_copy(deep=True) for u in plan.unplaced if u.workload in keys]
        warnings = list(plan.status.warnings)
        if unplaced or warnings:  # other tenants' names can only be in reasons and warnings
            hidden = self.hidden_keys(principal)
            for u in unplaced:
                for r in u.reasons:
                    r.message = self.scrub(r.message, hidden)
            warnings = [w for w in warnings if self.scrub(w, hidden) == w]
        status = plan.status.model_copy(update={"objective": objective_of(bundle, placements), "bound": None,
                                                "gap": None, "bound_at_placement": None, "gap_at_placement": None,
                                                "levels": [], "warnings": warnings})
        # a shallow copy with new lists: the request's own entries, copied (a deep copy cost the whole plan)
        return plan.model_copy(update={
            "status": status, "placements": placements, "unplaced": unplaced,
            "moves": [m.model_copy() for m in plan.moves if m.workload in keys],
            "not_applied": [n.model_copy(deep=True) for n in plan.not_applied]})



def _bundle_names_prometheus(bundle: Bundle) -> bool:
    """Whether the bundle's MetricsSource names a Prometheus (a global layer or per-cluster servers)."""
    source = find_source(bundle)
    return source is not None and source.spec.prometheus.configured


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
    from engine import assignment_values

    v = assignment_values(bundle, {p.workload: p.clusters for p in placements})
    return ObjectiveValues(placed_by_priority=v["placedByPriority"], cost=v["cost"], latency=v["latency"])
