"""Argo CD: per cluster, one Application for the namespaces and one per dependency chain.

Argo CD orders a sync by waves, and a wave starts only when every object of the waves before it
is healthy, across the whole Application. One Application per cluster would make every
workload of wave 1 wait for every workload of wave 0, related or not. So the workloads of a
cluster are split into *chains*, the connected parts of its ``dependsOn`` graph there (a
workload that depends on nothing and that nothing depends on is a chain of its own), and each
chain gets its own Application; inside it, every object of a workload's overlay carries
``argocd.argoproj.io/sync-wave`` equal to its dependency depth (0 = depends on nothing there).

::

    clusters/<cluster>/kustomization.yaml               namespaces.yaml (+ entries you add): Application berth-<cluster>
    clusters/<cluster>/argocd/<ns>/<name>/kustomization.yaml   the overlays of one chain: Application
                                                         berth-<cluster>.<ns>.<name> (``name``: its first workload)
    clusters/<cluster>/argocd-application.yaml          all those Applications, to apply by hand
    argocd/applicationset.yaml                          the same Applications as two ApplicationSets (a hub)

Every Application syncs automatically with prune and ``allowEmpty`` (a drained cluster syncs to
nothing instead of being refused), self-heal, and the resources finalizer (deleting a chain's
Application deletes its workloads). Namespaces carry ``Prune=false,Delete=false``: they stay
when they leave git and when their Application is deleted. ``spec.destination.name`` is the
Berth cluster name, the name the cluster is registered under in Argo CD
(``argocd cluster add CONTEXT --name <cluster>``).
"""

from __future__ import annotations

from typing import Any

from adapters.gitops.context import RenderContext
from adapters.gitops.layout import (
    CLUSTERS_DIR,
    ClusterState,
    PlacedWorkload,
    dump_yaml,
    namespaces_file,
    overlay_files,
    record_file,
    root_kustomization,
)

__all__ = [
    "APPLICATIONSET_FILE",
    "ARGOCD_NAMESPACE",
    "CHAINS_DIR",
    "NAMESPACE_SYNC_OPTIONS",
    "REPOSITORY_SECRET",
    "SYNC_WAVE",
    "application",
    "application_sets",
    "chains",
    "render",
    "repo_files",
]

ARGOCD_NAMESPACE = "argocd"
SYNC_WAVE = "argocd.argoproj.io/sync-wave"
SYNC_OPTIONS = "argocd.argoproj.io/sync-options"
#: Namespaces may hold objects Berth does not manage: never pruned, never deleted with the Application.
NAMESPACE_SYNC_OPTIONS = "Prune=false,Delete=false"
#: Argo CD matches repository credentials by URL, from a Secret labelled
#: ``argocd.argoproj.io/secret-type: repository``; this annotation names that Secret.
REPOSITORY_SECRET = "placement.berth.dev/repository-secret"
#: Cluster-relative folder of the chains' kustomizations.
CHAINS_DIR = "argocd"
#: Repository-relative file a hub Argo CD applies (outside every cluster folder).
APPLICATIONSET_FILE = "argocd/applicationset.yaml"
FINALIZER = "resources-finalizer.argocd.argoproj.io"


def chains(cluster: ClusterState) -> dict[str, list[PlacedWorkload]]:
    """``<ns>/<name>`` of a chain's first workload -> its workloads, in wave order (depth, then key).

    The first workload depends on nothing on the cluster, so a workload that joins the chain by
    depending on it does not rename the chain's Application (which would redeploy its workloads).

    ``dependsOn`` names workloads of the same namespace, so a chain lies in one namespace.
    """
    synced = cluster.synced()
    parent = {w.key: w.key for w in synced}

    def find(key: str) -> str:
        while parent[key] != key:
            parent[key] = parent[parent[key]]
            key = parent[key]
        return key

    for w in synced:
        for dep in w.depends_on:
            if dep in parent:
                a, b = sorted((find(w.key), find(dep)))
                parent[b] = a
    groups: dict[str, list[PlacedWorkload]] = {}
    for w in synced:  # in wave order: a chain's first member depends on nothing here
        groups.setdefault(find(w.key), []).append(w)
    return dict(sorted((members[0].key, members) for members in groups.values()))


def _sync_policy(namespace: str) -> dict[str, Any]:
    """Automated prune with ``allowEmpty`` (a drained cluster or chain syncs to nothing; without it
    Argo CD refuses to prune the last object), self-heal; a chain's namespace is created if the
    namespaces Application has not made it yet."""
    options = ["PruneLast=true"] + (["CreateNamespace=true"] if namespace != "default" else [])
    return {"automated": {"prune": True, "selfHeal": True, "allowEmpty": True}, "syncOptions": options}


