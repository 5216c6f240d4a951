"""Self-healing: re-place what a lost or shrunken cluster holds, within a moves budget.

The one home of the failover logic; ``berth serve`` (:mod:`adapters.api.failover`) and
``berth watch`` (:mod:`adapters.cli.watch`) call the same three steps on every pass:

1. :func:`assess` reads one live snapshot against what is committed: a cluster is **lost**
   when its metrics stopped (stale beyond ``maxAge``, missing from the lookback, its own
   Prometheus unreachable) or none of its nodes takes pods (all cordoned, NotReady or
   tainted); it is **short** when its live free capacity is below what Berth committed there.
2. :class:`Tracker` holds each troubled cluster's first sighting: nothing moves before a
   cluster has been in trouble for ``graceSeconds`` without a healthy pass in between (a
   flapping cluster never moves workloads), and a cluster that comes back moves nothing back.
3. :func:`heal` asks the engine (``place`` with the committed placement as ``current``, the
   moves budget, and every workload that does not touch a due cluster ``frozen``) for a plan
   in which a lost cluster has no room. It either re-places every affected workload or
   commits nothing: the result says what could not be placed and why.

Committing is the caller's: the service through its journaled, locked write path, the CLI
through its locked clone. Both record the :class:`Event` values returned here.
"""

from __future__ import annotations

import threading
from collections import deque
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field
from pydantic.alias_generators import to_camel

from engine import Bundle, LiveFleet, LiveReport, Plan, Workload, format_quantity, place, redact

__all__ = [
    "Event",
    "EventLog",
    "FailoverSettings",
    "Healing",
    "Tracker",
    "Trouble",
    "assess",
    "heal",
    "lost_capacity",
    "run_pass",
]

Assignment = dict[str, dict[str, int]]
EventType = Literal["ClusterLost", "ClusterShort", "ClusterRecovered", "FailoverCommitted",
                    "FailoverInfeasible", "FailoverFailed"]


class FailoverSettings(BaseModel):
    """``failover:`` of the service config (and ``berth watch``'s options)."""

    model_config = ConfigDict(extra="forbid", alias_generator=to_camel, populate_by_name=True)

    #: replicas one failover may move (spec 2.10, counted by the section-3 formula)
    max_moves: int = Field(ge=0, le=1_000_000)
    #: a cluster must be in trouble this long, without a healthy pass, before anything moves
    grace_seconds: float = Field(default=300.0, ge=0, le=31_536_000)
    time_limit_seconds: float = Field(default=10.0, gt=0, le=600)


# --- 1. what is wrong ---------------------------------------------------------------------


@dataclass(frozen=True)
class Trouble:
    cluster: str
    kind: Literal["lost", "short"]
    reason: str


def _usage(spread_of: Iterable[tuple[Workload, int]]) -> dict[str, int]:
    used: dict[str, int] = {}
    for w, n in spread_of:
        for r, amount in [*w.spec.resources.items(), ("pods", 1)]:
            used[r] = used.get(r, 0) + n * amount
    return used


def assess(fleet: Bundle, report: LiveReport, live: LiveFleet, committed: Assignment) -> dict[str, Trouble]:
    """The clusters of ``fleet`` (live capacity applied) that are lost or short, with why.

    ``committed`` workloads must be in ``fleet``. A cluster without live data keeps the
    file's capacity in a plan (``onStale``/``onMissing: fallback``) but is lost here: its
    metrics stopped, so nobody knows that it runs anything (Karmada taints such a cluster
    ``NoExecute`` after its grace period for the same reason).
    """
    stale = {s.name: s.reason for s in report.stale}
    workloads = {w.key: w for w in fleet.workloads}
    out: dict[str, Trouble] = {}
    for cluster in fleet.clusters:
        name = cluster.metadata.name
        seen = live.clusters.get(name)
        if name in stale:
            out[name] = Trouble(name, "lost", f"its metrics stopped: {stale[name]}")
        elif name in report.missing:
            out[name] = Trouble(name, "lost", f"its metrics stopped: no live data in {report.source}")
        elif seen is not None and seen.allocatable and not any(seen.allocatable.values()):
            out[name] = Trouble(name, "lost", "none of its nodes takes pods (all cordoned, NotReady or tainted)")
        else:
            here = [(workloads[k], n) for k, spread in committed.items() if (n := spread.get(name, 0)) > 0
                    and k in workloads]
            used = _usage(here)
            if "pods" not in cluster.spec.capacity:
                used.pop("pods", None)  # pods count only where the cluster lists them (spec 2.3)
            cap = cluster.spec.capacity
            over = sorted(r for r, n in used.items() if n > cap.get(r, 0))
            if over:
                parts = [f"{r} {format_quantity(r, cap.get(r, 0))} free, {format_quantity(r, used[r])} committed"
                         for r in over]
                out[name] = Trouble(name, "short", "its free capacity is below what Berth committed there: "
                                    + "; ".join(parts))
    return out


