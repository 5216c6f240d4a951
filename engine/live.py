"""Live inputs: the ``MetricsSource`` kind and applying live numbers to a bundle.

Pure code (spec section 6): no sockets, no clock. The adapters
(:mod:`adapters.prometheus`, :mod:`adapters.kubernetes`) read the world into a
:class:`LiveFleet`; :func:`apply_live` turns a bundle plus that snapshot into
a new bundle whose Cluster capacities and Site latencies are the live values,
and a :class:`LiveReport` that says which clusters were stale (and what was
used instead), missing or extra, in sentences a plan can carry as
``status.warnings``.

Decisions where the spec is silent (also written in ``docs/live-inputs.md``):

- A cluster's live capacity is authoritative for *every* resource: a resource
  the bundle lists but no schedulable node reports becomes 0 (with a warning),
  unless it is named in ``keepFileResources`` (non-Kubernetes resources such as
  licences).
- Free capacity is ``allocatable - requested``, never below 0 (an
  overcommitted resource is reported).
- A cluster of the bundle that has no live data is *missing*; ``onMissing``
  (default ``fallback``) decides between the file's value and refusing. Data
  older than ``maxAge`` is *stale*; ``onStale`` decides likewise. A cluster
  whose live source failed (an unreachable kubeconfig context) is stale.
- A cluster in the live data but not in the bundle is *extra*: reported and
  never used.
- Site latency: a (site, cluster) pair with a fresh p95 takes it; with fresh
  probes that all failed the cluster becomes unreachable from the site
  (removed from ``latencyMs``); with stale probes ``onStale`` applies; with no
  probes at all the file's value is kept and reported. Sites or clusters
  found only in the probes are extra and ignored.
- Region and zone from the Kubernetes API fill ``spec.region``/``spec.zone``
  only where the bundle leaves them empty; a disagreement is reported and the
  bundle wins (policies select on it).
"""

from __future__ import annotations

import re
import string
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, Literal

from pydantic import Field, field_validator, model_validator

from engine.bundle import KINDS, Bundle
from engine.errors import InputError, LiveSourceError
from engine.limits import MAX_DURATION_SECONDS, echo, max_quantity
from engine.quantity import format_quantity
from engine.resources import Metadata, _Model

__all__ = [
    "DEFAULT_QUERIES",
    "LATENCY_PRESETS",
    "BasicAuth",
    "ClusterLive",
    "ClusterPrometheus",
    "HttpClientSettings",
    "KubernetesSettings",
    "LatencyLive",
    "LatencySettings",
    "LiveFleet",
    "LiveReport",
    "ManagedPods",
    "MetricsSource",
    "MetricsSourceSpec",
    "PrometheusSettings",
    "SecretRef",
    "StaleCluster",
    "TlsSettings",
    "apply_live",
    "find_source",
    "merge_fleets",
    "parse_duration",
]

# --- durations ------------------------------------------------------------------

_DURATION = re.compile(r"(?:(\d+)(ms|s|m|h|d|w|y))+")
_DURATION_PART = re.compile(r"(\d+)(ms|s|m|h|d|w|y)")
_UNIT_SECONDS = {
    "ms": 0.001, "s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800, "y": 31536000,
}


def parse_duration(text: str) -> timedelta:
    """Parse a Prometheus duration (``30s``, ``5m``, ``1h30m``) into a timedelta.

    Raises:
        ValueError: not a Prometheus duration.
    """
    if not isinstance(text, str) or len(text) > 64 or not _DURATION.fullmatch(text):
        raise ValueError(f"expected a duration such as '30s', '5m' or '1h', got {echo(text)}")
    seconds = sum(int(n) * _UNIT_SECONDS[u] for n, u in _DURATION_PART.findall(text))
    if seconds > MAX_DURATION_SECONDS:
        raise ValueError(f"{echo(text)} is out of range: at most one year (365d)")
    return timedelta(seconds=seconds)


def _duration(value: Any) -> str:
    if isinstance(value, int | float) and not isinstance(value, bool):
        if not 0 <= value <= MAX_DURATION_SECONDS:  # also nan and inf
            raise ValueError(f"{echo(value)} seconds is out of range: at most one year (365d)")
        value = f"{int(value)}s"
    parse_duration(value)
    return str(value)


def _human(delta: timedelta) -> str:
    seconds = int(delta.total_seconds())
    if seconds < 120:
        return f"{seconds}s"
    if seconds < 7200:
        return f"{seconds // 60}m"
    return f"{seconds / 3600:.1f}h"


