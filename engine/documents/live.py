"""The ``MetricsSource`` kind: where and how Berth reads live capacity and latency (spec section 6).

The document and its settings only (its PromQL in :mod:`engine.documents.promql`, its durations in
:mod:`engine.documents.durations`); :mod:`engine.live` applies what the adapters read.
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
from typing import Any, Literal

from pydantic import Field, field_validator, model_validator

from engine.documents.durations import coerce_duration
from engine.documents.fields import Metadata, _Model
from engine.documents.promql import (
    DEFAULT_QUERIES,
    EXCLUDED_NODES,
    LATENCY_PRESETS,
    PROMQL_LABEL,
    probe_selector,
    sanitize_label,
)
from engine.limits import echo

__all__ = [
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
]


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
        return coerce_duration(value)

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
        return coerce_duration(value)

    @field_validator("probe")
    @classmethod
    def _probe(cls, value: str) -> str:
        return probe_selector(value)

    @field_validator("sites")
    @classmethod
    def _site_probes(cls, value: dict[str, str]) -> dict[str, str]:
        return {site: probe_selector(probe) for site, probe in value.items()}

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
        return coerce_duration(value)

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
        return coerce_duration(value)

    @field_validator("labels")
    @classmethod
    def _label_names(cls, value: dict[str, str]) -> dict[str, str]:
        for key, name in value.items():
            if not isinstance(name, str) or not PROMQL_LABEL.fullmatch(name):
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
        values["excluded_nodes"] = string.Template(EXCLUDED_NODES).substitute(tolerated=tolerated)
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
