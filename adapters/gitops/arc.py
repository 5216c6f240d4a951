"""Azure Arc: the folders Arc's Flux extension reads, plus the ``fluxConfigurations`` to create.

Arc defines Flux Kustomizations in Azure, not in git, so the cluster folder
holds the overlays and a ``kustomization.yaml`` listing only the namespaces;
``arc-flux-configuration.json`` is the body of
``PUT .../providers/Microsoft.KubernetesConfiguration/fluxConfigurations/berth``
(api-version 2023-05-01 or later) and ``arc-flux-configuration.sh`` is the
equivalent ``az k8s-configuration flux create`` command. Both define one
kustomization ``namespaces`` (the cluster folder) and one per placed workload
(its overlay) that depends on ``namespaces`` and on the workloads it
``dependsOn`` on that cluster. Re-run the command (``flux update``) whenever a
commit changes the file: Arc does not read it from git.
"""

from __future__ import annotations

import hashlib
import json
import re
import shlex
from typing import Any

from adapters.gitops.context import RenderContext
from adapters.gitops.layout import (
    ClusterState,
    PlacedWorkload,
    namespaces_file,
    overlay_files,
    record_file,
    root_kustomization,
)
from engine.errors import InputError

__all__ = ["CONFIG_NAME", "az_command", "check_names", "flux_configuration", "kustomization_name", "render"]

CONFIG_NAME = "berth"
ROOT_NAME = "namespaces"
ARC_NAME = re.compile(r"^[a-z0-9]([.\-a-z0-9]*[a-z0-9])?$")
ARC_NAME_MAX = 63
SYNC_SECONDS = 600
TIMEOUT_SECONDS = 300
RETRY_SECONDS = 120
NAMESPACE_ANNOTATIONS = {"kustomize.toolkit.fluxcd.io/prune": "disabled"}


def kustomization_name(w: PlacedWorkload) -> str:
    """The object name when Arc takes it (``az``: ``[a-z0-9]([.-a-z0-9]*[a-z0-9])?``, at most 63
    characters), else its first 54 characters and a digest of the workload's key.

    Still injective across namespaces: an unshortened name holds exactly one dot,
    after the namespace, and a shortened one either keeps that dot at the same
    place (same namespace) or holds none. Within one namespace
    :func:`check_names` turns the unlikely collision into an input error.
    """
    name = w.object_name
    if len(name) <= ARC_NAME_MAX and ARC_NAME.match(name):
        return name
    stem = re.sub(r"[^.\-a-z0-9]", "-", name)[: ARC_NAME_MAX - 9].rstrip(".-")
    return f"{stem}-{hashlib.sha256(w.key.encode()).hexdigest()[:8]}"


def check_names(cluster: ClusterState) -> dict[str, PlacedWorkload]:
    """Arc kustomization name -> workload for ``cluster``.

    Raises:
        InputError: two workloads (or one and the ``namespaces`` root) would share a name.
    """
    out: dict[str, PlacedWorkload] = {}
    for w in cluster.synced():
        name = kustomization_name(w)
        if name == ROOT_NAME or name in out:
            other = "the root kustomization" if name == ROOT_NAME else f"workload {out[name].key}"
            raise InputError(f"its Azure Arc kustomization name {name!r} is also {other}'s on cluster "
                             f"{cluster.name}; rename one of them", document=f"Workload {w.key}",
                             field="metadata.name")
        out[name] = w
    return out


def flux_configuration(cluster: ClusterState, ctx: RenderContext) -> dict[str, Any]:
    """The fluxConfigurations request body for ``cluster``."""
    synced = cluster.synced()
    by_key = {w.key: w for w in synced}
    check_names(cluster)
    kustomizations: dict[str, Any] = {
        ROOT_NAME: {
            "path": f"./{cluster.folder}",
            "prune": True,
            "wait": True,
            "syncIntervalInSeconds": SYNC_SECONDS,
            "timeoutInSeconds": TIMEOUT_SECONDS,
            "retryIntervalInSeconds": RETRY_SECONDS,
            "dependsOn": [],
        }
    }
    for w in synced:
        kustomizations[kustomization_name(w)] = {
            "path": f"./{cluster.folder}/{w.overlay}",
            "prune": True,
            "wait": True,
            "syncIntervalInSeconds": SYNC_SECONDS,
            "timeoutInSeconds": TIMEOUT_SECONDS,
            "retryIntervalInSeconds": RETRY_SECONDS,
            "dependsOn": [ROOT_NAME, *(kustomization_name(by_key[d]) for d in w.depends_on)],
        }
    return {
        "properties": {
            "scope": "cluster",
            "namespace": "flux-system",
            "sourceKind": "GitRepository",
            "suspend": False,
            "gitRepository": {
                "url": ctx.repo_url,
                "repositoryRef": {"branch": ctx.branch},
                **({"localAuthRef": ctx.secret} if ctx.secret else {}),
                "syncIntervalInSeconds": SYNC_SECONDS,
                "timeoutInSeconds": TIMEOUT_SECONDS,
            },
            "kustomizations": kustomizations,
        }
    }


def az_command(cluster: ClusterState, ctx: RenderContext) -> str:
    """The ``az k8s-configuration flux create`` command equivalent to the JSON body."""
    props = flux_configuration(cluster, ctx)["properties"]
    lines = [
        "az k8s-configuration flux create",
        '--resource-group "${RESOURCE_GROUP:?set RESOURCE_GROUP}"',
        f'--cluster-name "${{CLUSTER_NAME:-{cluster.name}}}"',
        '--cluster-type "${CLUSTER_TYPE:-connectedClusters}"',
        f"--name {CONFIG_NAME}",
        "--namespace flux-system",
        "--scope cluster",
        f"--url {shlex.quote(ctx.repo_url)}",
        f"--branch {shlex.quote(ctx.branch)}",
    ]
    if ctx.secret:
        lines.append(f"--local-auth-ref {shlex.quote(ctx.secret)}")
    for name, k in props["kustomizations"].items():
        parts = [f"name={name}", f"path={k['path']}", "prune=true"]
        parts.append(f"sync_interval={k['syncIntervalInSeconds']}s")
        parts.append(f"timeout={k['timeoutInSeconds']}s")
        if k["dependsOn"]:
            parts.append("dependsOn=" + json.dumps(k["dependsOn"], separators=(",", ":")))
        lines.append("--kustomization " + " ".join(shlex.quote(p) for p in parts))
    body = " \\\n  ".join(lines)
    return (
        "#!/bin/sh\n"
        "# Generated by Berth: creates (or, with `flux update`, updates) the Arc Flux\n"
        f"# configuration of cluster {cluster.name}. Equivalent to arc-flux-configuration.json.\n"
        "set -eu\n" + body + "\n"
    )


def render(cluster: ClusterState, ctx: RenderContext) -> dict[str, bytes]:
    """Every Berth-owned file of ``clusters/<cluster>/`` (paths relative to it)."""
    files: dict[str, bytes] = {}
    files |= overlay_files(cluster)
    files |= namespaces_file(cluster, annotations=NAMESPACE_ANNOTATIONS)
    files |= record_file(cluster, "arc")
    config = flux_configuration(cluster, ctx)
    files["arc-flux-configuration.json"] = (json.dumps(config, indent=2) + "\n").encode()
    files["arc-flux-configuration.sh"] = az_command(cluster, ctx).encode()
    resources = ["namespaces.yaml"] if "namespaces.yaml" in files else []
    files |= root_kustomization(resources, ctx.cluster_dir(cluster.name) / "kustomization.yaml")
    return files
