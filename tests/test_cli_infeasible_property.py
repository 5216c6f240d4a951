"""Property (issue 12): an Infeasible plan never reaches git, whatever the fleet, the edit and maxMoves.

Random small fleets are placed and committed into a real clone with ``berth place --commit``;
then a random edit (a cluster shrinks or leaves, a workload scales, a new workload) and a random
``--max-moves`` are planned through the same command. Infeasible: exit 4, and the clone's HEAD,
index and work tree are exactly as before. Otherwise: exit 0 and the clone holds the plan.
"""

from __future__ import annotations

import json
import tempfile
from pathlib import Path
from typing import Any

import yaml
from hypothesis import HealthCheck, event, example, given, settings
from hypothesis import strategies as st
from typer.testing import CliRunner

from adapters.cli.app import app
from adapters.gitops import read_current
from tests.builders import cluster, workload
from tests.test_gitops_support import git

Fleet = tuple[list[int], list[int]]  # cpu per cluster, replicas per workload

fleets = st.tuples(st.lists(st.integers(2, 8), min_size=1, max_size=3),
                   st.lists(st.integers(1, 4), min_size=1, max_size=3))
edits = st.one_of(
    st.tuples(st.just("shrink"), st.integers(0, 2), st.integers(0, 3)),
    st.tuples(st.just("leave"), st.integers(0, 2), st.just(0)),
    st.tuples(st.just("scale"), st.integers(0, 2), st.integers(1, 6)),
    st.tuples(st.just("add"), st.just(0), st.integers(1, 4)),
)


def documents(cpus: list[int], replicas: list[int]) -> list[dict[str, Any]]:
    docs = [cluster(f"c{i}", capacity={"cpu": str(cpu), "memory": "32Gi"}, price={"cpu": f"0.0{i + 1}"})
            for i, cpu in enumerate(cpus) if cpu >= 0]
    docs += [workload(f"w{j}", n, namespace="shop") for j, n in enumerate(replicas)]
    return docs


def edited(fleet: Fleet, edit: tuple[str, int, int]) -> Fleet:
    cpus, replicas = list(fleet[0]), list(fleet[1])
    kind, index, value = edit
    if kind == "shrink":
        cpus[index % len(cpus)] = value
    elif kind == "leave":
        cpus[index % len(cpus)] = -1  # gone from the bundle
    elif kind == "scale":
        replicas[index % len(replicas)] = value
    else:
        replicas.append(value)
    return cpus, replicas


def snapshot(repo: Path) -> tuple[str, str, str]:
    return (git(repo, "rev-parse", "HEAD"), git(repo, "status", "--porcelain", "--untracked-files=all"),
            git(repo, "ls-files", "-s"))


@settings(max_examples=8, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(fleet=fleets, edit=edits, max_moves=st.integers(0, 3))
@example(fleet=([8, 8], [4, 2]), edit=("shrink", 0, 0), max_moves=0)  # all run on c0, which shrinks to 0
def test_infeasible_never_reaches_git(fleet: Fleet, edit: tuple[str, int, int], max_moves: int) -> None:
    runner = CliRunner()
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        repo = root / "deploy"
        first = root / "first.yaml"
        first.write_text(yaml.safe_dump_all(documents(*fleet)))
        done = runner.invoke(app, ["place", str(first), "--gitops-repo", str(repo), "--commit", "--time-limit", "2"])
        assert done.exit_code == 0, done.output
        if not (repo / ".git").is_dir() or not git(repo, "rev-parse", "-q", "--verify", "HEAD", check=False):
            return  # nothing was placed, so nothing runs: no current placement to protect
        before = snapshot(repo)
        second = root / "second.yaml"
        second.write_text(yaml.safe_dump_all(documents(*edited(fleet, edit))))
        out = root / "plan.json"
        result = runner.invoke(app, ["place", str(second), "--gitops-repo", str(repo), "--commit",
                                     "--max-moves", str(max_moves), "--time-limit", "2", "--output", str(out)])
        event(f"exit {result.exit_code}")
        if result.exit_code != 0:  # Infeasible (4), or any failure: the clone is exactly as it was
            assert snapshot(repo) == before, result.stderr
            if out.exists():
                assert json.loads(out.read_text())["status"]["solver"] == "Infeasible"
                assert result.exit_code == 4, result.stderr
            else:  # an invalid edit (no cluster left); never exit 1 for the whole fleet (spec 7)
                assert result.exit_code == 2, result.stderr
            return
        plan = json.loads(out.read_text())
        assert plan["status"]["solver"] != "Infeasible"
        assert read_current(repo) == {p["workload"]: p["clusters"] for p in plan["placements"]}
        assert git(repo, "status", "--porcelain", "--untracked-files=all") == ""
