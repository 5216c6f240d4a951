"""Flux: ``clusters/<cluster>/`` is the path ``flux bootstrap --path=clusters/<cluster>`` syncs.

It holds one ``kustomize.toolkit.fluxcd.io/v1`` Kustomization per placed
workload (``sync/<ns>/<name>.yaml``, in namespace ``flux-system``, reading
the bootstrap ``GitRepository`` ``flux-system``), the namespaces, and a
``kustomization.yaml`` listing them, as in fluxcd/flux2-kustomize-helm-example.
A ``flux-system/`` folder written by ``flux bootstrap`` is listed too, so that
Flux keeps managing itself.
"""

from __future__ import annotations

from typing import Any

from adapters.gitops.context import RenderContext
from adapters.gitops.layout import (
    ClusterState,
    PlacedWorkload,
    dump_yaml,
    namespaces_file,
    overlay_files,
    record_file,
    root_kustomization,
)

__all__ = ["FLUX_NAMESPACE", "SOURCE_NAME", "flux_kustomization", "render"]

FLUX_NAMESPACE = "flux-system"
SOURCE_NAME = "flux-system"
INTERVAL = "10m"
RETRY_INTERVAL = "2m"
TIMEOUT = "5m"
#: Flux never deletes a namespace it created: other objects may live there.
NAMESPACE_ANNOTATIONS = {"kustomize.toolkit.fluxcd.io/prune": "disabled"}


def flux_kustomization(
    cluster: ClusterState, w: PlacedWorkload, names: dict[str, str]
) -> dict[str, Any]:
    """The Flux Kustomization that applies ``w``'s overlay on ``cluster``."""
    spec: dict[str, Any] = {
        "interval": INTERVAL,
        "retryInterval": RETRY_INTERVAL,
        "timeout": TIMEOUT,
        "prune": True,
        "wait": True,
        "sourceRef": {"kind": "GitRepository", "name": SOURCE_NAME},
        "path": f"./{cluster.folder}/{w.overlay}",
    }
    if w.service_account:
        spec["serviceAccountName"] = w.service_account
    if w.depends_on:
        spec["dependsOn"] = [{"name": names[d]} for d in w.depends_on]
    return {
        "apiVersion": "kustomize.toolkit.fluxcd.io/v1",
        "kind": "Kustomization",
        "metadata": {
            "name": w.object_name,
            "namespace": FLUX_NAMESPACE,
            "labels": {"app.kubernetes.io/managed-by": "berth"},
            "annotations": {
                "placement.berth.dev/workload": w.key,
                "placement.berth.dev/replicas": str(w.replicas),
            },
        },
        "spec": spec,
    }


def render(cluster: ClusterState, ctx: RenderContext) -> dict[str, bytes]:
    """Every Berth-owned file of ``clusters/<cluster>/`` (paths relative to it)."""
    synced = cluster.synced()
    names = {w.key: w.object_name for w in synced}
    files: dict[str, bytes] = {}
    files |= overlay_files(cluster)
    files |= namespaces_file(cluster, annotations=NAMESPACE_ANNOTATIONS)
    files |= record_file(cluster, "flux")
    for w in synced:
        files[f"sync/{w.namespace}/{w.name}.yaml"] = dump_yaml(flux_kustomization(cluster, w, names))
    folder = ctx.cluster_dir(cluster.name)
    resources: list[str] = []
    if (folder / "flux-system").is_dir():
        resources.append("flux-system")
    if "namespaces.yaml" in files:
        resources.append("namespaces.yaml")
    resources += [f"sync/{w.namespace}/{w.name}.yaml" for w in synced]
    files |= root_kustomization(resources, folder / "kustomization.yaml")
    return files
