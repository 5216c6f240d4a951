"""Berth's pods are labelled so live capacity does not count them twice on re-optimisation."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import yaml

BIN = Path(sys.executable).parent
EXAMPLE = Path(__file__).resolve().parent.parent / "examples" / "telco-mec"


def test_rendered_pod_templates_carry_the_managed_by_label(tmp_path: Path) -> None:
    repo = tmp_path / "repo"
    result = subprocess.run([str(BIN / "berth"), "place", str(EXAMPLE), "-q", "--gitops-repo", str(repo),
                             "--commit"], capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr
    overlays = sorted(repo.glob("clusters/*/apps/*/*"))
    assert overlays
    built = subprocess.run([str(BIN / "kubectl"), "kustomize", str(overlays[0])],
                           capture_output=True, text=True, timeout=120, check=True).stdout
    workload = next(d for d in yaml.safe_load_all(built) if d and d["kind"] in ("Deployment", "StatefulSet"))
    template_labels = workload["spec"]["template"]["metadata"]["labels"]
    assert template_labels["app.kubernetes.io/managed-by"] == "berth"
    # selectors are immutable on a live Deployment: they must not change
    assert "app.kubernetes.io/managed-by" not in workload["spec"]["selector"]["matchLabels"]