# --- 2. how long ----------------------------------------------------------------------------


@dataclass
class Tracker:
    """First sighting of each troubled cluster; what a pass may act on (``graceSeconds``)."""

    grace_seconds: float
    since: dict[str, float] = field(default_factory=dict)
    kinds: dict[str, str] = field(default_factory=dict)
    #: what the last infeasible attempt was about, so that one situation is recorded once
    last_infeasible: str | None = None
    #: short clusters a failover relieved: fine again because of it, which is no news
    healed: set[str] = field(default_factory=set)

    def observe(self, at: float, troubles: dict[str, Trouble]) -> tuple[list[Trouble], list[str], dict[str, Trouble]]:
        """Record a pass at ``at``: (newly troubled, back to healthy, due for failover)."""
        new = [t for name, t in sorted(troubles.items()) if name not in self.since]
        gone = sorted(name for name in self.since if name not in troubles)
        back = [name for name in gone if not (name in self.healed and self.kinds.get(name) == "short")]
        for name in gone:
            del self.since[name]
            self.kinds.pop(name, None)
            self.healed.discard(name)
        for t in new:
            self.since[t.cluster] = at
        for name, t in troubles.items():
            self.kinds[name] = t.kind
        due = {name: t for name, t in troubles.items() if at - self.since[name] >= self.grace_seconds}
        return new, back, due

    def to_json(self) -> dict[str, Any]:
        return {"since": dict(self.since), "kinds": dict(self.kinds), "lastInfeasible": self.last_infeasible,
                "healed": sorted(self.healed)}

    @classmethod
    def from_json(cls, grace_seconds: float, data: dict[str, Any]) -> Tracker:
        return cls(grace_seconds, since={str(k): float(v) for k, v in (data.get("since") or {}).items()},
                   kinds={str(k): str(v) for k, v in (data.get("kinds") or {}).items()},
                   last_infeasible=data.get("lastInfeasible"), healed={str(c) for c in data.get("healed") or []})


# --- 3. what moves ------------------------------------------------------------------------------


@dataclass
class Healing:
    """What :func:`heal` decided. ``plan`` is committed only when ``outcome`` is ``moved``."""

    outcome: Literal["none", "moved", "infeasible"]
    affected: list[str] = field(default_factory=list)
    plan: Plan | None = None
    bundle: Bundle | None = None
    after: Assignment = field(default_factory=dict)
    unplaced: list[dict[str, Any]] = field(default_factory=list)
    why: str = ""

    @property
    def changed_clusters(self) -> list[str]:
        moved = self.plan.moves if self.plan is not None else []
        return sorted({c for m in moved for c in (m.from_, m.to) if c})


def lost_capacity(bundle: Bundle, lost: Iterable[str], committed: Assignment | None = None,
                  due: Iterable[str] = ()) -> Bundle:
    """A copy of ``bundle`` where the ``lost`` clusters have no room for anything (``pods`` 0 too).

    With ``committed``, a cluster that is not ``due`` (short, but still in its grace period)
    keeps room for what is committed there and no more: what it holds stays, nothing new comes.
    """
    out = bundle.copy()
    names, due = set(lost), set(due) | set(lost)
    requested = {r for w in out.workloads for r in w.spec.resources}
    workloads = {w.key: w for w in out.workloads}
    for c in out.clusters:
        name = c.metadata.name
        if name in names:
            c.spec.capacity = {r: 0 for r in {*c.spec.capacity, *requested, "pods"}}
        elif committed and name not in due:
            used = _usage((workloads[k], n) for k, spread in committed.items()
                          if (n := spread.get(name, 0)) > 0 and k in workloads)
            if "pods" not in c.spec.capacity:
                used.pop("pods", None)
            c.spec.capacity = {**c.spec.capacity,
                               **{r: n for r, n in used.items() if n > c.spec.capacity.get(r, 0)}}
    return out


