"""Config Sync: an unstructured ``RootSync`` per cluster with ``git.dir: clusters/<cluster>``.

Config Sync renders the folder's ``kustomization.yaml`` (namespaces and the
overlays). Ordering uses ``config.kubernetes.io/depends-on`` on every object
of a workload's overlay, naming the Deployment/StatefulSet of each workload
it depends on *on that cluster* (Config Sync only orders objects of one sync).

``rootsync.yaml`` is not listed in the kustomization: apply it once per
cluster (``kubectl apply -f clusters/<cluster>/rootsync.yaml``) after
installing Config Sync. A private repository (a remote URL with credentials, or SSH)
gets ``auth: token``/``ssh`` and ``secretRef`` naming the Secret to create in
``config-management-system``; credentials are never written into git.

Config Sync refuses to sync a commit that would delete every Namespace it manages (KNV2006), so a
drain must not empty ``namespaces.yaml``: every Namespace the folder declared stays declared (as
in every format; it carries ``deletion: detach``, so it was never going to be deleted), and a
drained cluster's folder still declares its Namespaces while its workloads are pruned.
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

__all__ = ["DEPENDS_ON", "depends_on_ref", "render", "root_sync"]

DEPENDS_ON = "config.kubernetes.io/depends-on"
#: Config Sync leaves the namespace in place when it is removed from git.
NAMESPACE_ANNOTATIONS = {"client.lifecycle.config.k8s.io/deletion": "detach"}


def depends_on_ref(w: PlacedWorkload) -> str:
    """``<group>/namespaces/<namespace>/<kind>/<name>`` of ``w``'s workload object."""
    return f"apps/namespaces/{w.namespace}/{w.main_kind}/{w.name}"


def root_sync(cluster: ClusterState, ctx: RenderContext) -> dict[str, Any]:
    """The RootSync that syncs ``clusters/<cluster>`` in unstructured format."""
    return {
        "apiVersion": "configsync.gke.io/v1beta1",
        "kind": "RootSync",
        "metadata": {"name": "root-sync", "namespace": "config-management-system"},
        "spec": {
            "sourceFormat": "unstructured",
            "sourceType": "git",
            "git": {
                "repo": ctx.repo_url,
                "branch": ctx.branch,
                "dir": cluster.folder,
                **_auth(ctx),
            },
        },
    }


def _auth(ctx: RenderContext) -> dict[str, Any]:
    """``auth`` and ``secretRef``: a public repository needs none; else the named Secret
    (``ssh``: key ``ssh``; ``token``: keys ``username`` and ``token``), never the credentials."""
    if ctx.secret is None:
        return {"auth": "none"}
    return {"auth": "ssh" if ctx.ssh else "token", "secretRef": {"name": ctx.secret}}


def render(cluster: ClusterState, ctx: RenderContext) -> dict[str, bytes]:
    """Every Berth-owned file of ``clusters/<cluster>/`` (paths relative to it)."""
    synced = cluster.synced()
    by_key = {w.key: w for w in synced}
    annotations = {
        w.key: {DEPENDS_ON: ",".join(depends_on_ref(by_key[d]) for d in w.depends_on)}
        for w in synced
        if w.depends_on
    }
    files: dict[str, bytes] = {}
    files |= overlay_files(cluster, annotations=annotations)
    # Config Sync refuses a commit that removes every Namespace it manages (KNV2006): the
    # namespaces the folder declared stay declared (cluster.kept_namespaces), so a drain is accepted.
    files |= namespaces_file(cluster, annotations=NAMESPACE_ANNOTATIONS)
    files |= record_file(cluster, "configsync")
    files["rootsync.yaml"] = dump_yaml(root_sync(cluster, ctx))
    resources = ["namespaces.yaml"] if "namespaces.yaml" in files else []
    resources += [str(w.overlay) for w in synced]
    files |= root_kustomization(resources, ctx.cluster_dir(cluster.name) / "kustomization.yaml")
    return files
