"""What the command line writes, run as a user runs it (``.venv/bin/berth``) against real git.

An Infeasible plan never reaches git (spec 5, 7); outputs are checked before the first write;
``--output -`` is standard output; a path that is not a regular file is never replaced.
"""

from __future__ import annotations

import contextlib
import json
import os
import stat
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml

from adapters.gitops import read_current
from tests.builders import cluster, workload
from tests.test_gitops_support import bare_remote, clone, git

BERTH = str(Path(sys.executable).parent / "berth")


def berth(*args: str | Path, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run([BERTH, *map(str, args)], capture_output=True, text=True, timeout=300, cwd=cwd)


def fleet(path: Path, *, cpu_a: str = "8", replicas: int = 4, price_a: str = "0.01") -> Path:
    """Two clusters (``a`` cheaper by default) and two workloads of ``shop``."""
    docs = [cluster("a", capacity={"cpu": cpu_a, "memory": "32Gi"}, price={"cpu": price_a}),
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
                   "--output", plan_out, "--time-limit", "2")
    assert result.returncode == 4, result.stdout + result.stderr
    assert json.loads(plan_out.read_text())["status"]["solver"] == "Infeasible"
    assert snapshot(deployed) == before


# --- helpers for outputs -------------------------------------------------------------------


@contextlib.contextmanager
def tmpfs(path: Path, *, size: str = "1m") -> Iterator[Path]:
    """A small tmpfs at ``path`` (root only): a full or read-only disk that is real."""
    path.mkdir(parents=True, exist_ok=True)
    mounted = subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(path)],
                             capture_output=True, text=True, check=False)
    if mounted.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here: {mounted.stderr.strip()}")
    try:
        yield path
    finally:
        subprocess.run(["umount", "-l", str(path)], check=False)


def read_only(path: Path) -> None:
    subprocess.run(["mount", "-o", "remount,ro", str(path)], check=True)


def assert_nothing_committed(result: subprocess.CompletedProcess[str], repo: Path, before: tuple[str, str, str],
                             code: int, *words: str) -> None:
    assert result.returncode == code, result.stdout + result.stderr
    assert "Traceback" not in result.stderr
    said = " ".join(result.stderr.split())  # rich wraps long lines
    for word in words:
        assert word in said
    assert snapshot(repo) == before


# --- 4. --output -, and paths that are not regular files -----------------------------------


def test_output_dash_is_clean_json_on_stdout(tmp_path: Path) -> None:
    result = berth("place", fleet(tmp_path / "fleet.yaml"), "--output", "-")
    assert result.returncode == 0, result.stderr
    plan = json.loads(result.stdout)
    assert plan["kind"] == "PlacementPlan" and len(plan["placements"]) == 2
    assert "Placements" in result.stderr  # the tables moved to standard error
    assert not (tmp_path / "-").exists()


def test_output_through_a_symlink_to_a_device_writes_through_and_replaces_nothing(tmp_path: Path) -> None:
    link = tmp_path / "stdout-like"
    link.symlink_to("/dev/null")
    result = berth("place", fleet(tmp_path / "fleet.yaml"), "--output", link)
    assert result.returncode == 0, result.stderr
    assert link.is_symlink() and os.readlink(link) == "/dev/null"
    assert stat.S_ISCHR(os.stat("/dev/null").st_mode)


def test_output_into_a_fifo_writes_through(tmp_path: Path) -> None:
    fifo = tmp_path / "pipe"
    os.mkfifo(fifo)
    link = tmp_path / "link-to-pipe"
    link.symlink_to(fifo)
    received: list[str] = []
    reader = threading.Thread(target=lambda: received.append(fifo.read_text()))
    reader.start()
    result = berth("place", fleet(tmp_path / "fleet.yaml"), "--output", link)
    reader.join(timeout=60)
    assert result.returncode == 0, result.stderr
    assert json.loads(received[0])["kind"] == "PlacementPlan"
    assert stat.S_ISFIFO(os.lstat(fifo).st_mode) and link.is_symlink()


