"""Shared helpers of the GitOps tests: a bundle with real kustomize bases, plans, git repos."""

from __future__ import annotations

import subprocess
import textwrap
from pathlib import Path
from typing import Any

from engine.documents.bundle import Bundle
from engine.documents.load import load_bundle
from engine.plan import ObjectiveValues, Placement, Plan, PlanMetadata, PlanStatus

CLUSTERS = ("edge-a", "edge-b", "cloud-1")

DEPLOYMENT = """\
apiVersion: apps/v1
kind: {kind}
metadata:
  name: {name}
  labels: {{app: {name}}}
spec:
  replicas: 1
  selector: {{matchLabels: {{app: {name}}}}}
  template:
    metadata: {{labels: {{app: {name}}}}}
    spec:
      containers:
      - {{name: {name}, image: "nginx:1.27"}}
---
apiVersion: v1
kind: Service
metadata: {{name: {name}}}
spec:
  selector: {{app: {name}}}
  ports: [{{port: 80}}]
"""

BUNDLE = """\
apiVersion: placement.berth.dev/v1alpha1
kind: Cluster
metadata: {name: edge-a}
spec: {capacity: {cpu: "16", memory: 64Gi}}
---
apiVersion: placement.berth.dev/v1alpha1
kind: Cluster
metadata: {name: edge-b}
spec: {capacity: {cpu: "16", memory: 64Gi}}
---
apiVersion: placement.berth.dev/v1alpha1
kind: Cluster
metadata: {name: cloud-1}
spec: {capacity: {cpu: "64", memory: 256Gi}}
---
apiVersion: placement.berth.dev/v1alpha1
kind: Workload
metadata: {name: kafka, namespace: retail}
spec: {replicas: 3, resources: {cpu: "1"}, source: {path: apps/kafka}}
---
apiVersion: placement.berth.dev/v1alpha1
kind: Workload
metadata: {name: cache, namespace: retail}
spec: {replicas: 2, resources: {cpu: "1"}, dependsOn: [kafka], source: {path: apps/cache}}
---
apiVersion: placement.berth.dev/v1alpha1
kind: Workload
metadata: {name: web, namespace: retail}
spec: {replicas: 4, resources: {cpu: 500m}, dependsOn: [cache], source: {path: apps/web}}
---
apiVersion: placement.berth.dev/v1alpha1
kind: Workload
metadata: {name: batch, namespace: retail}
spec: {replicas: 2, resources: {cpu: "2"}}
---
apiVersion: placement.berth.dev/v1alpha1
kind: Workload
metadata: {name: web, namespace: telco}
spec: {replicas: 2, resources: {cpu: "1"}, source: {path: apps/telco-web}}
"""

#: kafka <- cache <- web (retail), batch without source, telco/web independent.
PLAN_A: dict[str, dict[str, int]] = {
    "retail/kafka": {"cloud-1": 3},
    "retail/cache": {"edge-a": 1, "cloud-1": 1},
    "retail/web": {"edge-a": 2, "edge-b": 2},
    "retail/batch": {"cloud-1": 2},
    "telco/web": {"edge-b": 2},
}
#: web moves from edge-b to cloud-1; everything else unchanged.
PLAN_B: dict[str, dict[str, int]] = {**PLAN_A, "retail/web": {"edge-a": 2, "cloud-1": 2}}


def write_bundle(root: Path) -> Path:
    """A bundle folder with real kustomize bases; returns the bundle file."""
    apps = {
        "kafka": ("StatefulSet", "kafka"),
        "cache": ("Deployment", "cache"),
        "web": ("Deployment", "web"),
        "telco-web": ("Deployment", "web"),
    }
    for folder, (kind, name) in apps.items():
        base = root / "apps" / folder
        base.mkdir(parents=True, exist_ok=True)
        (base / "workload.yaml").write_text(DEPLOYMENT.format(kind=kind, name=name))
        (base / "kustomization.yaml").write_text("resources:\n- workload.yaml\n")
    bundle = root / "bundle.yaml"
    bundle.write_text(BUNDLE)
    return bundle


def make_plan(assignment: dict[str, dict[str, int]], digest: str = "sha256:in-a") -> Plan:
    return Plan(
        metadata=PlanMetadata(input_digest=digest, created_at="2026-01-01T00:00:00Z"),
        status=PlanStatus(solver="Optimal", solve_seconds=0.1, objective=ObjectiveValues()),
        placements=[Placement(workload=k, clusters=v) for k, v in sorted(assignment.items())],
    )


def git(repo: Path, *args: str, check: bool = True) -> str:
    proc = subprocess.run(
        ["git", "-C", str(repo), *args], capture_output=True, text=True, check=False
    )
    if check and proc.returncode != 0:
        raise AssertionError(f"git {' '.join(args)} failed: {proc.stderr}")
    return proc.stdout.strip()


def log_subjects(repo: Path) -> list[str]:
    out = git(repo, "log", "--format=%s")
    return out.splitlines() if out else []


def files_in_commit(repo: Path, rev: str = "HEAD") -> list[str]:
    return git(repo, "show", "--name-only", "--format=", rev).splitlines()


def clone(remote: Path, dest: Path, *, identity: str = "Tester") -> Path:
    subprocess.run(["git", "clone", "-q", str(remote), str(dest)], check=True)
    git(dest, "config", "user.name", identity)
    git(dest, "config", "user.email", f"{identity.lower()}@example.com")
    return dest


def bare_remote(path: Path) -> Path:
    subprocess.run(["git", "init", "-q", "--bare", "-b", "main", str(path)], check=True)
    return path


def dedent(text: str) -> str:
    return textwrap.dedent(text).lstrip()


def make_bundle(tmp_path: Path) -> Bundle:
    return load_bundle([write_bundle(tmp_path / "input")])


def replicas_of(objects: list[dict[str, Any]]) -> dict[str, int]:
    """``ns/name`` -> spec.replicas of the Deployments and StatefulSets among ``objects``."""
    out: dict[str, int] = {}
    for obj in objects:
        if obj.get("kind") in ("Deployment", "StatefulSet"):
            key = f"{obj['metadata']['namespace']}/{obj['metadata']['name']}"
            assert key not in out, f"{key} rendered twice"
            out[key] = obj["spec"]["replicas"]
    return out


def test_bundle_helper_loads(tmp_path: Path) -> None:
    bundle = make_bundle(tmp_path)
    assert {w.key for w in bundle.workloads} == set(PLAN_A)


def test_public_names_are_pinned() -> None:
    import adapters.gitops as gitops

    assert sorted(gitops.__all__) == sorted([
        "FORMATS",
        "ClusterRecord",
        "CommitInfo",
        "RecordEntry",
        "WriteResult",
        "open_clone",
        "read_current",
        "read_records",
        "render_cluster",
        "write_plan",
    ])
    assert sorted(gitops.FORMATS) == ["arc", "argocd", "configsync", "flux"]
