"""The service's face of self-healing: one failover pass after every live refresh.

The logic is :mod:`adapters.failover` (shared with ``berth watch``); this module only runs it
against the service's state: under :attr:`ServiceState.lock` (no placement reserves capacity
while a failover decides), committing through the same journaled write path as a placement
(write-ahead record, git, done), and recording every event three ways: a Prometheus metric,
a log line (with the plan's digest when something was committed) and ``GET /v1/events``.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

from adapters.failover import Event, EventLog, FailoverSettings, Healing, Tracker, run_pass
from engine import LiveFleet, LiveReport

if TYPE_CHECKING:
    from adapters.api.state import ServiceState

__all__ = ["ServiceFailover"]

log = logging.getLogger("berth.failover")

_QUIET = ("FailoverCommitted", "ClusterRecovered")  # logged at info; the rest at warning


class ServiceFailover:
    """The tracker and the event log of one running service."""

    def __init__(self, state: ServiceState, settings: FailoverSettings) -> None:
        self.state = state
        self.settings = settings
        self.tracker = Tracker(settings.grace_seconds)
        self.events = EventLog()

    def run(self, at: float, report: LiveReport, live: LiveFleet) -> list[Event]:
        """One pass against the fleet just refreshed (``state.fleet``); returns the events recorded."""
        state = self.state
        with state.lock:
            snap = state.snap
            bundle = state.committed_bundle(snap)

            def commit(healing: Healing) -> tuple[str, list[str]]:
                return state.commit_failover(snap, healing)

            events = run_pass(self.tracker, at, bundle, report, live, dict(snap.committed), settings=self.settings,
                              commit=commit, warnings=list(state.fleet_warnings))
        for kind in ("lost", "short"):
            state.metrics.troubled.labels(kind).set(sum(1 for k in self.tracker.kinds.values() if k == kind))
        for event in events:
            self.record(event)
        return events

    def record(self, event: Event) -> None:
        self.events.add(event)
        metrics = self.state.metrics
        metrics.failover_events.labels(event.type).inc()
        if event.type == "FailoverCommitted":
            metrics.failover_moves.inc(sum(int(m["replicas"]) for m in event.moves))
        level = logging.INFO if event.type in _QUIET else logging.WARNING
        digest = f" plan={event.plan_digest}" if event.plan_digest else ""
        log.log(level, "failover event %d %s clusters=%s%s: %s", event.id, event.type, ",".join(event.clusters),
                digest, event.message)
