"""The PromQL Berth sends by default, and the rules a ``MetricsSource`` applies to PromQL it is given.

Only text: :meth:`engine.documents.live.MetricsSourceSpec.render_query` fills the placeholders,
the Prometheus adapter sends the result.
"""

from __future__ import annotations

import re
from typing import Any

__all__ = [
    "DEFAULT_QUERIES",
    "EXCLUDED_NODES",
    "LATENCY_PRESETS",
    "PROMQL_LABEL",
    "probe_selector",
    "sanitize_label",
]

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
EXCLUDED_NODES = (
    "(kube_node_spec_unschedulable == 1 or "
    'kube_node_status_condition{condition="Ready",status="true"} == 0 or '
    'kube_node_spec_taint{effect=~"NoSchedule|NoExecute", key!~"$tolerated"})'
)

PROMQL_LABEL = re.compile(r"^[a-zA-Z_][a-zA-Z0-9_]*$")


def sanitize_label(name: str) -> str:
    """kube-state-metrics' label/resource sanitising: every other character becomes ``_``."""
    return re.sub(r"[^a-zA-Z0-9_]", "_", name)


#: Latency presets: the blackbox exporter series that measures the path, not the server.
#: ``duration`` is the whole probe (DNS, connect, TLS, HTTP); ``icmp`` the ping round trip;
#: ``http-connect`` the TCP connect phase of an HTTP probe.
LATENCY_PRESETS: dict[str, str] = {
    "duration": "probe_duration_seconds",
    "icmp": 'probe_icmp_duration_seconds{phase="rtt"}',
    "http-connect": 'probe_http_duration_seconds{phase="connect"}',
}
_SELECTOR = re.compile(r"^[a-zA-Z_:][a-zA-Z0-9_:]*(\{[^{}]*\})?$")


def probe_selector(value: Any) -> str:
    """``value`` when it is a latency preset or a PromQL series selector (a pydantic field rule)."""
    if not isinstance(value, str) or not (value in LATENCY_PRESETS or _SELECTOR.match(value)):
        raise ValueError(
            f"expected a preset ({', '.join(LATENCY_PRESETS)}) or a PromQL series selector "
            f"such as 'probe_dns_lookup_time_seconds', got {value!r}"
        )
    return value