# --- the MetricsSource kind ---------------------------------------------------------

# Building blocks of the default ``requested`` query (PromQL text with $placeholders).
# Every series is first reduced with ``max by`` its identity, so that the same series
# scraped twice (an HA pair of kube-state-metrics or kube-scheduler replicas, duplicate
# scrapes) counts once: replicas differ only in ``instance``/``job``-like labels.
_POD = "$cluster, namespace, pod, $node, $resource"
_RUNNING = (
    "max by ($cluster, namespace, pod) "
    '(kube_pod_status_phase{phase=~"Running|Pending"} == 1)'
)
_SIDECAR = 'kube_pod_init_container_info{restart_policy="Always"}'
#: kube-scheduler's own accounting: init containers, sidecars, overhead and pod-level resources.
_SCHEDULER_POD = f"max by ({_POD}) (kube_pod_resource_request)"
#: kube-state-metrics, with the scheduler's rule:
#: max(app containers + sidecar init containers, largest other init container) + overhead.
_KSM_CONTAINERS = (
    f"sum by ({_POD}) ("
    f"max by ({_POD}, container) (kube_pod_container_resource_requests) or "
    f"(max by ({_POD}, container) (kube_pod_init_container_resource_requests) "
    f"and on ($cluster, namespace, pod, container) {_SIDECAR}))"
)
_KSM_INIT = (
    f"max by ({_POD}) (max by ({_POD}, container) (kube_pod_init_container_resource_requests) "
    f"unless on ($cluster, namespace, pod, container) {_SIDECAR})"
)
_KSM_OVERHEAD = (
    "(label_replace(max by ($cluster, namespace, pod) (kube_pod_overhead_cpu_cores), "
    '"$resource", "cpu", "", "") or '
    "label_replace(max by ($cluster, namespace, pod) (kube_pod_overhead_memory_bytes), "
    '"$resource", "memory", "", "")) '
    "* on ($cluster, namespace, pod) group_left ($node) "
    "max by ($cluster, namespace, pod, $node) (kube_pod_info)"
)
_KSM_POD = (
    f"sum by ({_POD}) ("
    f"label_replace(max by ({_POD}) ("
    f'label_replace({_KSM_CONTAINERS}, "berth_part", "containers", "", "") or '
    f'label_replace({_KSM_INIT}, "berth_part", "init", "", "")), '
    f'"berth_part", "pod", "", "") or '
    f'label_replace({_KSM_OVERHEAD}, "berth_part", "overhead", "", ""))'
)


def _requests_of(pods: str) -> str:
    """Requests per (cluster, resource) of the pods that count, from a per-pod vector."""
    return (
        f"sum by ($cluster, $resource) (({pods} * on ($cluster, namespace, pod) group_left () "
        f"{_RUNNING}) $exclude_managed unless on ($cluster, $node) $excluded_nodes)"
    )


#: The default PromQL, as ``string.Template`` text. Placeholders:
#: ``$cluster``, ``$node``, ``$resource``, ``$site`` (label names),
#: ``$excluded_nodes`` (a vector of the nodes that take no new pods),
#: ``$exclude_managed`` (``unless`` Berth's own pods, or empty),
#: ``$lookback``, ``$window``, ``$step``, ``$quantile``, ``$probe`` (the latency series).
DEFAULT_QUERIES: dict[str, str] = {
    # allocatable of schedulable nodes, per (cluster, resource); cpu in cores
    "allocatable": (
        "sum by ($cluster, $resource) (max by ($cluster, $node, $resource) "
        "(kube_node_status_allocatable) unless on ($cluster, $node) $excluded_nodes)"
    ),
    # requests of Running/Pending pods not managed by Berth, on schedulable nodes or not
    # yet bound, per (cluster, resource): kube-scheduler's numbers for the clusters that
    # expose them, kube-state-metrics with the scheduler's rule for the others
    "requested": (
        f"{_requests_of(_SCHEDULER_POD)} or on ($cluster) {_requests_of(_KSM_POD)}"
    ),
    # the same pods, counted, per cluster (the ``pods`` resource)
    "podsUsed": (
        "count by ($cluster) (("
        "max by ($cluster, namespace, pod, $node) (kube_pod_info) "
        "* on ($cluster, namespace, pod) group_left () "
        "(max by ($cluster, namespace, pod) "
        '(kube_pod_status_phase{phase=~"Running|Pending"} == 1))'
        ") $exclude_managed unless on ($cluster, $node) $excluded_nodes)"
    ),
    # newest sample time per cluster, looking back $lookback
    "freshness": (
        "max by ($cluster) (timestamp(kube_node_status_allocatable)) or "
        "max by ($cluster) (max_over_time(timestamp(kube_node_status_allocatable)[$lookback:1m]))"
    ),
    # p$quantile over $window of $probe (the site's latency preset) of successful probes, seconds
    "latency": (
        "quantile_over_time($quantile, (max by ($site, $cluster) "
        "($probe and ignoring (phase) probe_success == 1))[$window:$step])"
    ),
    # newest probe (successful or not) per (site, cluster), and whether any succeeded
    "probeFreshness": (
        "max by ($site, $cluster) (timestamp(probe_success)) or "
        "max by ($site, $cluster) (max_over_time(timestamp(probe_success)[$lookback:1m]))"
    ),
}