def test_output_through_a_symlink_to_a_file_replaces_the_file_and_keeps_the_link(tmp_path: Path) -> None:
    real = tmp_path / "plans" / "real.json"
    real.parent.mkdir()
    real.write_text("old")
    link = tmp_path / "plan.json"
    link.symlink_to(real)
    assert berth("place", fleet(tmp_path / "fleet.yaml"), "--output", link).returncode == 0
    assert link.is_symlink() and json.loads(real.read_text())["kind"] == "PlacementPlan"
    assert sorted(p.name for p in real.parent.iterdir()) == ["real.json"]  # no temporary file left


@pytest.mark.parametrize("kind", ["folder", "link-to-folder"])
def test_output_that_is_a_folder_is_refused_before_anything_is_committed(
    deployed: Path, tmp_path: Path, kind: str
) -> None:
    folder = tmp_path / "a-folder"
    folder.mkdir()
    target = folder
    if kind == "link-to-folder":
        target = tmp_path / "link"
        target.symlink_to(folder)
    before = snapshot(deployed)
    result = berth("place", fleet(tmp_path / "more.yaml", replicas=6), "--gitops-repo", deployed, "--commit",
                   "--output", target)
    assert_nothing_committed(result, deployed, before, 2, "--output", "folder")
    assert list(folder.iterdir()) == [] and (kind == "folder" or target.is_symlink())


# --- 3. every output checked before the first write ----------------------------------------


@pytest.mark.parametrize("where", ["missing-folder", "proc"])
def test_unwritable_output_is_exit_2_and_nothing_is_committed(deployed: Path, tmp_path: Path, where: str) -> None:
    target = tmp_path / "no" / "such" / "plan.json" if where == "missing-folder" else Path("/proc/berth-plan.json")
    before = snapshot(deployed)
    result = berth("place", fleet(tmp_path / "more.yaml", replicas=6), "--gitops-repo", deployed, "--commit",
                   "--output", target)
    assert_nothing_committed(result, deployed, before, 2, "--output")
    assert not target.exists() and not (tmp_path / "no").exists()


def test_read_only_output_is_exit_2_and_nothing_is_committed(deployed: Path, tmp_path: Path) -> None:
    with tmpfs(tmp_path / "ro") as ro:
        read_only(ro)
        before = snapshot(deployed)
        result = berth("place", fleet(tmp_path / "more.yaml", replicas=6), "--gitops-repo", deployed, "--commit",
                       "--output", ro / "plan.json")
        assert_nothing_committed(result, deployed, before, 2, "--output", "Read-only")


def test_full_disk_fails_before_the_commit_and_leaves_the_old_plan_whole(deployed: Path, tmp_path: Path) -> None:
    with tmpfs(tmp_path / "small", size="64k") as small:
        old = small / "plan.json"
        old.write_text('{"old": true}\n')
        with contextlib.suppress(OSError), open(small / "filler", "wb") as handle:  # fill the disk
            while True:
                handle.write(b"x" * 4096)
                handle.flush()
        before = snapshot(deployed)
        result = berth("place", fleet(tmp_path / "more.yaml", replicas=6), "--gitops-repo", deployed, "--commit",
                       "--output", old)
        assert_nothing_committed(result, deployed, before, 1, "No space left", "nothing was committed")
        assert old.read_text() == '{"old": true}\n'
        assert sorted(p.name for p in small.iterdir()) == ["filler", "plan.json"]


def test_read_only_clone_is_exit_3_before_the_solve(tmp_path: Path) -> None:
    origin = bare_remote(tmp_path / "origin.git")
    with tmpfs(tmp_path / "mnt", size="8m") as mnt:
        repo = clone(origin, mnt / "clone")
        assert berth("place", fleet(tmp_path / "fleet.yaml"), "--gitops-repo", repo, "--commit").returncode == 0
        read_only(mnt)
        before = snapshot(repo)
        out = tmp_path / "plan.json"
        result = berth("place", fleet(tmp_path / "more.yaml", replicas=6), "--gitops-repo", repo, "--commit",
                       "--output", out)
        assert_nothing_committed(result, repo, before, 3, "Read-only")
        assert not out.exists()


