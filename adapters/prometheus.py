"""Live capacity and latency from Prometheus (spec section 6), over httpx.

Every query is an instant query evaluated at one explicit time (``at``,
default now) so that the numbers of one fetch belong together. The queries
come from the ``MetricsSource`` (defaults in :data:`engine.documents.promql.DEFAULT_QUERIES`
follow kube-state-metrics and the blackbox exporter).

Waiting is bounded: each HTTP request has ``spec.prometheus.timeout`` (also
sent to Prometheus as the query ``timeout``); connection errors, timeouts,
429 and 5xx answers are retried ``retries`` times with a doubling
``backoff``; and the whole fetch (all queries, all retries) gives up after
``totalTimeout`` (default 30 s). A 4xx answer (bad PromQL) is not retried.
Any failure raises :class:`engine.errors.LiveSourceError` with one line
naming the URL (without credentials), what failed and what to check.
"""

from __future__ import annotations

import json
import math
import re
import ssl
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from datetime import UTC, datetime
from decimal import ROUND_CEILING, ROUND_FLOOR, Decimal
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import httpx
from tenacity import RetryCallState, Retrying, retry_if_exception_type

from adapters.http_auth import client_session
from engine import (
    MAX_LATENCY_MS,
    Bundle,
    ClusterLive,
    ClusterPrometheus,
    HttpClientSettings,
    LatencyLive,
    LiveFleet,
    LiveSourceError,
    MetricsSource,
    MetricsSourceSpec,
    find_source,
    is_byte_resource,
    max_quantity,
    parse_duration,
    sanitize_label,
)

__all__ = ["KNOWN_RESOURCES", "READY_QUERIES", "fetch_live", "fetch_ready", "redact_url", "resource_name_map"]

#: Real names of resources that kube-state-metrics reports in sanitised form.
KNOWN_RESOURCES = (
    "cpu",
    "memory",
    "pods",
    "ephemeral-storage",
    "nvidia.com/gpu",
    "amd.com/gpu",
    "gpu.intel.com/i915",
    "hugepages-1Gi",
    "hugepages-2Mi",
)

_RETRY_STATUS = frozenset({429, 500, 502, 503, 504})


class _Unreachable(LiveSourceError):
    """No answer could be had (down, too slow, refused credentials): for one cluster's own
    Prometheus this makes that cluster stale instead of failing the fetch."""


def redact_url(url: str) -> str:
    """``url`` without user, password, query or fragment, for messages."""
    try:
        parts = urlsplit(url)
    except ValueError:
        return "<invalid URL>"
    host = parts.hostname or ""
    if parts.port:
        host = f"{host}:{parts.port}"
    return urlunsplit((parts.scheme, host, parts.path, "", ""))


def resource_name_map(bundle: Bundle, source: MetricsSource) -> dict[str, str]:
    """Sanitised resource label value -> real resource name.

    Built from :data:`KNOWN_RESOURCES`, every resource the bundle mentions
    (capacities, requests, quotas), and ``spec.resourceNames`` (which wins).
    """
    names: set[str] = set(KNOWN_RESOURCES)
    for cluster in bundle.clusters:
        names |= set(cluster.spec.capacity)
    for workload in bundle.workloads:
        names |= set(workload.spec.resources)
    for tenant in bundle.tenants:
        names |= set(tenant.spec.quota)
    mapping = {sanitize_label(n): n for n in sorted(names)}
    mapping.update(source.spec.resource_names)
    return mapping


def _real_name(label: str, mapping: dict[str, str]) -> str:
    if label in mapping:
        return mapping[label]
    if label.startswith("hugepages_"):
        return "hugepages-" + label.removeprefix("hugepages_")
    return label


def _to_base(resource: str, value: float, rounding: str) -> int:
    """Prometheus value (cores, bytes, units) -> integer base units, rounded safely."""
    amount = Decimal(repr(value))
    if resource == "cpu":
        amount *= 1000
    # Float sums carry noise (3.9200000000000004): drop it before rounding.
    amount = amount.quantize(Decimal("0.001"))
    if not is_byte_resource(resource) and resource != "cpu":
        amount = amount.quantize(Decimal(1))  # counted resources are whole units
    limit, written = max_quantity(resource)
    if not 0 <= amount <= limit:
        raise ValueError(f"{resource} {value!r} is outside 0..{written}")
    return int(amount.to_integral_value(rounding=rounding))


