"""Live numbers applied to a bundle (spec section 6): pure code, no sockets, no clock.

The adapters (:mod:`adapters.prometheus`, :mod:`adapters.kubernetes`) read the world into a
:class:`LiveFleet`; :func:`apply_live` turns a bundle plus that snapshot into a new bundle whose
Cluster capacities and Site latencies are the live values, and a :class:`LiveReport` that says
which clusters were stale (and what was used instead), missing or extra, in sentences a plan can
carry as ``status.warnings``. The decisions where the spec is silent are listed in
:mod:`engine.documents.live` (the ``MetricsSource`` kind) and ``docs/live-inputs.md``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Literal

from engine.documents.bundle import Bundle
from engine.documents.durations import human_duration, parse_duration
from engine.documents.live import MetricsSource, MetricsSourceSpec
from engine.errors import InputError, LiveSourceError
from engine.limits import echo
from engine.quantity import format_quantity, max_quantity

__all__ = [
    "ClusterLive",
    "LatencyLive",
    "LiveFleet",
    "LiveReport",
    "StaleCluster",
    "apply_live",
    "find_source",
    "merge_fleets",
]


def find_source(bundle: Bundle) -> MetricsSource | None:
    """The bundle's ``MetricsSource`` document, if it has one.

    Raises:
        InputError: the bundle declares more than one.
    """
    found = [d for d in bundle.extras if isinstance(d, MetricsSource)]
    if len(found) > 1:
        second = found[1]
        ns = second.metadata.namespace
        key = f"{ns}/{second.metadata.name}" if ns else second.metadata.name
        origin = bundle.origin("MetricsSource", key)
        raise InputError(
            "a bundle takes at most one MetricsSource document",
            file=origin.file,
            document=f"MetricsSource {key}",
        )
    return found[0] if found else None


# --- what the adapters read ---------------------------------------------------------


@dataclass
class ClusterLive:
    """One cluster as a live source saw it. Quantities in base units (engine.quantity).

    Attributes:
        observed_at: time of the newest sample (Prometheus) or of the read
            (Kubernetes API); ``None`` when nothing was read.
        error: why the cluster could not be read (an unreachable context), or ``None``.
    """

    name: str
    allocatable: dict[str, int] = field(default_factory=dict)
    requested: dict[str, int] = field(default_factory=dict)
    observed_at: datetime | None = None
    error: str | None = None
    region: str | None = None
    zone: str | None = None
    nodes: int | None = None

    @property
    def has_values(self) -> bool:
        return bool(self.allocatable)

    def free(self) -> dict[str, int]:
        """``allocatable - requested`` per resource, never below 0."""
        keys = set(self.allocatable) | set(self.requested)
        return {
            r: max(0, self.allocatable.get(r, 0) - self.requested.get(r, 0)) for r in sorted(keys)
        }


@dataclass
class LatencyLive:
    """The probes of one (site, cluster) pair.

    Attributes:
        ms: the configured quantile of successful probe durations, or ``None``
            when no probe in the window succeeded.
        observed_at: time of the newest probe, successful or not.
    """

    ms: float | None
    observed_at: datetime | None


@dataclass
class LiveFleet:
    """A snapshot of the fleet read by one live source at time ``at``."""

    source: str
    at: datetime
    clusters: dict[str, ClusterLive] = field(default_factory=dict)
    latency: dict[tuple[str, str], LatencyLive] = field(default_factory=dict)
    latency_read: bool = False
    warnings: list[str] = field(default_factory=list)


@dataclass(frozen=True)
class StaleCluster:
    name: str
    reason: str
    used: Literal["file", "none"]


@dataclass
class LiveReport:
    """What :func:`apply_live` did; ``warnings`` are sentences for ``status.warnings``."""

    source: str
    at: datetime
    updated: list[str] = field(default_factory=list)
    stale: list[StaleCluster] = field(default_factory=list)
    missing: list[str] = field(default_factory=list)
    extra: list[str] = field(default_factory=list)
    latency_updated: list[tuple[str, str]] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)

    def status_of(self, cluster: str) -> str:
        """``live``, ``stale``, ``missing``, ``extra`` or ``file`` for a table."""
        if cluster in self.updated:
            return "live"
        if any(s.name == cluster for s in self.stale):
            return "stale"
        if cluster in self.missing:
            return "missing"
        if cluster in self.extra:
            return "extra"
        return "file"


def merge_fleets(inventory: LiveFleet, metrics: LiveFleet) -> LiveFleet:
    """Kubernetes API inventory first, Prometheus for the rest and for latency.

    A cluster read from its API server takes those numbers; a cluster whose
    context failed, or that has no context, takes Prometheus' numbers if it has
    them. Latency always comes from Prometheus (the API knows none).
    """
    merged = LiveFleet(
        source=f"{inventory.source} and {metrics.source}",
        at=metrics.at,  # ages are measured from Prometheus' evaluation time
        latency=dict(metrics.latency),
        latency_read=metrics.latency_read,
        warnings=[*inventory.warnings, *metrics.warnings],
    )
    for name in sorted(set(inventory.clusters) | set(metrics.clusters)):
        api, prom = inventory.clusters.get(name), metrics.clusters.get(name)
        if api is not None and (api.error is None or prom is None or not prom.has_values):
            merged.clusters[name] = api
        elif prom is not None:
            merged.clusters[name] = prom
    return merged


# --- applying -----------------------------------------------------------------------


def _stale_reason(cluster: ClusterLive, at: datetime, max_age: timedelta) -> str | None:
    if cluster.error is not None:
        return f"could not be read ({cluster.error})"
    if cluster.observed_at is None:
        return None  # missing, not stale
    age = at - cluster.observed_at
    if age > max_age:
        return f"its newest sample is {human_duration(age)} old (maxAge {human_duration(max_age)})"
    if not cluster.has_values:
        return (
            f"its newest sample is {human_duration(age)} old, too old for the instant queries "
            "(Prometheus' lookback delta)"
        )
    return None


def apply_live(
    bundle: Bundle, live: LiveFleet, source: MetricsSource
) -> tuple[Bundle, LiveReport]:
    """Replace capacities and latencies of a copy of ``bundle`` with live values.

    Args:
        bundle: the validated bundle; it is not modified.
        live: what a live source read.
        source: the configuration (``maxAge``, ``onStale``, ``onMissing``, ...).

    Returns:
        The new bundle and the report of what was used.

    Raises:
        LiveSourceError: data is stale with ``onStale: refuse``, or a cluster is
            missing with ``onMissing: refuse``.
    """
    spec = source.spec
    max_age = parse_duration(spec.max_age)
    out = bundle.copy()
    report = LiveReport(source=live.source, at=live.at, warnings=list(live.warnings))
    names = {c.name for c in out.clusters}
    refusals: list[str] = []

    for cluster in out.clusters:
        seen = live.clusters.get(cluster.name)
        reason = _stale_reason(seen, live.at, max_age) if seen else None
        if seen is None or (reason is None and not seen.has_values and seen.error is None):
            report.missing.append(cluster.name)
            if spec.on_missing == "refuse":
                refusals.append(f"{cluster.name} has no live data")
            else:
                report.warnings.append(
                    f"cluster {cluster.name} has no live data in {live.source}; "
                    "using the capacity from the bundle"
                )
            continue
        if reason is not None:
            if spec.on_stale == "refuse":
                refusals.append(f"{cluster.name} {reason}")
                report.stale.append(StaleCluster(cluster.name, reason, "none"))
            else:
                report.stale.append(StaleCluster(cluster.name, reason, "file"))
                report.warnings.append(
                    f"live data for cluster {cluster.name} is stale: {reason}; "
                    "using the capacity from the bundle"
                )
            continue
        free = seen.free()
        for resource, amount in sorted(cluster.spec.capacity.items()):
            if resource in free:
                continue
            if resource in spec.keep_file_resources:
                free[resource] = amount
            elif amount > 0:
                free[resource] = 0
                report.warnings.append(
                    f"cluster {cluster.name}: the bundle lists {resource} "
                    f"{format_quantity(resource, amount)} but no schedulable node reports it; "
                    "using 0"
                )
        for resource in sorted(set(seen.requested) - set(seen.allocatable)):
            if seen.requested[resource] > 0:
                report.warnings.append(
                    f"cluster {cluster.name}: pods request {resource} that no schedulable "
                    "node offers"
                )
        for resource, req in sorted(seen.requested.items()):
            alloc = seen.allocatable.get(resource, 0)
            if alloc and req > alloc:
                report.warnings.append(
                    f"cluster {cluster.name} is overcommitted on {resource}: "
                    f"{format_quantity(resource, req)} requested of "
                    f"{format_quantity(resource, alloc)} allocatable; free is 0"
                )
        for resource, amount in free.items():
            limit, written = max_quantity(resource)
            if amount > limit:  # beyond the documented range the engine's integers would overflow
                free[resource] = limit
                report.warnings.append(f"cluster {cluster.name}: live {resource} is above {written}; using {written}")
        cluster.spec.capacity = free
        report.updated.append(cluster.name)
        for attr in ("region", "zone"):
            theirs, ours = getattr(seen, attr), getattr(cluster.spec, attr)
            if theirs is None:
                continue
            if ours is None:
                setattr(cluster.spec, attr, theirs)
            elif ours != theirs:
                report.warnings.append(
                    f"cluster {cluster.name}: the bundle says {attr} {echo(ours)}, its nodes say "
                    f"{echo(theirs)}; keeping the bundle's"
                )

    report.extra = sorted(set(live.clusters) - names)
    if report.extra:
        report.warnings.append(
            f"{len(report.extra)} cluster(s) in {live.source} are not in the bundle and were "
            f"ignored: {', '.join(report.extra)}"
        )

    if live.latency_read:
        _apply_latency(out, live, spec, max_age, report, refusals)

    if refusals:
        raise LiveSourceError(
            f"refusing to place on stale or missing live data from {live.source}: "
            + "; ".join(refusals)
            + " (set onStale/onMissing: fallback in the MetricsSource to use the bundle's values)"
        )
    return out, report


def _apply_latency(
    out: Bundle,
    live: LiveFleet,
    spec: MetricsSourceSpec,
    max_age: timedelta,
    report: LiveReport,
    refusals: list[str],
) -> None:
    clusters = {c.name for c in out.clusters}
    sites = {s.name for s in out.sites}
    window = parse_duration(spec.latency.window)
    unprobed: list[str] = []
    for site in out.sites:
        latency = dict(site.spec.latency_ms)
        for cluster in sorted(clusters):
            seen = live.latency.get((site.name, cluster))
            pair = f"{site.name}->{cluster}"
            if seen is None or seen.observed_at is None:
                if cluster in latency:
                    unprobed.append(pair)
                continue
            age = live.at - seen.observed_at
            reason = None
            if age > max_age:
                reason = f"probes {pair} are {human_duration(age)} old (maxAge {human_duration(max_age)})"
            elif age > window:
                # No probe in the window (maxAge is longer): nothing was measured, which
                # is no evidence that the probes fail, and what the quantile saw is old.
                reason = (
                    f"probes {pair} are {human_duration(age)} old, older than the latency window "
                    f"{spec.latency.window}"
                )
            if reason is not None:
                if spec.on_stale == "refuse":
                    refusals.append(reason)
                else:
                    report.warnings.append(f"{reason}; using the latency from the bundle")
                continue
            if seen.ms is None:
                latency.pop(cluster, None)
                report.warnings.append(
                    f"no probe {pair} succeeded in the last {spec.latency.window}; "
                    f"{cluster} is unreachable from site {site.name}"
                )
                continue
            latency[cluster] = round(seen.ms, 3)
            report.latency_updated.append((site.name, cluster))
        site.spec.latency_ms = latency
    if unprobed:
        report.warnings.append(
            f"no probes for {len(unprobed)} site->cluster pair(s) that the bundle gives a "
            f"latency for; using the bundle's values: {', '.join(unprobed)}"
        )
    extra = sorted(
        {f"{s}->{c}" for s, c in live.latency if s not in sites or c not in clusters}
    )
    if extra:
        report.warnings.append(
            f"probes for {len(extra)} site->cluster pair(s) not in the bundle were ignored: "
            + ", ".join(extra)
        )