def test_current_that_is_not_utf8_is_exit_2_naming_the_file(deployed: Path, tmp_path: Path) -> None:
    current = tmp_path / "current.json"
    current.write_bytes(b'{"placements": [{"workload": "shop/web\xff", "clusters": {"a": 1}}]}')
    before = snapshot(deployed)
    result = berth("place", fleet(tmp_path / "more.yaml", replicas=6), "--current", current,
                   "--gitops-repo", deployed, "--commit")
    assert_nothing_committed(result, deployed, before, 2, str(current), "UTF-8")


# --- 2. --push plans against what the remote holds -----------------------------------------


def placement_on(origin: Path, tmp_path: Path) -> dict[str, dict[str, int]]:
    """What ``origin``'s main branch says runs (read from a fresh clone)."""
    fresh = tmp_path / f"fresh-{len(list(tmp_path.glob('fresh-*')))}"
    subprocess.run(["git", "clone", "-q", str(origin), str(fresh)], check=True)
    return read_current(fresh)


def test_push_fetches_first_and_counts_moves_against_the_remote(tmp_path: Path) -> None:
    origin = bare_remote(tmp_path / "origin.git")
    stale = clone(origin, tmp_path / "stale")  # cloned while origin was empty, never fetched since
    ops = clone(origin, tmp_path / "ops", identity="Ops")
    # what runs was placed when b was the cheaper cluster
    expensive_a = fleet(tmp_path / "then.yaml", price_a="0.09")
    assert berth("place", expensive_a, "--gitops-repo", ops, "--commit", "--push", "-q").returncode == 0
    running = placement_on(origin, tmp_path)
    assert set(running) == {"shop/web", "shop/db"} and all(set(c) == {"b"} for c in running.values())
    # now a is cheaper, but --max-moves 0: nothing that runs may move, whatever the stale clone says
    out = tmp_path / "plan.json"
    result = berth("place", fleet(tmp_path / "now.yaml"), "--gitops-repo", stale, "--commit", "--push",
                   "--max-moves", "0", "--output", out)
    assert result.returncode == 0, result.stdout + result.stderr
    plan = json.loads(out.read_text())
    assert plan["moves"] == [] and plan["status"]["objective"]["moves"] == 0
    assert placement_on(origin, tmp_path) == running
    assert git(stale, "rev-parse", "HEAD") == git(origin, "rev-parse", "main")


def test_push_refuses_a_clone_with_unpushed_commits(deployed: Path, tmp_path: Path) -> None:
    (deployed / "NOTES.md").write_text("local work\n")
    git(deployed, "add", "NOTES.md")
    git(deployed, "commit", "-qm", "local work, never pushed")
    before, origin_before = snapshot(deployed), git(tmp_path / "origin.git", "rev-parse", "main")
    result = berth("place", fleet(tmp_path / "more.yaml", replicas=6), "--gitops-repo", deployed,
                   "--commit", "--push")
    assert_nothing_committed(result, deployed, before, 3, "1 commit(s)", "origin")
    assert git(tmp_path / "origin.git", "rev-parse", "main") == origin_before


def test_failed_push_leaves_the_clone_clean_at_origins_commit(deployed: Path, tmp_path: Path) -> None:
    origin = tmp_path / "origin.git"
    hook = origin / "hooks" / "pre-receive"
    hook.write_text("#!/bin/sh\necho 'protected branch: no pushes' >&2\nexit 1\n")
    hook.chmod(0o755)
    out = tmp_path / "plan.json"
    result = berth("place", fleet(tmp_path / "more.yaml", replicas=6), "--gitops-repo", deployed,
                   "--commit", "--push", "--output", out)
    assert result.returncode == 3, result.stdout + result.stderr
    assert "protected branch" in result.stderr and "Traceback" not in result.stderr
    assert git(deployed, "rev-parse", "HEAD") == git(origin, "rev-parse", "main")
    assert git(deployed, "status", "--porcelain", "--untracked-files=all") == ""
    assert not out.exists() and sorted(p.name for p in tmp_path.glob(".plan.json*")) == []