def _affected(bundle: Bundle, committed: Assignment, due: Iterable[str]) -> set[str]:
    """Workloads with replicas on a due cluster, and (transitively) those co-located with them."""
    due = set(due)
    out = {k for k, spread in committed.items() if any(n > 0 and c in due for c, n in spread.items())}
    selector = bundle.policy_selector()
    follows: dict[str, set[str]] = {}
    for w in bundle.workloads:
        policy = selector.policy_for(w)
        if policy is not None and policy.spec.affinity is not None:
            follows[w.key] = {f"{w.metadata.namespace}/{n}" for n in policy.spec.affinity.workloads}
    grown = True
    while grown:
        grown = False
        for key, partners in follows.items():
            if key in committed and key not in out and partners & out:
                out.add(key)
                grown = True
    return out


def heal(bundle: Bundle, committed: Assignment, due: dict[str, Trouble], *, max_moves: int,
         time_limit: float, warnings: list[str] | None = None) -> Healing:
    """Re-place the committed workloads that the ``due`` clusters hold, or say why not.

    ``bundle`` is the fleet (live capacity applied) with exactly the committed workloads.
    Lost clusters get no room; short ones keep their live capacity, so the engine moves only
    what no longer fits (spec 4). Every other workload is frozen where it runs.
    """
    affected = _affected(bundle, committed, due)
    if not affected:
        return Healing("none")
    lost = [name for name, t in due.items() if t.kind == "lost"]
    healing = lost_capacity(bundle, lost, committed, due)
    frozen = sorted(set(committed) - affected)
    plan = place(healing, current=committed, max_moves=max_moves, frozen=frozen, time_limit=time_limit,
                 warnings=list(warnings or []))
    after = plan.assignment()
    dropped = sorted(k for k in committed if k not in after)
    result = Healing("moved", affected=sorted(affected), plan=plan, bundle=healing, after=after)
    if plan.status.solver == "Infeasible" or dropped:
        named = set(dropped) or affected
        result.outcome = "infeasible"
        result.unplaced = [{"workload": u.workload, "reasons": [r.model_dump(by_alias=True) for r in u.reasons]}
                           for u in plan.unplaced if u.workload in named]
        result.why = (f"no plan moves at most maxMoves {max_moves} replica(s)" if plan.status.solver == "Infeasible"
                      else f"{len(dropped)} workload(s) would have no place")
        return result
    moved_frozen = [k for k in frozen if after.get(k) != committed[k]]
    if moved_frozen:  # the engine holds frozen workloads; never commit if it did not
        raise RuntimeError(f"internal: failover moved workloads it had to leave alone: {', '.join(moved_frozen)}")
    return result


# --- events -----------------------------------------------------------------------------------


