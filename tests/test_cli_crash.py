"""Kill ``berth place --commit --push`` at any instant, inside git commands too (issue 20).

Fifteen kills with SIGKILL: from a timer at a random moment (only Berth dies; the git it runs
lives on), and from git hooks (``pre-commit``, ``post-commit``, ``reference-transaction``) that
kill Berth and then the git command that called them, so ``index.lock`` or a ref lock stays
behind. After each kill: the plan file is absent or whole, the commit at HEAD builds with
``kubectl kustomize`` for every cluster, and the next run succeeds, leaving the clone clean,
exactly at origin's commit, and saying what the plan says. The seed makes a failure repeatable.
"""

from __future__ import annotations

import json
import random
import subprocess
import sys
import tarfile
import time
from pathlib import Path

from adapters.gitops import read_current, render_cluster
from tests.test_gitops_support import BUNDLE, bare_remote, clone, git, write_bundle

BERTH = str(Path(sys.executable).parent / "berth")
SEED = 20261201
KILLS = 15
HOOKS = ("pre-commit", "post-commit", "reference-transaction")


def variant(root: Path, i: int) -> Path:
    """The example bundle with other replica counts, so that every run has commits to make."""
    text = BUNDLE.replace("replicas: 4, resources: {cpu: 500m}", f"replicas: {2 + i % 4}, resources: {{cpu: 500m}}")
    text = text.replace("replicas: 2, resources: {cpu: \"1\"}, dependsOn", f"replicas: {1 + i % 3}, resources: "
                        "{cpu: \"1\"}, dependsOn")
    path = root / f"bundle-{i}.yaml"
    path.write_text(text)
    return path


def place(bundle: Path, repo: Path, out: Path) -> subprocess.Popen[str]:
    return subprocess.Popen([BERTH, "place", str(bundle), "--gitops-repo", str(repo), "--commit", "--push",
                             "--output", str(out), "--time-limit", "2", "-q"],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def arm(repo: Path, hook: str, target: int, pidfile: Path, counter: Path) -> Path:
    """A hook that, on its ``target``-th call, kills Berth and then the git command running it."""
    path = repo / ".git" / "hooks" / hook
    path.write_text(
        "#!/bin/sh\n"
        f"n=$(cat {counter} 2>/dev/null || echo 0); n=$((n+1)); echo $n > {counter}\n"
        f'if [ "$n" -eq {target} ]; then kill -9 $(cat {pidfile}); kill -9 $PPID; fi\n'
        "exit 0\n"
    )
    path.chmod(0o755)
    return path


def assert_head_builds(repo: Path, scratch: Path) -> None:
    """The commit at HEAD (whatever a kill left) is whole: every cluster folder builds."""
    archive = scratch / "head.tar"
    git(repo, "archive", "--format=tar", "-o", str(archive), "HEAD")
    tree = scratch / "tree"
    with tarfile.open(archive) as tar:
        tar.extractall(tree, filter="data")
    for folder in sorted((tree / "clusters").iterdir()):
        render_cluster(tree, folder.name)  # raises when kubectl kustomize fails


def test_kill_9_at_any_instant_leaves_a_clone_the_next_run_recovers(tmp_path: Path) -> None:
    rng = random.Random(SEED)
    root = tmp_path / "bundle"
    write_bundle(root)
    origin = bare_remote(tmp_path / "origin.git")
    repo = clone(origin, tmp_path / "clone")
    out = tmp_path / "plan.json"
    first = place(variant(root, 0), repo, out)
    assert first.wait(timeout=300) == 0, first.communicate()[1]
    pidfile, counter = tmp_path / "berth.pid", tmp_path / "count"
    for i in range(1, KILLS + 1):
        bundle = variant(root, i)
        how = "timer" if i % 2 else HOOKS[(i // 2) % len(HOOKS)]
        hook = None
        if how != "timer":
            counter.unlink(missing_ok=True)
            hook = arm(repo, how, rng.randint(1, 6), pidfile, counter)
        proc = place(bundle, repo, out)
        pidfile.write_text(str(proc.pid))
        if how == "timer":
            time.sleep(rng.uniform(0.2, 3.0))
            proc.kill()
        proc.wait(timeout=300)
        if hook is not None:
            hook.unlink()
        # what a kill leaves: the plan file old or new, never half-written; HEAD a whole commit
        assert json.loads(out.read_text())["kind"] == "PlacementPlan"
        scratch = tmp_path / f"round-{i}"
        scratch.mkdir()
        assert_head_builds(repo, scratch)
        # the next run recovers and finishes the job
        again = place(bundle, repo, out)
        _, stderr = again.communicate(timeout=300)
        assert again.returncode == 0, f"round {i} ({how}, killed with code {proc.returncode}): {stderr}"
        assert git(repo, "status", "--porcelain", "--untracked-files=all") == "", f"round {i}"
        assert not (repo / ".git" / "berth-write-in-progress").exists()
        assert git(repo, "rev-parse", "HEAD") == git(origin, "rev-parse", "main")
        plan = json.loads(out.read_text())
        assert read_current(repo) == {p["workload"]: p["clusters"] for p in plan["placements"]}
    final = tmp_path / "final"
    final.mkdir()
    assert_head_builds(repo, final)