class _Transient(Exception):
    """A failure worth another try (a timeout, a refused connection, HTTP 429/5xx): what and what to check."""

    def __init__(self, what: str, hint: str) -> None:
        super().__init__(what)
        self.what, self.hint = what, hint


class _Client:
    """Prometheus' HTTP API over httpx, with bounded retries (tenacity) and an overall deadline.

    The status of every answer comes from the httpx response itself (``status_code`` and the
    JSON ``error`` of the body), never from the text of an exception."""

    def __init__(
        self,
        url: str,
        source: MetricsSource,
        *,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] = time.sleep,
        deadline: float | None = None,
        http: HttpClientSettings | None = None,
        field: str = "spec.prometheus",
    ) -> None:
        settings = source.spec.prometheus
        self.url = url.rstrip("/")
        self.shown = redact_url(url)
        self.source = f"Prometheus at {self.shown}"
        self.timeout = parse_duration(settings.timeout).total_seconds()
        self.retries = settings.retries
        self.backoff = parse_duration(settings.backoff).total_seconds()
        self.total = parse_duration(settings.total_timeout).total_seconds()
        self.clock = clock
        self.sleep = sleep
        # One deadline for the whole fetch, shared by every Prometheus it reads.
        self.deadline = clock() + self.total if deadline is None else deadline
        # Retries are ours (bounded by the deadline); httpx itself makes one attempt per call.
        self.http = client_session(settings if http is None else http, field, timeout=self.timeout)

    def close(self) -> None:
        self.http.close()

    def fail(self, name: str, what: str, check: str, *, unreachable: bool = False) -> LiveSourceError:
        """The one-line error for query ``name``; ``unreachable``: no answer could be had."""
        kind = _Unreachable if unreachable else LiveSourceError
        return kind(f"{self.source}: query {name!r} {what}; {check}")

    def query(self, name: str, promql: str, at: datetime) -> list[dict[str, Any]]:
        """Run one instant query at ``at``; retry transient failures (tenacity) within the deadline.

        At most ``retries`` retries, the backoff doubling from ``backoff``, and none that would
        start after the shared deadline."""
        started = self.clock()
        tries = {"n": 0}

        def once() -> list[dict[str, Any]]:
            tries["n"] += 1
            return self._query_once(name, promql, at, tries["n"])

        def delay(state: RetryCallState) -> float:
            return self.backoff * 2 ** (state.attempt_number - 1)

        def give_up(state: RetryCallState) -> bool:
            return state.attempt_number > self.retries or self.clock() + delay(state) >= self.deadline

        retrying = Retrying(stop=give_up, wait=delay, sleep=self.sleep, retry=retry_if_exception_type(_Transient),
                            reraise=True)
        try:
            return retrying(once)
        except _Transient as last:
            spent = self.clock() - started
            raise self.fail(name, f"{last.what} ({tries['n']} attempt(s) in {spent:.1f} s)", last.hint,
                            unreachable=True) from None

    def _query_once(self, name: str, promql: str, at: datetime, attempt: int) -> list[dict[str, Any]]:
        """One try; :class:`_Transient` for what is worth another, a LiveSourceError for what is not."""
        remaining = self.deadline - self.clock()
        if remaining <= 0:
            raise self.fail(
                name,
                f"was not answered within the total limit of {self.total:g} s ({attempt - 1} attempt(s))",
                "check that Prometheus is up and not overloaded, or raise spec.prometheus.totalTimeout",
                unreachable=True,
            )
        timeout = max(0.05, min(self.timeout, remaining))
        params = {"time": f"{at.timestamp():.3f}", "timeout": f"{max(1, int(timeout * 1000))}ms"}
        hint = "check that the URL is right and Prometheus is running and reachable"
        try:
            response = self.http.get(f"{self.url}/api/v1/query", params={"query": promql, **params},
                                     timeout=timeout)
        except httpx.TimeoutException:
            raise _Transient(f"timed out after {timeout:.1f} s",
                             "check that Prometheus is up and not overloaded, or raise "
                             "spec.prometheus.timeout/totalTimeout") from None
        except httpx.ConnectError as exc:
            tls = _tls_failure(exc)
            if tls is not None:
                raise self.fail(
                    name,
                    f"failed the TLS handshake ({tls})",
                    "check spec.prometheus.tls (caFile for the server's CA, certFile and keyFile "
                    "for a client certificate)",
                    unreachable=True,
                ) from None
            raise _Transient("could not connect" + _connection_detail(exc), hint) from None
        except (httpx.RemoteProtocolError, httpx.ReadError, httpx.WriteError) as exc:
            tls = _tls_failure(exc)
            if tls is not None:
                raise self.fail(name, f"failed the TLS handshake ({tls})",
                                "check spec.prometheus.tls (certFile and keyFile for a client certificate)",
                                unreachable=True) from None
            raise _Transient(f"lost the connection ({type(exc).__name__})", hint) from None
        except httpx.TooManyRedirects:
            raise self.fail(name, "was redirected too often", "check that the URL is Prometheus' base URL") from None
        except httpx.HTTPError as exc:
            raise self.fail(name, f"failed: {type(exc).__name__}", "check the URL") from None
        if response.status_code != 200:
            if response.status_code not in _RETRY_STATUS:
                raise self._http_error(name, response.status_code, response.text)
            raise _Transient(f"got HTTP {response.status_code}{_error_text(response.text)}", hint)
        try:
            body = response.json()
            if body["status"] == "error":
                raise self.fail(name, f"failed{_error_text(response.text)}", "check Prometheus' logs")
            if body["status"] != "success":
                raise KeyError("status")
            return self._parse(name, body["data"]["result"])
        except (ValueError, KeyError, TypeError, AttributeError):
            raise self.fail(
                name,
                "got an answer that is not the Prometheus HTTP API",
                "check that the URL is Prometheus' base URL",
            ) from None

    def _http_error(self, name: str, status: int, body: str) -> LiveSourceError:
        text = _error_text(body)
        if status == 400 and 'parameter "query"' in text:
            return self.fail(
                name,
                f"was rejected as invalid PromQL (HTTP 400{text})",
                f"check spec.queries.{name} in the MetricsSource",
            )
        if status == 422:
            return self.fail(
                name,
                f"could not be evaluated (HTTP 422{text})",
                f"check spec.queries.{name} in the MetricsSource",
            )
        if status in (401, 403):
            return self.fail(
                name, f"was refused (HTTP {status})", "check the credentials for this Prometheus",
                unreachable=True,
            )
        if status == 404:
            return self.fail(
                name, "found no query API (HTTP 404)", "check that the URL is Prometheus' base URL"
            )
        return self.fail(name, f"failed with HTTP {status}{text}", "check Prometheus' logs")

    def _parse(self, name: str, result: Any) -> list[dict[str, Any]]:
        if not isinstance(result, list) or not all(
            isinstance(r, dict) and isinstance(r.get("metric"), dict) and "value" in r
            and all(isinstance(v, str) for v in r["metric"].values())
            for r in result
        ):
            raise self.fail(
                name,
                "did not return an instant vector",
                f"check that spec.queries.{name} is a vector expression",
            )
        return result


