"""Multi-cluster service objects for workloads whose clients run on other clusters.

A workload that declares ``spec.exports.service`` (a Service of its base) is a server; its
clients are the workloads of its namespace that ``dependsOn`` it or name it in their policy's
``affinity``. Whenever a client runs on a cluster where the server does not run, or the server
runs on a cluster where no client does, they must reach each other across clusters:

- Kubernetes MCS API (default, ``via: mcs``): a ``ServiceExport`` on every cluster that runs the
  server, a ``ServiceImport`` (type ``ClusterSetIP``, the Service's ports) on every client
  cluster the server is not confined to; clients use ``<service>.<namespace>.svc.clusterset.local``;
- Istio (``via: istio``): a ``ServiceEntry`` on every such client cluster with the same host, one
  endpoint per server cluster on that cluster's network (its ``topology.istio.io/network``
  label, else its name), reached through the network's east-west gateway.

Nothing here reads files: the Service's ports come from the caller (the base, read once).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from engine import Bundle, Workload

__all__ = ["ISTIO_API", "MCS_API", "Export", "ServicePort", "clients_of", "connectivity_objects"]

MCS_API = "multicluster.x-k8s.io/v1alpha1"
ISTIO_API = "networking.istio.io/v1"
NETWORK_LABEL = "topology.istio.io/network"
LABELS = {"app.kubernetes.io/managed-by": "berth"}
#: Service protocols as Istio names them (it has no UDP).
_ISTIO_PROTOCOL = {"TCP": "TCP", "SCTP": "TCP"}


@dataclass(frozen=True)
class ServicePort:
    name: str
    port: int
    protocol: str = "TCP"
    app_protocol: str | None = None


@dataclass(frozen=True)
class Export:
    """A server workload, the Service it exports and that Service's ports (from its base)."""

    workload: Workload
    service: str
    via: str
    ports: tuple[ServicePort, ...]

    @property
    def namespace(self) -> str:
        return str(self.workload.metadata.namespace)

    @property
    def host(self) -> str:
        return f"{self.service}.{self.namespace}.svc.clusterset.local"


def clients_of(bundle: Bundle, server: Workload) -> list[str]:
    """Keys of the workloads that ``dependsOn`` ``server`` or are affine to it (same namespace)."""
    ns, name = server.metadata.namespace, server.metadata.name
    out: list[str] = []
    for w in bundle.workloads:
        if w.metadata.namespace != ns or w.key == server.key:
            continue
        policy = bundle.policy_for(w)
        affine = policy.spec.affinity.workloads if policy is not None and policy.spec.affinity else []
        if name in w.spec.depends_on or name in affine:
            out.append(w.key)
    return sorted(out)


def _meta(name: str, namespace: str, server: str) -> dict[str, Any]:
    return {"name": name, "namespace": namespace, "labels": dict(LABELS),
            "annotations": {"placement.berth.dev/workload": server}}


def _import(export: Export) -> dict[str, Any]:
    ports = []
    for p in export.ports:
        entry: dict[str, Any] = {"name": p.name, "port": p.port, "protocol": p.protocol}
        if p.app_protocol:
            entry["appProtocol"] = p.app_protocol
        ports.append(entry)
    return {"apiVersion": MCS_API, "kind": "ServiceImport",
            "metadata": _meta(export.service, export.namespace, export.workload.key),
            "spec": {"type": "ClusterSetIP", "ports": ports}}


def _service_entry(export: Export, servers: list[str], networks: Mapping[str, str]) -> dict[str, Any]:
    ports = [{"name": p.name, "number": p.port, "protocol": _istio_protocol(p)} for p in export.ports]
    endpoints = [{"network": networks.get(c, c), "ports": {p.name: p.port for p in export.ports},
                  "labels": {"placement.berth.dev/cluster": c}} for c in servers]
    return {"apiVersion": ISTIO_API, "kind": "ServiceEntry",
            "metadata": _meta(export.service, export.namespace, export.workload.key),
            "spec": {"hosts": [export.host], "location": "MESH_INTERNAL", "resolution": "STATIC",
                     "ports": ports, "endpoints": endpoints}}


def _istio_protocol(port: ServicePort) -> str:
    if port.app_protocol and port.app_protocol.upper() in ("HTTP", "HTTPS", "GRPC", "HTTP2", "TLS", "TCP"):
        return port.app_protocol.upper()
    name = port.name.split("-", 1)[0].upper()  # Istio's own convention: http-web, grpc-api
    return name if name in ("HTTP", "HTTPS", "GRPC", "HTTP2", "TLS") else _ISTIO_PROTOCOL.get(port.protocol, "TCP")


def connectivity_objects(bundle: Bundle, exports: list[Export],
                         assignment: Mapping[str, Mapping[str, int]]) -> dict[str, list[dict[str, Any]]]:
    """Per cluster, the ServiceExports, ServiceImports or ServiceEntries that ``assignment`` needs."""
    networks = {c.metadata.name: c.metadata.labels.get(NETWORK_LABEL, c.metadata.name) for c in bundle.clusters}
    out: dict[str, list[dict[str, Any]]] = {}
    for export in sorted(exports, key=lambda e: e.workload.key):
        servers = sorted(c for c, n in assignment.get(export.workload.key, {}).items() if n > 0)
        client_clusters = sorted({c for k in clients_of(bundle, export.workload)
                                  for c, n in assignment.get(k, {}).items() if n > 0})
        # a client cluster needs the clusterset name unless the server runs there and nowhere else
        remote_clients = [c for c in client_clusters if set(servers) != {c}]
        if not servers or not remote_clients:
            continue
        if export.via == "istio":
            for c in remote_clients:
                out.setdefault(c, []).append(_service_entry(export, servers, networks))
            continue
        for s in servers:
            out.setdefault(s, []).append({"apiVersion": MCS_API, "kind": "ServiceExport",
                                          "metadata": _meta(export.service, export.namespace, export.workload.key)})
        for c in remote_clients:
            out.setdefault(c, []).append(_import(export))
    return out
