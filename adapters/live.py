"""Live inputs for every driver: Prometheus and/or the Kubernetes API applied to a bundle.

The CLI (``berth place``, ``berth fleet``) and the service call these two
functions; the pure part (what live numbers mean for a bundle) is
:mod:`engine.documents.live`.
"""

from __future__ import annotations

from datetime import datetime
from pathlib import Path

from engine import (
    Bundle,
    InputError,
    LiveFleet,
    LiveReport,
    MetricsSource,
    apply_live,
    find_source,
    merge_fleets,
    redact,
)

__all__ = ["load_live", "read_live"]


def read_live(
    bundle: Bundle,
    *,
    prometheus: str | None = None,
    kubeconfig: Path | None = None,
    contexts: list[str] | None = None,
    at: datetime | None = None,
    source: MetricsSource | None = None,
) -> tuple[Bundle, LiveReport, LiveFleet]:
    """Fetch the live sources given and apply them to a copy of ``bundle``.

    With both, the Kubernetes API supplies the capacity of the clusters it can
    read and Prometheus the rest and the latencies. ``source`` overrides the
    bundle's MetricsSource (the service passes its own ``maxAge``/``onStale``).

    Raises:
        LiveSourceError: a source failed, or data is stale/missing with ``refuse``.
        InputError: bad kubeconfig, context or MetricsSource.
    """
    source = source or find_source(bundle) or MetricsSource.default()
    prometheus = prometheus or source.spec.prometheus.url
    fleets: list[LiveFleet] = []
    if kubeconfig is not None:
        from adapters.kubernetes import fetch_inventory

        fleets.append(fetch_inventory(bundle, kubeconfig, list(contexts or []), source=source))
    elif contexts:
        raise InputError("--context needs --kubeconfig", field="--context")
    if prometheus or source.spec.prometheus.clusters:
        from adapters.prometheus import fetch_live

        fleets.append(fetch_live(bundle, prometheus, source=source, at=at))
    if not fleets:
        raise InputError("give --prometheus URL or --kubeconfig PATH", field="--prometheus")
    live = fleets[0] if len(fleets) == 1 else merge_fleets(fleets[0], fleets[1])
    applied, report = apply_live(bundle, live, source)
    return applied, report, live


def load_live(
    bundle: Bundle,
    *,
    prometheus: str | None,
    kubeconfig: Path | None,
    contexts: list[str],
    source: MetricsSource | None = None,
) -> tuple[Bundle, list[str]]:
    """The bundle with live capacities and latencies, and the sentences for ``status.warnings``.

    Raises:
        LiveSourceError: a source failed, or stale/missing data with ``refuse`` (exit 3).
        InputError: bad kubeconfig, context or MetricsSource (exit 2).
    """
    applied, report, _ = read_live(
        bundle, prometheus=prometheus, kubeconfig=kubeconfig, contexts=contexts, source=source
    )
    return applied, [redact(w) for w in report.warnings]  # warnings reach plans and logs