def _tls_failure(exc: Exception) -> str | None:
    """The reason of a TLS failure without the URL, or ``None`` when ``exc`` is not one.

    httpx raises the transport's error with the :class:`ssl.SSLError` as its cause (or context)."""
    seen: BaseException | None = exc
    while seen is not None:
        if isinstance(seen, ssl.SSLError):
            reason = getattr(seen, "verify_message", None) or getattr(seen, "reason", None)
            if isinstance(seen, ssl.SSLCertVerificationError):
                return f"certificate verify failed: {reason}" if reason else "certificate verify failed"
            if reason and "ALERT" in str(reason).upper():
                return "the server refused the client certificate"
            return str(reason).lower().replace("_", " ") if reason else "see the server's log"
        seen = seen.__cause__ or seen.__context__
    text = str(exc)
    match = re.search(r"\[SSL: [A-Z_]+\] ([^'\")(]+)", text)
    if match:
        return match.group(1).strip().rstrip(",")
    return None


@contextmanager
def _reading(client: _Client, name: str) -> Iterator[None]:
    """An answer to query ``name`` that Berth cannot use (values out of range) is a live-source error."""
    try:
        yield
    except (ValueError, OverflowError, TypeError, AttributeError, ArithmeticError) as exc:
        raise client.fail(name, f"gave a value Berth cannot use ({str(exc)[:200]})",
                          f"check spec.queries.{name} and the data behind it") from None


def _connection_detail(exc: Exception) -> str:
    text = str(exc)
    if "refused" in text.lower():
        return " (connection refused)"
    if "resolve" in text.lower() or "name or service" in text.lower():
        return " (host name not resolved)"
    return ""