_EXCLUDED_NODES = (
    "(kube_node_spec_unschedulable == 1 or "
    'kube_node_spec_taint{effect=~"NoSchedule|NoExecute", key!~"$tolerated"})'
)

_PROMQL_LABEL = re.compile(r"^[a-zA-Z_][a-zA-Z0-9_]*$")


def sanitize_label(name: str) -> str:
    """kube-state-metrics' label/resource sanitising: every other character becomes ``_``."""
    return re.sub(r"[^a-zA-Z0-9_]", "_", name)


class ManagedPods(_Model):
    """How Berth recognises the pods it placed itself (they are re-placed, not subtracted)."""

    label_key: str = "app.kubernetes.io/managed-by"
    label_value: str = "berth"


class SecretRef(_Model):
    """A secret read when Berth queries, never written in the bundle: a file or an environment variable."""

    file: str | None = None
    env: str | None = None

    @model_validator(mode="after")
    def _exactly_one(self) -> SecretRef:
        if (self.file is None) == (self.env is None):
            raise ValueError("give exactly one of file (a path) or env (a variable name)")
        return self


class BasicAuth(_Model):
    username: str
    password: SecretRef


class TlsSettings(_Model):
    ca_file: str | None = None  # CA bundle that signed the server's certificate
    cert_file: str | None = None  # client certificate (mutual TLS)
    key_file: str | None = None
    insecure_skip_verify: bool = False

    @model_validator(mode="after")
    def _pair(self) -> TlsSettings:
        if self.key_file is not None and self.cert_file is None:
            raise ValueError("keyFile needs certFile")
        return self


class HttpClientSettings(_Model):
    """How to authenticate to one Prometheus (the names follow Prometheus' own HTTP client config)."""

    bearer_token: SecretRef | None = None
    basic_auth: BasicAuth | None = None
    headers: dict[str, str] = Field(default_factory=dict)  # e.g. X-Scope-OrgID for Mimir
    tls: TlsSettings | None = None

    @field_validator("headers")
    @classmethod
    def _no_credentials_in_headers(cls, value: dict[str, str]) -> dict[str, str]:
        for name in value:
            if name.lower() in ("authorization", "proxy-authorization"):
                raise ValueError(
                    f"headers.{name}: credentials do not belong in the bundle; use bearerToken or "
                    "basicAuth, which read them from a file or an environment variable"
                )
        return value

    @model_validator(mode="after")
    def _one_scheme(self) -> HttpClientSettings:
        if self.bearer_token is not None and self.basic_auth is not None:
            raise ValueError("give bearerToken or basicAuth, not both")
        return self


class ClusterPrometheus(HttpClientSettings):
    """One cluster's own Prometheus: every series it returns belongs to that cluster.

    Its credentials are its own: nothing of the global layer's is sent to it.
    """

    url: str


class PrometheusSettings(HttpClientSettings):
    #: a global query layer (Thanos, Mimir, federation) whose series carry the cluster label
    url: str | None = None
    #: cluster -> its own Prometheus (no cluster label needed); wins over ``url`` for that cluster
    clusters: dict[str, ClusterPrometheus] = Field(default_factory=dict)
    timeout: str = "10s"
    retries: int = Field(default=2, ge=0, le=10)
    backoff: str = "500ms"
    total_timeout: str = "30s"

    @field_validator("timeout", "backoff", "total_timeout", mode="before")
    @classmethod
    def _durations(cls, value: Any) -> str:
        return _duration(value)

    @field_validator("clusters", mode="before")
    @classmethod
    def _bare_urls(cls, value: Any) -> Any:
        # ``clusters: {edge-paris-1: http://prom.paris:9090}`` is short for ``{url: ...}``.
        if isinstance(value, dict):
            return {k: {"url": v} if isinstance(v, str) else v for k, v in value.items()}
        return value

    @property
    def configured(self) -> bool:
        """Whether the MetricsSource names any Prometheus at all."""
        return bool(self.url or self.clusters)


