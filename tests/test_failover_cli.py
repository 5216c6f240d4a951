"""``berth watch``: self-healing against a real Prometheus whose series end and change at known times.

Every pass runs ``berth watch --once --at T`` as a process, against a clone of a bare remote that
``berth place --commit --push`` filled; the repository is read after each step: what moved, what
stayed, no cluster over its live cpu, no workload lost.
"""

from __future__ import annotations

import json
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from adapters.gitops import read_current
from tests.failover_fixture import T0, T1, T2, T3, cluster, dataset, iso, tiers, usage, workload
from tests.prom_fixture import running_prometheus
from tests.test_gitops_support import bare_remote, clone, git

BERTH = Path(sys.executable).with_name("berth")
Assignment = dict[str, dict[str, int]]


@pytest.fixture(scope="module")
def prom(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    with running_prometheus(dataset(), tmp_path_factory.mktemp("prom-failover")) as url:
        yield url


def berth(*args: str | Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run([BERTH, *map(str, args)], capture_output=True, text=True, timeout=300,
                          env={"COLUMNS": "250", "PATH": "/usr/bin:/bin"})


def deploy(tmp_path: Path, docs: list[dict[str, Any]]) -> tuple[Path, Path]:
    """The bundle, and a clone of a bare origin where ``berth place`` committed and pushed it."""
    bundle = tmp_path / "bundle.yaml"
    bundle.write_text(yaml.safe_dump_all(docs), encoding="utf-8")
    origin = bare_remote(tmp_path / "origin.git")
    repo = clone(origin, tmp_path / "clone")
    done = berth("place", bundle, "--gitops-repo", repo, "--commit", "--push", "-q")
    assert done.returncode == 0, done.stdout + done.stderr
    return bundle, repo


class Watch:
    """``berth watch --once --at`` passes against one deployed fleet."""

    def __init__(self, prom: str, bundle: Path, repo: Path, *, max_moves: int, grace: int) -> None:
        self.args = [bundle, "--gitops-repo", repo, "--prometheus", prom, "--max-moves", str(max_moves),
                     "--grace-seconds", str(grace), "--push", "--json", "--time-limit", "5"]
        self.repo = repo

    def at(self, t: float, code: int = 0) -> list[dict[str, Any]]:
        run = berth("watch", *self.args, "--once", "--at", iso(t))
        assert run.returncode == code, run.stdout + run.stderr
        return [json.loads(line) for line in run.stdout.splitlines() if line.strip()]

    def current(self) -> Assignment:
        return read_current(self.repo)

    def pushed(self) -> bool:
        return git(self.repo, "rev-parse", "HEAD") == git(self.repo.parent / "origin.git", "rev-parse", "main")


def types(events: list[dict[str, Any]]) -> list[str]:
    return [e["type"] for e in events]


def on(assignment: Assignment, cluster_name: str) -> set[str]:
    return {k for k, spread in assignment.items() if spread.get(cluster_name, 0) > 0}


FLEET = [cluster("edge-a", "edge", "4", "0.01"), cluster("edge-b", "edge", "4", "0.02"),
         cluster("cloud-1", "cloud", "16", "0.10"), tiers("retail"),
         workload("web", "retail", 3), workload("api", "retail", 2), workload("batch", "retail", 2)]
REPLICAS = {"retail/web": 3, "retail/api": 2, "retail/batch": 2}


def whole(assignment: Assignment) -> None:
    """Nothing lost: every workload runs all its replicas."""
    assert {k: sum(v.values()) for k, v in assignment.items()} == REPLICAS


def test_lost_then_shrunk_then_back(prom: str, tmp_path: Path) -> None:
    bundle, repo = deploy(tmp_path, FLEET)
    watch = Watch(prom, bundle, repo, max_moves=6, grace=600)
    start = watch.current()
    whole(start)
    assert set(usage(start)) <= {"edge-a", "edge-b"}  # the edge tier holds everything (7 of 8 cpu)
    on_a = on(start, "edge-a")
    assert on_a

    # t1 + 6 min: edge-a's newest sample is older than maxAge (5m): lost, but within the grace period
    events = watch.at(T1 + 360)
    assert types(events) == ["ClusterLost"]
    assert events[0]["clusters"] == ["edge-a"] and "metrics stopped" in events[0]["message"]
    assert set(events[0]["workloads"]) == on_a
    assert watch.current() == start
    assert watch.at(T1 + 660) == []  # 300 s lost of 600: nothing moves
    assert watch.current() == start

    # 600 s after it was first seen lost: re-placed within the budget, committed and pushed
    events = watch.at(T1 + 960)
    assert types(events) == ["FailoverCommitted"]
    healed = watch.current()
    whole(healed)
    assert on(healed, "edge-a") == set()
    for key in set(start) - on_a:  # what did not touch edge-a stayed exactly where it was
        assert healed[key] == start[key]
    cpu = usage(healed)
    assert cpu["edge-b"] == 4 and cpu["cloud-1"] == 3  # the edge tier first, then the burst tier (spec 3.2)
    moved = sum(m["replicas"] for m in events[0]["moves"] if m["from"] == "edge-a")
    assert moved == usage(start)["edge-a"] <= 6
    assert events[0]["planDigest"].startswith("sha256:") and events[0]["commits"]
    assert watch.pushed()

    # t2: edge-b shrinks from 4 to 2 cpu below what is committed there
    events = watch.at(T2 + 60)
    assert types(events) == ["ClusterShort"]
    assert "2 free, 4 committed" in events[0]["message"]
    assert watch.current() == healed
    events = watch.at(T2 + 660)
    assert types(events) == ["FailoverCommitted"]
    shrunk = watch.current()
    whole(shrunk)
    assert usage(shrunk).get("edge-b", 0) <= 2 and on(shrunk, "edge-a") == set()
    assert sum(m["replicas"] for m in events[0]["moves"]) <= 6

    # t3: edge-a is back; nothing moves back (no re-optimisation was asked for)
    head = git(repo, "rev-parse", "HEAD")
    events = watch.at(T3 + 60)
    assert types(events) == ["ClusterRecovered"] and events[0]["clusters"] == ["edge-a"]
    assert "nothing moves back" in events[0]["message"]
    assert watch.at(T3 + 1200) == []
    assert watch.current() == shrunk and git(repo, "rev-parse", "HEAD") == head


def test_a_flapping_cluster_moves_nothing(prom: str, tmp_path: Path) -> None:
    docs = [cluster("edge-d", "edge", "4", "0.01"), cluster("cloud-1", "cloud", "16", "0.10"), tiers("retail"),
            workload("web", "retail", 3)]
    bundle, repo = deploy(tmp_path, docs)
    watch = Watch(prom, bundle, repo, max_moves=10, grace=600)
    start = watch.current()
    assert start == {"retail/web": {"edge-d": 3}}
    assert types(watch.at(T1 + 360)) == ["ClusterLost"]  # stopped at t1
    assert types(watch.at(T1 + 540)) == ["ClusterRecovered"]  # back at t1 + 8 min
    assert types(watch.at(T1 + 1080)) == ["ClusterLost"]  # stopped again at t1 + 12 min
    # 840 s after the first sighting, 120 s after the last: the grace period starts again
    assert watch.at(T1 + 1200) == []
    assert watch.current() == start
    assert types(watch.at(T1 + 1680)) == ["FailoverCommitted"]
    assert watch.current() == {"retail/web": {"cloud-1": 3}}


def test_all_nodes_not_ready_is_lost(prom: str, tmp_path: Path) -> None:
    docs = [cluster("edge-c", "edge", "4", "0.01"), cluster("cloud-1", "cloud", "16", "0.10"), tiers("retail"),
            workload("web", "retail", 2), workload("solo", "retail", 1, policy=None)]
    bundle, repo = deploy(tmp_path, docs)
    watch = Watch(prom, bundle, repo, max_moves=10, grace=0)
    start = watch.current()
    assert watch.at(T0 + 60) == []  # Ready: healthy
    events = watch.at(T1 + 120)  # its node NotReady (kube_node_status_condition); metrics still arrive
    assert types(events) == ["ClusterLost", "FailoverCommitted"]
    assert "none of its nodes takes pods" in events[0]["message"]
    healed = watch.current()
    assert on(healed, "edge-c") == set() and healed["retail/web"] == {"cloud-1": 2}
    assert sum(healed["retail/solo"].values()) == sum(start["retail/solo"].values())


def test_infeasible_failover_commits_nothing_and_says_what(prom: str, tmp_path: Path) -> None:
    # the edge only (no burst tier): edge-b cannot take what edge-a held
    docs = [cluster("edge-a", "edge", "4", "0.01"), cluster("edge-b", "edge", "4", "0.02"),
            tiers("retail", burst=False), workload("web", "retail", 4), workload("api", "retail", 3)]
    bundle, repo = deploy(tmp_path, docs)
    watch = Watch(prom, bundle, repo, max_moves=10, grace=0)
    start, head = watch.current(), git(repo, "rev-parse", "HEAD")
    events = watch.at(T1 + 360, code=4)
    assert types(events) == ["ClusterLost", "FailoverInfeasible"]
    assert "commits nothing" in events[1]["message"]
    named = {u["workload"] for u in events[1]["unplaced"]}
    assert named and named <= on(start, "edge-a")  # what edge-b could not take as well
    assert any(r["code"] == "InsufficientCapacity" for u in events[1]["unplaced"] for r in u["reasons"])
    assert watch.current() == start and git(repo, "rev-parse", "HEAD") == head and watch.pushed()
    # the same situation is recorded once; the exit code still says it is not healed
    assert watch.at(T1 + 420, code=4) == []


def test_moves_budget_too_small_commits_nothing(prom: str, tmp_path: Path) -> None:
    bundle, repo = deploy(tmp_path, FLEET)
    start, head = read_current(repo), git(repo, "rev-parse", "HEAD")
    need = usage(start)["edge-a"]
    events = Watch(prom, bundle, repo, max_moves=need - 1, grace=0).at(T1 + 360, code=4)
    assert types(events) == ["ClusterLost", "FailoverInfeasible"]
    assert f"maxMoves {need - 1}" in events[1]["message"]
    assert all(r["code"] == "MovesBudget" for u in events[1]["unplaced"] for r in u["reasons"])
    assert read_current(repo) == start and git(repo, "rev-parse", "HEAD") == head
    # exactly the budget it needs: healed, and no more than that moved
    events = Watch(prom, bundle, repo, max_moves=need, grace=0).at(T1 + 420)
    assert types(events) == ["FailoverCommitted"]
    assert sum(m["replicas"] for m in events[0]["moves"]) == need


def test_bad_arguments_exit_2(tmp_path: Path) -> None:
    bundle = tmp_path / "bundle.yaml"
    bundle.write_text(yaml.safe_dump_all(FLEET), encoding="utf-8")
    run = berth("watch", bundle, "--gitops-repo", tmp_path / "nothing", "--max-moves", "3", "--once")
    assert run.returncode == 2 and "--gitops-repo" in run.stderr
    run = berth("watch", bundle, "--gitops-repo", tmp_path, "--max-moves", "3", "--at", iso(T1))
    assert run.returncode == 2 and "--at needs --once" in run.stderr


def test_sigterm_stops_between_passes(prom: str, tmp_path: Path) -> None:
    bundle, repo = deploy(tmp_path, FLEET)
    head = git(repo, "rev-parse", "HEAD")
    proc = subprocess.Popen(
        [BERTH, "watch", bundle, "--gitops-repo", repo, "--prometheus", prom, "--max-moves", "6",
         "--grace-seconds", "86400", "--interval", "0.2", "--json"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        first = proc.stdout.readline() if proc.stdout else ""  # now: no data for any cluster, all lost
        assert json.loads(first)["type"] == "ClusterLost"
        proc.send_signal(signal.SIGTERM)
        _, err = proc.communicate(timeout=120)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert proc.returncode == 0, err
    assert "stopped between passes" in err
    assert git(repo, "rev-parse", "HEAD") == head  # the grace period never ended: nothing moved
    state = json.loads((repo / ".git" / "berth-watch.json").read_text())
    assert set(state["since"]) == {"edge-a", "edge-b", "cloud-1"}