def _error_text(body: str) -> str:
    try:
        data = json.loads(body)
    except ValueError:
        return ""
    if isinstance(data, dict) and data.get("error"):
        return f": {str(data['error'])[:300]}"
    return ""


def _value(sample: dict[str, Any]) -> float | None:
    try:
        value = float(sample["value"][1])
    except (TypeError, ValueError, IndexError, KeyError):
        return None
    return value if math.isfinite(value) else None


def fetch_live(
    bundle: Bundle,
    url: str | None,
    *,
    source: MetricsSource | None = None,
    at: datetime | None = None,
) -> LiveFleet:
    """Read the fleet's free capacity and site latencies from Prometheus.

    Two shapes, which may be mixed: one global query layer (``url``: Thanos,
    Mimir, federation) whose series carry the cluster label, and each cluster's
    own Prometheus (``spec.prometheus.clusters``), whose series all belong to
    that cluster. A cluster listed there takes its numbers and its probes from
    its own Prometheus only; if that one cannot be reached the cluster is stale
    (like an unreachable kubeconfig context), not the whole fetch.

    Args:
        bundle: the bundle (for resource names; clusters it lacks are reported
            later by :func:`engine.documents.live.apply_live`, not dropped here).
        url: global Prometheus base URL; ``None`` or ``""`` uses ``spec.prometheus.url``.
        source: the configuration; default the bundle's ``MetricsSource`` or
            :meth:`MetricsSource.default`.
        at: evaluation time of every query (default: now, UTC).

    Returns:
        The snapshot; pass it to :func:`engine.documents.live.apply_live`.

    Raises:
        LiveSourceError: the global Prometheus unreachable, too slow, answering an
            error, or its series carry no cluster label; a query rejected anywhere.
    """
    source = source or find_source(bundle) or MetricsSource.default()
    spec = source.spec
    url = url or spec.prometheus.url
    own = spec.prometheus.clusters
    if not url and not own:
        raise LiveSourceError(
            "no Prometheus URL: give --prometheus URL or spec.prometheus.url in a MetricsSource"
        )
    for checked in ([url] if url else []) + [c.url for c in own.values()]:
        if not urlsplit(checked).scheme or not urlsplit(checked).netloc:
            raise LiveSourceError(f"Prometheus URL {redact_url(checked)!r} is not an http(s) URL")
    at = (at or datetime.now(UTC)).astimezone(UTC)
    reader = _Reader(spec, resource_name_map(bundle, source), at)
    shown = [f"Prometheus at {redact_url(url)}"] if url else []
    if own:
        shown.append(f"{len(own)} per-cluster Prometheus server(s)")
    fleet = LiveFleet(source=" and ".join(shown), at=at)
    deadline = time.monotonic() + parse_duration(spec.prometheus.total_timeout).total_seconds()
    if url:
        client = _Client(url, source, deadline=deadline)  # the global layer's own credentials
        try:
            reader.read(client, fleet, skip=set(own))
        finally:
            client.close()
    if own:
        with ThreadPoolExecutor(max_workers=min(8, len(own))) as pool:
            parts = list(pool.map(
                lambda item: _read_own(reader, source, item[0], item[1], deadline), own.items()
            ))
        for part in parts:
            fleet.clusters.update(part.clusters)
            fleet.latency.update(part.latency)
            fleet.latency_read = fleet.latency_read or part.latency_read
            fleet.warnings.extend(part.warnings)
    return fleet


def _read_own(
    reader: _Reader, source: MetricsSource, name: str, own: ClusterPrometheus, deadline: float
) -> LiveFleet:
    """One cluster's own Prometheus; unreachable -> the cluster is stale, with the reason."""
    part = LiveFleet(source=f"Prometheus at {redact_url(own.url)}", at=reader.at)
    client = _Client(own.url, source, deadline=deadline, http=own,
                     field=f"spec.prometheus.clusters.{name}")
    reader = _Reader(reader.spec, reader.names, reader.at)  # its own, one per thread
    try:
        reader.read(client, part, cluster=name)
    except _Unreachable as exc:
        part = LiveFleet(source=part.source, at=reader.at)
        part.clusters[name] = ClusterLive(name=name, error=str(exc))
    finally:
        client.close()
    return part