#: Latency presets: the blackbox exporter series that measures the path, not the server.
#: ``duration`` is the whole probe (DNS, connect, TLS, HTTP); ``icmp`` the ping round trip;
#: ``http-connect`` the TCP connect phase of an HTTP probe.
LATENCY_PRESETS: dict[str, str] = {
    "duration": "probe_duration_seconds",
    "icmp": 'probe_icmp_duration_seconds{phase="rtt"}',
    "http-connect": 'probe_http_duration_seconds{phase="connect"}',
}
_SELECTOR = re.compile(r"^[a-zA-Z_:][a-zA-Z0-9_:]*(\{[^{}]*\})?$")


def _probe_selector(value: Any) -> str:
    if not isinstance(value, str) or not (value in LATENCY_PRESETS or _SELECTOR.match(value)):
        raise ValueError(
            f"expected a preset ({', '.join(LATENCY_PRESETS)}) or a PromQL series selector "
            f"such as 'probe_dns_lookup_time_seconds', got {value!r}"
        )
    return value


class LatencySettings(_Model):
    enabled: bool = True
    window: str = "15m"
    step: str = "30s"
    quantile: float = Field(default=0.95, gt=0, le=1)
    #: the series measured (``$probe``): a preset of :data:`LATENCY_PRESETS` or a selector
    probe: str = "duration"
    #: site -> its own preset or selector (sites probed by another blackbox module)
    sites: dict[str, str] = Field(default_factory=dict)

    @field_validator("window", "step", mode="before")
    @classmethod
    def _durations(cls, value: Any) -> str:
        return _duration(value)

    @field_validator("probe")
    @classmethod
    def _probe(cls, value: str) -> str:
        return _probe_selector(value)

    @field_validator("sites")
    @classmethod
    def _site_probes(cls, value: dict[str, str]) -> dict[str, str]:
        return {site: _probe_selector(probe) for site, probe in value.items()}

    def selector(self, site: str | None = None) -> str:
        """The series selector that measures ``site`` (default: ``probe``)."""
        probe = self.sites.get(site, self.probe) if site is not None else self.probe
        return LATENCY_PRESETS.get(probe, probe)


class KubeContext(_Model):
    cluster: str | None = None
    region: str | None = None
    zone: str | None = None


class KubernetesSettings(_Model):
    #: kubeconfig context -> the Cluster it is (default: a Cluster named like the context)
    contexts: dict[str, KubeContext] = Field(default_factory=dict)
    timeout: str = "10s"
    retries: int = Field(default=1, ge=0, le=10)

    @field_validator("timeout", mode="before")
    @classmethod
    def _durations(cls, value: Any) -> str:
        return _duration(value)

    @field_validator("contexts", mode="before")
    @classmethod
    def _bare_names(cls, value: Any) -> Any:
        # ``contexts: {kind-paris: edge-paris-1}`` is short for ``{cluster: edge-paris-1}``.
        if isinstance(value, dict):
            return {k: {"cluster": v} if isinstance(v, str) else v for k, v in value.items()}
        return value


