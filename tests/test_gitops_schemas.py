"""Every object Berth writes, in every format, is valid against the upstream schemas, and every
kustomization root builds with ``kubectl kustomize``: for the example fleets, after a drain (a
cluster emptied) and after a deletion (a cluster and a workload gone from the bundle).

Schemas: ``shared/schemas`` (see tests/schema_support.py for the dialects).
"""

from __future__ import annotations

import copy
import json
import os
import shutil
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest
import yaml

from adapters.gitops import FORMATS, read_current, render_cluster, write_plan
from adapters.gitops.render import build
from engine.documents.bundle import Bundle
from engine.documents.load import load_bundle
from engine.planner import place
from tests.schema_support import validate_arc, validate_object, yaml_objects
from tests.test_gitops_support import git, make_plan

ROOT = Path(__file__).resolve().parents[1]
REPO_URL = "https://git.example.com/platform/deploy.git"
EXAMPLES = ("edge-retail", "telco-mec")


@pytest.fixture(scope="module")
def plans() -> dict[str, tuple[Bundle, dict[str, dict[str, int]]]]:
    out = {}
    for name in EXAMPLES:
        bundle = load_bundle([ROOT / "examples" / name])
        out[name] = (bundle, place(bundle, time_limit=5).assignment())
    return out


def check_repo(repo: Path) -> int:
    """Validate every generated file of ``repo`` and build every kustomization root; the objects seen.

    Roots are built in groups to keep ``kubectl`` calls few: a cluster folder alone, and an umbrella
    kustomization (in ``.check/``, removed afterwards) per group of roots whose objects cannot clash:
    a cluster's overlays, a cluster's Argo CD chains, the bases of one namespace. An umbrella builds
    each root it lists, so a root that does not build fails it.
    """
    roots = sorted({p.parent for p in repo.rglob("kustomization.yaml") if _generated(repo, p)})
    assert roots, "nothing was written"
    groups: dict[str, list[Path]] = {}
    for root in roots:
        parts = root.relative_to(repo).parts
        for doc in yaml_objects(root / "kustomization.yaml"):
            validate_object(doc, f"{'/'.join(parts)}/kustomization.yaml")
        if parts[0] == "bases":
            key = f"bases-{parts[1]}"
        elif len(parts) == 2:
            key = "/".join(parts)  # the cluster folder itself
        else:
            key = f"{parts[1]}-{parts[2]}"  # a cluster's apps/ or argocd/
        groups.setdefault(key, []).append(root)
    scratch = repo / ".check"
    targets: list[Path] = []
    for key, members in sorted(groups.items()):
        if "/" in key:
            targets.append(members[0])
            continue
        umbrella = scratch / key
        umbrella.mkdir(parents=True)
        resources = [os.path.relpath(m, umbrella) for m in members]
        (umbrella / "kustomization.yaml").write_text(yaml.safe_dump({"resources": resources}))
        targets.append(umbrella)
    try:
        with ThreadPoolExecutor(max_workers=2) as pool:
            results = list(pool.map(build, targets))  # what the controllers apply, bases included
    finally:
        shutil.rmtree(scratch)
    seen = 0
    checked: set[str] = set()
    for target, objects in zip(targets, results, strict=True):
        for obj in objects:
            seen += 1
            text = json.dumps(obj, sort_keys=True)
            if text not in checked:  # the same object on many clusters is validated once
                validate_object(obj, f"kubectl kustomize {target.relative_to(repo).as_posix()}")
                checked.add(text)
    for path in sorted(repo.rglob("*")):
        if not _generated(repo, path) or not path.is_file() or path.name == "kustomization.yaml":
            continue
        rel = path.relative_to(repo).as_posix()
        if path.suffix == ".yaml":
            for doc in yaml_objects(path):
                if doc.get("kind") == "ClusterPlacement":  # Berth's own record, never applied
                    continue
                validate_object(doc, rel)
                seen += 1
        elif path.name == "arc-flux-configuration.json":
            validate_arc(json.loads(path.read_text()), rel)
            seen += 1
    return seen


def _generated(repo: Path, path: Path) -> bool:
    return not path.relative_to(repo).parts[0].startswith(".")


