"""A fleet whose backfilled metrics change over time, for the self-healing tests.

One real Prometheus holds every cluster below; a test's bundle picks the clusters it is
about (the others are "extra" and ignored). Times are explicit (``T0`` + offsets), never now:

- ``edge-a``: its metrics stop at ``T1`` and come back at ``T3``;
- ``edge-b``: 4 cpu, shrinks to 2 cpu at ``T2``;
- ``edge-c``: its only node turns NotReady at ``T1`` (the Ready condition; series go on);
- ``edge-d``: its metrics stop at ``T1``, come back 8 minutes later, stop again 4 minutes after;
- ``cloud-1``: 16 cpu throughout.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from tests.prom_fixture import OpenMetrics

API = "placement.berth.dev/v1alpha1"
GI = 2**30
T0 = 1_790_000_000  # 2026-09-21, a fixed past time: every query names its time
T1 = T0 + 600
T2 = T0 + 2400
T3 = T0 + 3600
END = T0 + 5400
STEP = 60


def iso(t: float) -> str:
    return datetime.fromtimestamp(t, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _node(om: OpenMetrics, cluster: str, points: list[tuple[float, float]], *, ready: list[tuple[float, float]]
          | None = None) -> None:
    """One node ``n1`` of ``cluster``: cpu per ``points`` (time, cores), 64Gi, 110 pods, schedulable."""
    node = {"cluster": cluster, "node": f"{cluster}-n1"}
    om.series("kube_node_status_allocatable", {**node, "resource": "cpu", "unit": "core"}, points)
    times = [t for t, _ in points]
    om.series("kube_node_status_allocatable", {**node, "resource": "memory", "unit": "byte"},
              [(t, 64 * GI) for t in times])
    om.series("kube_node_status_allocatable", {**node, "resource": "pods", "unit": "integer"},
              [(t, 110) for t in times])
    om.series("kube_node_spec_unschedulable", node, [(t, 0) for t in times])
    om.series("kube_node_status_condition", {**node, "condition": "Ready", "status": "true"},
              ready or [(t, 1) for t in times])


def dataset() -> str:
    om = OpenMetrics()
    everything = range(T0 - 3600, END + 1, STEP)
    _node(om, "edge-a", [(t, 4) for t in everything if t <= T1 or t >= T3])
    _node(om, "edge-b", [(t, 4 if t < T2 else 2) for t in everything])
    _node(om, "edge-c", [(t, 4) for t in everything], ready=[(t, 1 if t < T1 else 0) for t in everything])
    _node(om, "edge-d", [(t, 4) for t in everything if t <= T1 or T1 + 480 <= t <= T1 + 720])
    _node(om, "cloud-1", [(t, 16) for t in everything])
    return om.text()


def cluster(name: str, tier: str, cpu: str, price: str) -> dict[str, Any]:
    return {"apiVersion": API, "kind": "Cluster", "metadata": {"name": name, "labels": {"tier": tier}},
            "spec": {"region": "eu", "capacity": {"cpu": cpu, "memory": "64Gi", "pods": 110},
                     "price": {"cpu": price}}}


def tiers(namespace: str, *, burst: bool = True) -> dict[str, Any]:
    """Edge first; the cloud tier only when the edge cannot take the replicas (spec 3.2)."""
    affinities = [{"affinityName": "edge", "labelSelector": {"matchLabels": {"tier": "edge"}}}]
    if burst:
        affinities.append({"affinityName": "burst", "labelSelector": {"matchLabels": {"tier": "cloud"}}})
    return {"apiVersion": API, "kind": "PlacementPolicy", "metadata": {"name": "tiers", "namespace": namespace},
            "spec": {"clusterAffinities": affinities}}


def workload(name: str, namespace: str, replicas: int, *, policy: str | None = "tiers") -> dict[str, Any]:
    spec: dict[str, Any] = {"replicas": replicas, "resources": {"cpu": "1", "memory": "1Gi"}}
    if policy:
        spec["policy"] = policy
    return {"apiVersion": API, "kind": "Workload", "metadata": {"name": name, "namespace": namespace},
            "spec": spec}


def usage(assignment: dict[str, dict[str, int]], cpu_per_replica: int = 1) -> dict[str, int]:
    """cpu (cores) committed per cluster, every workload asking 1 cpu per replica."""
    out: dict[str, int] = {}
    for spread in assignment.values():
        for c, n in spread.items():
            out[c] = out.get(c, 0) + n * cpu_per_replica
    return out