class MetricsSourceSpec(_Model):
    prometheus: PrometheusSettings = Field(default_factory=PrometheusSettings)
    kubernetes: KubernetesSettings = Field(default_factory=KubernetesSettings)
    max_age: str = "5m"
    lookback: str = "1h"
    on_stale: Literal["fallback", "refuse"] = "fallback"
    on_missing: Literal["fallback", "refuse"] = "fallback"
    labels: dict[Literal["cluster", "node", "resource", "site"], str] = Field(default_factory=dict)
    managed_pods: ManagedPods | None = Field(default_factory=ManagedPods)
    schedulable_taints: list[str] = Field(default_factory=lambda: ["nvidia.com/gpu", "amd.com/gpu"])
    resource_names: dict[str, str] = Field(default_factory=dict)
    keep_file_resources: list[str] = Field(default_factory=list)
    latency: LatencySettings = Field(default_factory=LatencySettings)
    queries: dict[str, str] = Field(default_factory=dict)

    @field_validator("max_age", "lookback", mode="before")
    @classmethod
    def _durations(cls, value: Any) -> str:
        return _duration(value)

    @field_validator("labels")
    @classmethod
    def _label_names(cls, value: dict[str, str]) -> dict[str, str]:
        for key, name in value.items():
            if not isinstance(name, str) or not _PROMQL_LABEL.fullmatch(name):
                raise ValueError(f"labels.{key}: {echo(name)} is not a Prometheus label name")
        return value

    @field_validator("queries")
    @classmethod
    def _known_queries(cls, value: dict[str, str]) -> dict[str, str]:
        for name, text in value.items():
            if name not in DEFAULT_QUERIES:
                raise ValueError(
                    f"unknown query {echo(name)}; expected some of {', '.join(DEFAULT_QUERIES)}"
                )
            if not isinstance(text, str) or not text.strip():
                raise ValueError(f"queries.{name} must be PromQL text")
        return value

    @model_validator(mode="after")
    def _templates_render(self) -> MetricsSourceSpec:
        for name in self.queries:
            try:
                self.render_query(name)
            except (KeyError, ValueError) as exc:
                raise ValueError(
                    f"queries.{name}: unknown placeholder {exc}; placeholders are "
                    + ", ".join("$" + k for k in sorted(self.template_values()))
                ) from None
        return self

    # -- rendering --------------------------------------------------------------

    def label(self, key: Literal["cluster", "node", "resource", "site"]) -> str:
        """The Prometheus label name that carries ``key`` (default: ``key`` itself)."""
        return self.labels.get(key, key)

    def template_values(self) -> dict[str, str]:
        """The values the ``$placeholders`` of a query take."""
        tolerated = "|".join(re.escape(k).replace("\\", "\\\\") for k in self.schedulable_taints)
        values = {
            "cluster": self.label("cluster"),
            "node": self.label("node"),
            "resource": self.label("resource"),
            "site": self.label("site"),
            "lookback": self.lookback,
            "window": self.latency.window,
            "step": self.latency.step,
            "quantile": repr(self.latency.quantile),
            "probe": self.latency.selector(),
        }
        values["excluded_nodes"] = string.Template(_EXCLUDED_NODES).substitute(tolerated=tolerated)
        if self.managed_pods is None:
            values["exclude_managed"] = ""
        else:
            key = "label_" + sanitize_label(self.managed_pods.label_key)
            val = self.managed_pods.label_value.replace("\\", "\\\\").replace('"', '\\"')
            values["exclude_managed"] = (
                f"unless on ({values['cluster']}, namespace, pod) "
                f'kube_pod_labels{{{key}="{val}"}}'
            )
        return values

    def render_query(self, name: str, *, site: str | None = None) -> str:
        """The PromQL sent for query ``name``, placeholders filled in; ``$probe`` for ``site``."""
        text = self.queries.get(name, DEFAULT_QUERIES[name])
        values = self.template_values()
        if site is not None:
            values["probe"] = self.latency.selector(site)
        return string.Template(text).substitute(values)


class MetricsSource(_Model):
    """Where and how Berth reads live capacity and latency (spec section 6)."""

    api_version: Literal["placement.berth.dev/v1alpha1"]
    kind: Literal["MetricsSource"]
    metadata: Metadata
    spec: MetricsSourceSpec = Field(default_factory=MetricsSourceSpec)

    @classmethod
    def default(cls) -> MetricsSource:
        """The source used when a bundle declares none: every default above."""
        return cls(
            api_version="placement.berth.dev/v1alpha1",
            kind="MetricsSource",
            metadata=Metadata(name="default"),
        )


KINDS.setdefault("MetricsSource", MetricsSource)


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
        return f"its newest sample is {_human(age)} old (maxAge {_human(max_age)})"
    if not cluster.has_values:
        return (
            f"its newest sample is {_human(age)} old, too old for the instant queries "
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
                reason = f"probes {pair} are {_human(age)} old (maxAge {_human(max_age)})"
            elif age > window:
                # No probe in the window (maxAge is longer): nothing was measured, which
                # is no evidence that the probes fail, and what the quantile saw is old.
                reason = (
                    f"probes {pair} are {_human(age)} old, older than the latency window "
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