class _Reader:
    """Runs the configured queries against one Prometheus and adds what they say to a fleet."""

    def __init__(self, spec: MetricsSourceSpec, names: dict[str, str], at: datetime) -> None:
        self.spec = spec
        self.names = names
        self.at = at
        self.cluster_label = spec.label("cluster")
        self.resource_label = spec.label("resource")
        self.site_label = spec.label("site")

    def _query(self, client: _Client, name: str, cluster: str | None, *,
               promql: str | None = None) -> list[dict[str, Any]]:
        """Run query ``name``, noting for :meth:`_check_labels` whether its series carry the label."""
        samples = client.query(name, promql or self.spec.render_query(name), self.at)
        if cluster is None and samples:
            self._answered.setdefault(name, len(samples))
            self._labelled = self._labelled or any(self.cluster_label in s["metric"] for s in samples)
        return samples

    def _check_labels(self, client: _Client) -> None:
        """A global layer where no series at all carries the cluster label is misconfigured.

        Typically one cluster's own Prometheus, whose ``external_labels`` set the
        cluster: queries do not see them, so every cluster would silently be missing.
        """
        if self._labelled or not self._answered:
            return
        name, count = next(iter(self._answered.items()))
        raise client.fail(
            name,
            f"returned {count} series and no series of any query carries the cluster label "
            f"{self.cluster_label!r}",
            "a cluster's own Prometheus keeps the cluster in external_labels, which queries do "
            "not see: query the global layer (Thanos, Mimir, federation), set labels.cluster to "
            "the label your series carry, or list each cluster's Prometheus in "
            "spec.prometheus.clusters",
        )

    def read(self, client: _Client, fleet: LiveFleet, *, cluster: str | None = None,
             skip: set[str] | frozenset[str] = frozenset()) -> None:
        """Fill ``fleet`` from ``client``.

        Args:
            cluster: every series belongs to this cluster (its own Prometheus), or
                ``None``: the cluster is the series' cluster label (a global layer).
            skip: clusters a global layer must leave alone (they have their own Prometheus).
        """
        spec, at = self.spec, self.at
        unlabelled = 0
        self._answered: dict[str, int] = {}
        self._labelled = False

        def owner(sample: dict[str, Any]) -> str | None:
            return cluster if cluster is not None else sample["metric"].get(self.cluster_label)

        def live(name: str) -> ClusterLive:
            return fleet.clusters.setdefault(name, ClusterLive(name=name))

        for sample in self._query(client, "freshness", cluster):
            name, value = owner(sample), _value(sample)
            if name is None:
                unlabelled += 1
            elif value is not None and name not in skip:
                with _reading(client, "freshness"):
                    seen = datetime.fromtimestamp(value, UTC)
                current = live(name).observed_at
                live(name).observed_at = seen if current is None else max(current, seen)
        for query, target, rounding in (
            ("allocatable", "allocatable", ROUND_FLOOR),
            ("requested", "requested", ROUND_CEILING),
        ):
            for sample in self._query(client, query, cluster):
                name = owner(sample)
                raw = sample["metric"].get(self.resource_label)
                value = _value(sample)
                if name is None or raw is None:
                    unlabelled += 1
                    continue
                if value is None or name in skip:
                    continue
                resource = _real_name(raw, self.names)
                amounts = getattr(live(name), target)
                with _reading(client, query):
                    amounts[resource] = amounts.get(resource, 0) + _to_base(resource, value, rounding)
        for sample in self._query(client, "podsUsed", cluster):
            name, value = owner(sample), _value(sample)
            if name is None:
                unlabelled += 1
            elif value is not None and name not in skip:
                used = live(name).requested
                with _reading(client, "podsUsed"):
                    used["pods"] = used.get("pods", 0) + _to_base("pods", value, ROUND_CEILING)
        if spec.latency.enabled:
            self._latency(client, fleet, cluster, skip)
        if cluster is None:
            self._check_labels(client)
        for seen in fleet.clusters.values():
            if seen.allocatable and seen.observed_at is None:
                seen.observed_at = at  # a custom freshness query said nothing; instant data is recent
        if unlabelled:
            fleet.warnings.append(
                f"{unlabelled} series from {client.source} had no {self.cluster_label!r} (or "
                f"{self.resource_label!r}) label and were ignored"
            )

    def _latency(self, client: _Client, fleet: LiveFleet, cluster: str | None,
                 skip: set[str] | frozenset[str]) -> None:
        def pair(sample: dict[str, Any]) -> tuple[str, str] | None:
            site = sample["metric"].get(self.site_label)
            name = cluster if cluster is not None else sample["metric"].get(self.cluster_label)
            if site is None or name is None or name in skip:
                return None
            return site, name

        seen: dict[tuple[str, str], datetime] = {}
        for sample in self._query(client, "probeFreshness", cluster):
            key, value = pair(sample), _value(sample)
            if key is not None and value is not None:
                with _reading(client, "probeFreshness"):
                    newest = datetime.fromtimestamp(value, UTC)
                seen[key] = max(seen.get(key, newest), newest)
        # One latency query per distinct series selector; a site takes its own selector's answer.
        rendered: dict[str | None, str] = {}

        def latency_query(site: str | None) -> str:
            if site not in rendered:
                rendered[site] = self.spec.render_query("latency", site=site)
            return rendered[site]

        p95: dict[tuple[str, str], float] = {}
        for promql in dict.fromkeys([latency_query(None), *map(latency_query, self.spec.latency.sites)]):
            for sample in self._query(client, "latency", cluster, promql=promql):
                key, value = pair(sample), _value(sample)
                if key is not None and value is not None and latency_query(key[0]) == promql:
                    if not 0 <= value * 1000.0 <= MAX_LATENCY_MS:
                        raise client.fail("latency", f"gave a latency of {value!r} s, outside "
                                          f"0..{MAX_LATENCY_MS / 1000:g} s",
                                          "check spec.queries.latency and the probes behind it")
                    p95[key] = max(p95.get(key, 0.0), value * 1000.0)
        for key in set(seen) | set(p95):
            observed = seen.get(key) or (self.at if key in p95 else None)
            fleet.latency[key] = LatencyLive(ms=p95.get(key), observed_at=observed)
        fleet.latency_read = True


