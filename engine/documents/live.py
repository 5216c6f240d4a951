"""The ``MetricsSource`` kind: where and how Berth reads live capacity and latency (spec section 6).

The document and its settings only; :mod:`engine.live` applies what the adapters read.
Decisions where the spec is silent (also written in ``docs/live-inputs.md``), carried out
by :func:`engine.live.apply_live`:

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
from datetime import timedelta
from typing import Any, Literal

from pydantic import Field, field_validator, model_validator

from engine.documents.fields import Metadata, _Model
from engine.limits import MAX_DURATION_SECONDS, echo

__all__ = [
    "DEFAULT_QUERIES",
    "LATENCY_PRESETS",
    "BasicAuth",
    "ClusterPrometheus",
    "HttpClientSettings",
    "KubernetesSettings",
    "LatencySettings",
    "ManagedPods",
    "MetricsSource",
    "MetricsSourceSpec",
    "PrometheusSettings",
    "SecretRef",
    "TlsSettings",
    "human_duration",
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


def human_duration(delta: timedelta) -> str:
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
    # (0 for a cluster whose nodes are all excluded: it has no room, it is not stale)
    "allocatable": (
        "sum by ($cluster, $resource) (max by ($cluster, $node, $resource) "
        "(kube_node_status_allocatable) unless on ($cluster, $node) $excluded_nodes) "
        "or on ($cluster) 0 * sum by ($cluster, $resource) (kube_node_status_allocatable)"
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

#: nodes that take no new pods: cordoned, NotReady (or Unknown), or tainted against them
_EXCLUDED_NODES = (
    "(kube_node_spec_unschedulable == 1 or "
    'kube_node_status_condition{condition="Ready",status="true"} == 0 or '
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
