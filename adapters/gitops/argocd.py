"""Argo CD: one Application per cluster syncing ``clusters/<cluster>/``.

The cluster folder's ``kustomization.yaml`` lists the namespaces and the
overlays directly, so Argo CD (which runs ``kustomize build`` on the path)
applies the workloads themselves. Ordering comes from sync waves: every
object of a workload's overlay carries ``argocd.argoproj.io/sync-wave`` equal
to its dependency depth on that cluster (0 = depends on nothing there);
namespaces are wave ``-1``.

``argocd-application.yaml`` is *not* listed in the cluster's kustomization:
apply it to the Argo CD control plane (``kubectl apply -n argocd -f``), or use
the ApplicationSet in docs/gitops.md. ``spec.destination.name`` is the Berth
cluster name, which must be the name the cluster is registered under in
Argo CD (``argocd cluster add CONTEXT --name <cluster>``).
"""

from __future__ import annotations

from typing import Any

from adapters.gitops.context import RenderContext
from adapters.gitops.layout import (
    ClusterState,
    dump_yaml,
    namespaces_file,
    overlay_files,
    record_file,
    root_kustomization,
)

__all__ = ["ARGOCD_NAMESPACE", "REPOSITORY_SECRET", "SYNC_WAVE", "application", "render"]

ARGOCD_NAMESPACE = "argocd"
SYNC_WAVE = "argocd.argoproj.io/sync-wave"
#: Argo CD matches repository credentials by URL, from a Secret labelled
#: ``argocd.argoproj.io/secret-type: repository``; this annotation names that Secret.
REPOSITORY_SECRET = "placement.berth.dev/repository-secret"


def application(cluster: ClusterState, ctx: RenderContext) -> dict[str, Any]:
    """The Application that syncs ``clusters/<cluster>`` to the cluster of that name."""
    return {
        "apiVersion": "argoproj.io/v1alpha1",
        "kind": "Application",
        "metadata": {
            "name": f"berth-{cluster.name}",
            "namespace": ARGOCD_NAMESPACE,
            "labels": {
                "app.kubernetes.io/managed-by": "berth",
                "placement.berth.dev/cluster": cluster.name,
            },
            "finalizers": ["resources-finalizer.argocd.argoproj.io"],
            **({"annotations": {REPOSITORY_SECRET: ctx.secret}} if ctx.secret else {}),
        },
        "spec": {
            "project": "default",
            "source": {
                "repoURL": ctx.repo_url,
                "targetRevision": ctx.branch,
                "path": cluster.folder,
            },
            "destination": {"name": cluster.name, "namespace": "default"},
            "syncPolicy": {
                "automated": {"prune": True, "selfHeal": True},
                "syncOptions": ["PruneLast=true"],
            },
        },
    }


def render(cluster: ClusterState, ctx: RenderContext) -> dict[str, bytes]:
    """Every Berth-owned file of ``clusters/<cluster>/`` (paths relative to it)."""
    synced = cluster.synced()
    waves = {w.key: {SYNC_WAVE: str(w.depth)} for w in synced}
    files: dict[str, bytes] = {}
    files |= overlay_files(cluster, annotations=waves)
    files |= namespaces_file(
        cluster, annotations={SYNC_WAVE: "-1", "argocd.argoproj.io/sync-options": "Prune=false"},
        shared_annotations={SYNC_WAVE: "-1"},
    )
    files |= record_file(cluster, "argocd")
    files["argocd-application.yaml"] = dump_yaml(application(cluster, ctx))
    resources = ["namespaces.yaml"] if "namespaces.yaml" in files else []
    resources += [str(w.overlay) for w in synced]
    files |= root_kustomization(resources, ctx.cluster_dir(cluster.name) / "kustomization.yaml")
    return files