#: kube-state-metrics readiness of a workload object, per kind: (query name, PromQL, object label)
READY_QUERIES = {
    "Deployment": ("deploymentReady", "kube_deployment_status_replicas_available", "deployment"),
    "StatefulSet": ("statefulsetReady", "kube_statefulset_status_replicas_ready", "statefulset"),
}


def fetch_ready(
    bundle: Bundle,
    url: str | None,
    *,
    source: MetricsSource | None = None,
    at: datetime | None = None,
) -> dict[tuple[str, str, str, str], int]:
    """Ready replicas of every Deployment and StatefulSet, per cluster, at ``at`` (``berth rollout``).

    The same two shapes as :func:`fetch_live`: a global layer whose series carry the
    MetricsSource's cluster label, and clusters with their own Prometheus
    (``spec.prometheus.clusters``), whose series all belong to them. A cluster whose own
    Prometheus cannot be reached reports nothing (its workloads count as not ready).

    Returns:
        ``{(cluster, kind, namespace, name): ready replicas}``.

    Raises:
        LiveSourceError: no URL, or the global layer failed or answered an error.
    """
    source = source or find_source(bundle) or MetricsSource.default()
    spec = source.spec
    url = url or spec.prometheus.url
    own = spec.prometheus.clusters
    if not url and not own:
        raise LiveSourceError("no Prometheus URL: give --prometheus URL or spec.prometheus.url in a MetricsSource")
    at = (at or datetime.now(UTC)).astimezone(UTC)
    label = spec.label("cluster")
    out: dict[tuple[str, str, str, str], int] = {}

    def read(client: _Client, cluster: str | None) -> None:
        for kind, (name, metric, object_label) in READY_QUERIES.items():
            promql = f"max by ({label}, namespace, {object_label}) ({metric})"
            for sample in client.query(name, promql, at):
                owner = cluster if cluster is not None else sample["metric"].get(label)
                ns, obj, value = sample["metric"].get("namespace"), sample["metric"].get(object_label), _value(sample)
                if owner is None or ns is None or obj is None or value is None or (cluster is None and owner in own):
                    continue
                out[(owner, kind, ns, obj)] = max(0, int(value))

    deadline = time.monotonic() + parse_duration(spec.prometheus.total_timeout).total_seconds()
    if url:
        client = _Client(url, source, deadline=deadline)
        try:
            read(client, None)
        finally:
            client.close()
    for cluster, settings in sorted(own.items()):
        client = _Client(settings.url, source, deadline=deadline, http=settings,
                         field=f"spec.prometheus.clusters.{cluster}")
        try:
            read(client, cluster)
        except _Unreachable:
            continue
        finally:
            client.close()
    return out