def _app(name: str, labels: dict[str, str], ctx: RenderContext, path: str, cluster: str,
         namespace: str) -> dict[str, Any]:
    return {
        "apiVersion": "argoproj.io/v1alpha1",
        "kind": "Application",
        "metadata": {
            "name": name,
            "namespace": ARGOCD_NAMESPACE,
            "labels": {"app.kubernetes.io/managed-by": "berth", **labels},
            "finalizers": [FINALIZER],
            **({"annotations": {REPOSITORY_SECRET: ctx.secret}} if ctx.secret else {}),
        },
        "spec": {
            "project": "default",
            "source": {"repoURL": ctx.repo_url, "targetRevision": ctx.branch, "path": path},
            "destination": {"name": cluster, "namespace": namespace},
            "syncPolicy": _sync_policy(namespace),
        },
    }


def application(cluster: ClusterState, ctx: RenderContext) -> dict[str, Any]:
    """The Application ``berth-<cluster>`` that syncs ``clusters/<cluster>`` (its namespaces)."""
    return _app(f"berth-{cluster.name}", {"placement.berth.dev/cluster": cluster.name}, ctx,
                cluster.folder, cluster.name, "default")


def _chain_application(cluster: ClusterState, root: str, ctx: RenderContext) -> dict[str, Any]:
    ns, name = root.split("/", 1)
    return _app(f"berth-{cluster.name}.{ns}.{name}", {"placement.berth.dev/cluster": cluster.name}, ctx,
                f"{cluster.folder}/{CHAINS_DIR}/{ns}/{name}", cluster.name, ns)


def render(cluster: ClusterState, ctx: RenderContext) -> dict[str, bytes]:
    """Every Berth-owned file of ``clusters/<cluster>/`` (paths relative to it)."""
    synced = cluster.synced()
    waves = {w.key: {SYNC_WAVE: str(w.depth)} for w in synced}
    files: dict[str, bytes] = {}
    files |= overlay_files(cluster, annotations=waves)
    files |= namespaces_file(
        cluster, annotations={SYNC_WAVE: "-1", SYNC_OPTIONS: NAMESPACE_SYNC_OPTIONS},
        shared_annotations={SYNC_WAVE: "-1"},
    )
    files |= record_file(cluster, "argocd")
    apps = [application(cluster, ctx)]
    for root, members in chains(cluster).items():
        folder = f"{CHAINS_DIR}/{root}"
        doc = {
            "apiVersion": "kustomize.config.k8s.io/v1beta1",
            "kind": "Kustomization",
            "resources": [f"../../../{w.overlay}" for w in members],
        }
        files[f"{folder}/kustomization.yaml"] = dump_yaml(doc)
        apps.append(_chain_application(cluster, root, ctx))
    files["argocd-application.yaml"] = dump_yaml(*apps)
    resources = ["namespaces.yaml"] if "namespaces.yaml" in files else []
    files |= root_kustomization(resources, ctx.cluster_dir(cluster.name) / "kustomization.yaml")
    return files


def application_sets(ctx: RenderContext) -> list[dict[str, Any]]:
    """Two ApplicationSets (git directory generators) that make, on a hub, exactly the Applications
    of every ``argocd-application.yaml``: one per cluster folder and one per chain folder. A folder
    that goes away (a chain whose workloads left the cluster) deletes its Application, and so its
    workloads; ``allowEmpty`` lets a drained cluster's Application sync to nothing."""

    def appset(name: str, path: str, app_name: str, namespace: str) -> dict[str, Any]:
        return {
            "apiVersion": "argoproj.io/v1alpha1",
            "kind": "ApplicationSet",
            "metadata": {"name": name, "namespace": ARGOCD_NAMESPACE,
                         "labels": {"app.kubernetes.io/managed-by": "berth"}},
            "spec": {
                "goTemplate": True,
                "goTemplateOptions": ["missingkey=error"],
                "generators": [{"git": {"repoURL": ctx.repo_url, "revision": ctx.branch,
                                        "directories": [{"path": path}]}}],
                "template": {
                    "metadata": {
                        "name": app_name,
                        "labels": {"app.kubernetes.io/managed-by": "berth",
                                   "placement.berth.dev/cluster": "{{index .path.segments 1}}"},
                        "finalizers": [FINALIZER],
                        **({"annotations": {REPOSITORY_SECRET: ctx.secret}} if ctx.secret else {}),
                    },
                    "spec": {
                        "project": "default",
                        "source": {"repoURL": ctx.repo_url, "targetRevision": ctx.branch,
                                   "path": "{{.path.path}}"},
                        "destination": {"name": "{{index .path.segments 1}}", "namespace": namespace},
                        "syncPolicy": _sync_policy("default" if namespace == "default" else "chain"),
                    },
                },
            },
        }

    return [
        appset("berth-clusters", f"{CLUSTERS_DIR}/*", "berth-{{.path.basename}}", "default"),
        appset("berth-chains", f"{CLUSTERS_DIR}/*/{CHAINS_DIR}/*/*",
               "berth-{{index .path.segments 1}}.{{index .path.segments 3}}.{{.path.basename}}",
               "{{index .path.segments 3}}"),
    ]


def repo_files(ctx: RenderContext) -> dict[str, bytes]:
    """Files outside the cluster folders (repository-relative): the hub's ApplicationSets."""
    return {APPLICATIONSET_FILE: dump_yaml(*application_sets(ctx))}