def _write(bundle: Bundle, assignment: dict[str, dict[str, int]], repo: Path, fmt: str) -> None:
    write_plan(bundle, make_plan(assignment), repo, fmt=fmt, repo_url=REPO_URL)
    assert git(repo, "status", "--porcelain") == ""


@pytest.mark.parametrize("example", EXAMPLES)
@pytest.mark.parametrize("fmt", sorted(FORMATS))
def test_example_fleets_are_valid(
    plans: dict[str, tuple[Bundle, dict[str, dict[str, int]]]], tmp_path: Path, example: str, fmt: str
) -> None:
    bundle, assignment = plans[example]
    repo = tmp_path / "deploy"
    _write(bundle, assignment, repo, fmt)
    assert check_repo(repo) > 0
    assert read_current(repo) == assignment


@pytest.mark.parametrize("fmt", sorted(FORMATS))
def test_a_drain_and_a_deletion_stay_valid(
    plans: dict[str, tuple[Bundle, dict[str, dict[str, int]]]], tmp_path: Path, fmt: str
) -> None:
    bundle, assignment = plans["telco-mec"]
    repo = tmp_path / "deploy"
    _write(bundle, assignment, repo, fmt)
    check_repo(repo)

    # drain: the busiest cluster runs nothing; its folder still builds and validates
    counts: dict[str, int] = {}
    for per in assignment.values():
        for cluster in per:
            counts[cluster] = counts.get(cluster, 0) + 1
    busiest = max(sorted(counts), key=lambda c: counts[c])
    drained = {k: {c: n for c, n in per.items() if c != busiest} for k, per in assignment.items()}
    drained = {k: per for k, per in drained.items() if per}
    _write(bundle, drained, repo, fmt)
    check_repo(repo)
    assert read_current(repo) == drained
    assert _workload_objects(repo, busiest) == [], "a drained cluster still runs workloads"

    # deletion: another cluster and a workload leave the bundle (and the plan)
    gone_cluster = sorted(c for c in counts if c != busiest)[0]
    gone_workload = sorted(drained)[0]
    smaller = _without(bundle, gone_cluster, gone_workload)
    left = {k: {c: n for c, n in per.items() if c != gone_cluster} for k, per in drained.items() if k != gone_workload}
    left = {k: per for k, per in left.items() if per}
    _write(smaller, left, repo, fmt)
    check_repo(repo)
    assert read_current(repo) == left
    assert _workload_objects(repo, gone_cluster) == []


def _workload_objects(repo: Path, cluster: str) -> list[dict[str, Any]]:
    return [o for o in render_cluster(repo, cluster) if o["kind"] in ("Deployment", "StatefulSet", "DaemonSet")]


def _without(bundle: Bundle, cluster: str, workload: str) -> Bundle:
    out = copy.copy(bundle)
    out.clusters = [c for c in out.clusters if c.metadata.name != cluster]
    out.workloads = [w for w in out.workloads if w.key != workload]
    return out


def test_config_sync_drain_keeps_every_namespace_declared(tmp_path: Path) -> None:
    """Config Sync refuses a commit that deletes all Namespaces it manages (KNV2006)."""
    bundle = load_bundle([ROOT / "examples" / "telco-mec"])
    assignment = place(bundle, time_limit=5).assignment()
    repo = tmp_path / "deploy"
    _write(bundle, assignment, repo, "configsync")
    cluster = sorted({c for per in assignment.values() for c in per})[0]
    before = {o["metadata"]["name"] for o in build(repo / "clusters" / cluster) if o["kind"] == "Namespace"}
    assert before
    drained = {k: {c: n for c, n in per.items() if c != cluster} for k, per in assignment.items()}
    _write(bundle, {k: per for k, per in drained.items() if per}, repo, "configsync")
    objects = build(repo / "clusters" / cluster)
    assert {o["metadata"]["name"] for o in objects if o["kind"] == "Namespace"} == before
    # no workload is left; what stays is the namespaces and the tenants' quota objects (pods: 0)
    assert [o for o in objects if o["kind"] in ("Deployment", "StatefulSet", "DaemonSet", "Service")] == []
    for ns in (o for o in objects if o["kind"] == "Namespace"):
        assert ns["metadata"]["annotations"]["client.lifecycle.config.k8s.io/deletion"] == "detach"
