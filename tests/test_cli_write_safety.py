"""What the command line writes, run as a user runs it (``.venv/bin/berth``) against real git.

An Infeasible plan never reaches git (spec 5, 7); outputs are checked before the first write;
``--output -`` is standard output; a path that is not a regular file is never replaced.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from tests.builders import cluster, workload
from tests.test_gitops_support import bare_remote, clone, git

BERTH = str(Path(sys.executable).parent / "berth")


def berth(*args: str | Path, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run([BERTH, *map(str, args)], capture_output=True, text=True, timeout=300, cwd=cwd)


def fleet(path: Path, *, cpu_a: str = "8", replicas: int = 4) -> Path:
    """Two clusters (``a`` cheaper) and two workloads of ``shop``."""
    docs = [cluster("a", capacity={"cpu": cpu_a, "memory": "32Gi"}, price={"cpu": "0.01"}),
            cluster("b", capacity={"cpu": "8", "memory": "32Gi"}, price={"cpu": "0.05"}),
            workload("web", replicas, namespace="shop"), workload("db", 2, namespace="shop")]
    path.write_text(yaml.safe_dump_all(docs), encoding="utf-8")
    return path


def snapshot(repo: Path) -> tuple[str, str, str]:
    """HEAD, the work tree's status and the tracked files' digest: what "unchanged" means."""
    return (git(repo, "rev-parse", "HEAD"), git(repo, "status", "--porcelain", "--untracked-files=all"),
            git(repo, "ls-files", "-s"))


@pytest.fixture
def deployed(tmp_path: Path) -> Path:
    """A clone of a bare origin where ``berth place --commit --push`` put the fleet on ``a``."""
    origin = bare_remote(tmp_path / "origin.git")
    repo = clone(origin, tmp_path / "clone")
    done = berth("place", fleet(tmp_path / "fleet.yaml"), "--gitops-repo", repo, "--commit", "--push", "-q")
    assert done.returncode == 0, done.stderr
    return repo


# --- 1. Infeasible never reaches git -------------------------------------------------------


@pytest.mark.parametrize("push", [False, True])
def test_infeasible_place_is_written_for_inspection_but_never_committed(
    deployed: Path, tmp_path: Path, push: bool
) -> None:
    # cluster a shrank: two replicas must move, --max-moves 0 allows none
    shrunk = fleet(tmp_path / "shrunk.yaml", cpu_a="4")
    before, origin_before = snapshot(deployed), git(tmp_path / "origin.git", "rev-parse", "main")
    out = tmp_path / "plan.json"
    result = berth("place", shrunk, "--max-moves", "0", "--gitops-repo", deployed, "--commit",
                   *(["--push"] if push else []), "--output", out)
    assert result.returncode == 4, result.stdout + result.stderr
    assert "Infeasible" in result.stderr and "nothing was committed" in result.stderr
    assert json.loads(out.read_text())["status"]["solver"] == "Infeasible"
    assert snapshot(deployed) == before
    assert git(tmp_path / "origin.git", "rev-parse", "main") == origin_before
    # what runs is still there: both workloads on their clusters
    assert "shop" in (deployed / "clusters" / "a" / "berth-placement.yaml").read_text()


def test_infeasible_reoptimize_exits_4_and_commits_nothing(deployed: Path, tmp_path: Path) -> None:
    shrunk = fleet(tmp_path / "shrunk.yaml", cpu_a="4")
    before = snapshot(deployed)
    plan_out = tmp_path / "plan.json"
    result = berth("reoptimize", shrunk, "--gitops-repo", deployed, "--max-moves", "0", "--commit",
                   "--plan-output", plan_out, "--time-limit", "2")
    assert result.returncode == 4, result.stdout + result.stderr
    assert json.loads(plan_out.read_text())["status"]["solver"] == "Infeasible"
    assert snapshot(deployed) == before
