"""Azure Arc: the folders Arc's Flux extension reads, plus the ``fluxConfigurations`` to create.

Arc defines Flux Kustomizations in Azure, not in git, so the cluster folder
holds the overlays and a ``kustomization.yaml`` listing only the namespaces;
``arc-flux-configuration.json`` is the body of
``PUT .../providers/Microsoft.KubernetesConfiguration/fluxConfigurations/berth``
(api-version 2023-05-01 or later) and ``arc-flux-configuration.sh`` is the
equivalent ``az k8s-configuration flux create`` command. Both define one
kustomization ``namespaces`` (the cluster folder) and one per placed workload
(its overlay) that depends on ``namespaces`` and on the workloads it
``dependsOn`` on that cluster. Re-run the script whenever a commit changes the file: Arc does
not read it from git; the script deletes the kustomizations the JSON no longer lists, since
``flux update`` alone never removes one.

Azure clones the repository itself, so the URL must be one it can reach (``https://``,
``http://``, ``ssh://`` or ``git@``): :func:`check_url` refuses this format without one.
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
from engine import InputError

__all__ = ["CONFIG_NAME", "az_command", "check_names", "check_url", "flux_configuration", "kustomization_name",
           "render"]

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


#: ``az k8s-configuration flux`` accepts these repository URLs (azure-cli-extensions validators).
ARC_URL = re.compile(r"^(((http|https|ssh)://)|(git@))")


def check_url(url: str | None) -> None:
    """Refuse a repository URL Azure cannot clone (none, or ``file://`` for a clone without a remote).

    Raises:
        InputError: exit 2; nothing is written.
    """
    if not url or not ARC_URL.match(url):
        shown = f" ({url})" if url else ""
        raise InputError(f"the Azure Arc format needs the URL of a git remote Azure can clone (https://, ssh:// "
                         f"or git@); this clone has none{shown}: add an 'origin' remote or pass repo_url",
                         field="--gitops-format")


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
    """A script that makes the cluster's Arc Flux configuration exactly the JSON body.

    ``az k8s-configuration flux update`` only adds and changes kustomizations (a partial update), so
    on a cluster that has the configuration the script first deletes every kustomization the body
    no longer lists, then updates; on a new cluster it creates. Each ``--kustomization`` carries
    the same path, intervals (sync, timeout, retry) and ``dependsOn`` as the JSON.
    """
    props = flux_configuration(cluster, ctx)["properties"]
    target = [
        '--resource-group "$RESOURCE_GROUP"',
        '--cluster-name "$CLUSTER_NAME"',
        '--cluster-type "$CLUSTER_TYPE"',
        f"--name {CONFIG_NAME}",
    ]
    created = ["--namespace flux-system", "--scope cluster"]  # fixed at creation: update takes neither
    source = [
        f"--url {shlex.quote(ctx.repo_url)}",
        f"--branch {shlex.quote(ctx.branch)}",
    ]
    if ctx.secret:
        source.append(f"--local-auth-ref {shlex.quote(ctx.secret)}")
    kustomizations = []
    for name, k in props["kustomizations"].items():
        parts = [f"name={name}", f"path={k['path']}", "prune=true"]
        parts.append(f"sync_interval={k['syncIntervalInSeconds']}s")
        parts.append(f"timeout={k['timeoutInSeconds']}s")
        parts.append(f"retry_interval={k['retryIntervalInSeconds']}s")
        if k["dependsOn"]:
            parts.append("dependsOn=" + json.dumps(k["dependsOn"], separators=(",", ":")))
        kustomizations.append("--kustomization " + " ".join(shlex.quote(p) for p in parts))
    wanted = " ".join(sorted(props["kustomizations"]))
    sep = " \\\n  "
    show = sep.join(["az k8s-configuration flux show", *target, "--query 'keys(kustomizations)'", "--output tsv"])
    delete = sep.join(["az k8s-configuration flux kustomization delete", *target,
                       '--kustomization-name "$name"', "--yes"])
    create = sep.join(["az k8s-configuration flux create", *target, *created, *source, *kustomizations])
    update = sep.join(["az k8s-configuration flux update", *target, *source, *kustomizations])
    return (
        "#!/bin/sh\n"
        f"# Generated by Berth: makes the Arc Flux configuration {CONFIG_NAME!r} of cluster {cluster.name}\n"
        "# what arc-flux-configuration.json says (create it, or delete the kustomizations it no longer\n"
        "# lists and update the rest). Run it again after every commit that changes this file.\n"
        "set -eu\n"
        'RESOURCE_GROUP="${RESOURCE_GROUP:?set RESOURCE_GROUP}"\n'
        f'CLUSTER_NAME="${{CLUSTER_NAME:-{cluster.name}}}"\n'
        'CLUSTER_TYPE="${CLUSTER_TYPE:-connectedClusters}"\n'
        f"WANTED={shlex.quote(wanted)}\n"
        f"if existing=$({show} 2>/dev/null); then\n"
        "  for name in $existing; do\n"
        '    case " $WANTED " in\n'
        '      *" $name "*) ;;\n'
        f"      *) {delete} ;;\n"
        "    esac\n"
        "  done\n"
        f"  {update}\n"
        "else\n"
        f"  {create}\n"
        "fi\n"
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
