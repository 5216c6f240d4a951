"""Prometheus metrics of the service, in a registry of its own (one per app)."""

from __future__ import annotations

from dataclasses import dataclass, field

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

__all__ = ["ServiceMetrics"]


@dataclass
class ServiceMetrics:
    registry: CollectorRegistry = field(default_factory=CollectorRegistry)

    def __post_init__(self) -> None:
        r = self.registry
        self.requests = Histogram(
            "berth_http_request_seconds", "HTTP request latency", ["method", "route", "status"], registry=r,
            buckets=(0.005, 0.01, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30),
        )
        self.solve = Histogram(
            "berth_solve_seconds", "Time in the solver per request", ["endpoint"], registry=r,
            buckets=(0.01, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60),
        )
        self.placements = Counter(
            "berth_placements_total", "Placement requests by outcome", ["outcome"], registry=r,
        )
        self.unplaced = Counter("berth_unplaced_total", "Unplaced workloads by reason code", ["reason"], registry=r)
        self.fleet_age = Gauge("berth_fleet_age_seconds", "Seconds since the fleet was last refreshed", registry=r)
        self.fleet_stale = Gauge("berth_fleet_stale", "1 when live inputs are stale", registry=r)
        self.fast_path = Counter(
            "berth_fast_path_total", "Placement solves by path: fast (warm arrays), small (a small bundle of "
            "the residual) or fallback (whole fleet), with the reason for a fallback", ["path", "reason"], registry=r,
        )
        self.commit_group = Histogram(
            "berth_commit_group_size", "Accepted placements committed together in one durable step", registry=r,
            buckets=(1, 2, 4, 8, 16, 32, 64, 128),
        )
        self.reserved = Gauge("berth_reserved_replicas", "Replicas committed by the service", registry=r)
        self.failover_events = Counter(
            "berth_failover_events_total", "Self-healing events by type (docs/failover.md)", ["type"], registry=r,
        )
        self.failover_moves = Counter(
            "berth_failover_moved_replicas_total", "Replicas that committed failovers moved", registry=r,
        )
        self.troubled = Gauge("berth_clusters_troubled", "Clusters lost or short now", ["state"], registry=r)