@dataclass
class Event:
    """One thing self-healing saw or did; ``workloads``/``moves``/``unplaced`` name what it touched."""

    type: EventType
    at: float
    clusters: list[str]
    message: str
    workloads: list[str] = field(default_factory=list)
    moves: list[dict[str, Any]] = field(default_factory=list)
    unplaced: list[dict[str, Any]] = field(default_factory=list)
    plan_digest: str | None = None
    commits: list[str] = field(default_factory=list)
    id: int = 0

    def namespaces(self) -> set[str]:
        return {k.split("/", 1)[0] for k in self.workloads}

    def to_json(self) -> dict[str, Any]:
        return {
            "id": self.id, "type": self.type,
            "time": datetime.fromtimestamp(self.at, UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
            "clusters": list(self.clusters), "message": self.message, "workloads": list(self.workloads),
            "moves": list(self.moves), "unplaced": list(self.unplaced), "planDigest": self.plan_digest,
            "commits": list(self.commits),
        }

    def seen_by(self, can: Callable[[str], bool], scrub: Callable[[str], str]) -> Event | None:
        """The event as a caller that may see namespaces ``can`` sees it, or ``None`` (not its business).

        A tenant sees an event only when it touches one of its workloads, and then only its own
        workloads, moves and reasons (other tenants' names scrubbed from messages).
        """
        mine = [k for k in self.workloads if can(k.split("/", 1)[0])]
        if not mine:
            return None
        if len(mine) == len(self.workloads):
            return self
        keep = set(mine)
        unplaced = [{**u, "reasons": [{**r, "message": scrub(str(r.get("message", "")))} for r in u["reasons"]]}
                    for u in self.unplaced if u["workload"] in keep]
        return replace(self, workloads=mine, moves=[m for m in self.moves if m["workload"] in keep],
                       unplaced=unplaced, message=scrub(self.message), commits=[])


class EventLog:
    """The newest ``size`` events in memory, numbered from 1; safe across threads."""

    def __init__(self, size: int = 1000) -> None:
        self._events: deque[Event] = deque(maxlen=size)
        self._next = 1
        self._lock = threading.Lock()

    def add(self, event: Event) -> Event:
        with self._lock:
            event.id = self._next
            self._next += 1
            self._events.append(event)
        return event

    def all(self) -> list[Event]:
        with self._lock:
            return list(self._events)


# --- one pass ------------------------------------------------------------------------------------


def _moves_of(plan: Plan) -> list[dict[str, Any]]:
    return [m.model_dump(by_alias=True) for m in plan.moves]


def run_pass(
    tracker: Tracker,
    at: float,
    fleet: Bundle,
    report: LiveReport,
    live: LiveFleet,
    committed: Assignment,
    *,
    settings: FailoverSettings,
    commit: Callable[[Healing], tuple[str, list[str]]],
    warnings: list[str] | None = None,
) -> list[Event]:
    """Assess, track and heal once; ``commit`` writes a ``moved`` healing and returns (plan digest, commits).

    ``fleet`` holds exactly the committed workloads. A failure of ``commit`` (git, the state
    file) is an event too; the next pass tries again.
    """
    events: list[Event] = []
    troubles = assess(fleet, report, live, committed)
    new, back, due = tracker.observe(at, troubles)

    def on(cluster: str) -> list[str]:
        return sorted(k for k, spread in committed.items() if spread.get(cluster, 0) > 0)

    for t in new:
        kind: EventType = "ClusterLost" if t.kind == "lost" else "ClusterShort"
        grace = f"; workloads move after {settings.grace_seconds:g} s in this state" if on(t.cluster) else ""
        events.append(Event(kind, at, [t.cluster], f"cluster {t.cluster} is {t.kind}: {t.reason}{grace}",
                            workloads=on(t.cluster)))
    for name in back:
        events.append(Event("ClusterRecovered", at, [name],
                            f"cluster {name} is healthy again; nothing moves back until a re-optimisation is "
                            "asked for", workloads=on(name)))
    if not due:
        tracker.last_infeasible = None
        return events
    healing = heal(fleet, committed, due, max_moves=settings.max_moves, time_limit=settings.time_limit_seconds,
                   warnings=warnings)
    clusters = sorted(due)
    if healing.outcome == "none":
        tracker.last_infeasible = None
        return events
    if healing.outcome == "infeasible":
        signature = f"{clusters}|{[u['workload'] for u in healing.unplaced]}|{healing.why}"
        if signature != tracker.last_infeasible:
            tracker.last_infeasible = signature
            events.append(Event("FailoverInfeasible", at, clusters,
                                f"failover off {', '.join(clusters)} commits nothing: {healing.why}; what runs "
                                "stays as it is and the next pass tries again",
                                workloads=healing.affected, unplaced=healing.unplaced))
        return events
    assert healing.plan is not None
    try:
        digest, commits = commit(healing)
    except Exception as exc:  # git, the remote or the state file: recorded, retried on the next pass
        detail = redact(str(getattr(exc, "detail", None) or exc))
        events.append(Event("FailoverFailed", at, clusters,
                            f"failover off {', '.join(clusters)} could not be committed: {detail}",
                            workloads=healing.affected, moves=_moves_of(healing.plan)))
        return events
    tracker.last_infeasible = None
    tracker.healed |= set(clusters)
    events.append(Event(
        "FailoverCommitted", at, clusters,
        f"re-placed the workloads of {', '.join(clusters)} within maxMoves {settings.max_moves} (plan {digest})",
        workloads=healing.affected, moves=_moves_of(healing.plan), plan_digest=digest, commits=commits))
    return events
