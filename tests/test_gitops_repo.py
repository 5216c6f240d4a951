"""Commits, idempotence, moves, read-back and failure handling against real git repositories."""

from __future__ import annotations

import os
import signal
import stat
import subprocess
import sys
import time
from pathlib import Path

import pytest

from adapters.gitops import read_current, render_cluster, write_plan
from adapters.gitops.repo import sanitize
from engine.documents.bundle import Bundle
from engine.errors import GitOpsError, InputError
from engine.plan import diff_moves
from tests.test_gitops_support import (
    CLUSTERS,
    PLAN_A,
    PLAN_B,
    bare_remote,
    clone,
    files_in_commit,
    git,
    log_subjects,
    make_bundle,
    make_plan,
    replicas_of,
)


@pytest.fixture
def bundle(tmp_path: Path) -> Bundle:
    return make_bundle(tmp_path)


def _status(repo: Path) -> str:
    return git(repo, "status", "--porcelain", "--untracked-files=all")


def test_first_write_initialises_the_repo_with_one_commit_per_cluster(
    bundle: Bundle, tmp_path: Path
) -> None:
    repo = tmp_path / "deploy"
    result = write_plan(bundle, make_plan(PLAN_A), repo)
    assert git(repo, "symbolic-ref", "--short", "HEAD") == "main"
    assert result.changed_clusters == sorted(CLUSTERS)
    assert [c.cluster for c in result.commits] == [None, "cloud-1", "edge-a", "edge-b"]
    assert len(log_subjects(repo)) == 4
    assert _status(repo) == ""
    # the bases commit touches only bases/, each cluster commit only its folder
    assert all(f.startswith("bases/") for f in files_in_commit(repo, result.commits[0].sha))
    for info in result.commits[1:]:
        files = files_in_commit(repo, info.sha)
        assert files and all(f.startswith(f"clusters/{info.cluster}/") for f in files)
        body = git(repo, "log", "-1", "--format=%B", info.sha)
        assert f"Berth-Plan: {result.plan_id}" in body
        assert "Berth-Input-Digest: sha256:in-a" in body
        trailers = git(repo, "log", "-1", "--format=%(trailers:key=Berth-Input-Digest)", info.sha)
        assert trailers.strip() == "Berth-Input-Digest: sha256:in-a"
    # default identity when none is configured
    assert git(repo, "log", "-1", "--format=%an <%ae>") in (
        "Berth <berth@localhost>",
        git(repo, "config", "user.name", check=False) + " <"
        + git(repo, "config", "user.email", check=False) + ">",
    )


def test_same_plan_again_commits_nothing(bundle: Bundle, tmp_path: Path) -> None:
    repo = tmp_path / "deploy"
    write_plan(bundle, make_plan(PLAN_A), repo)
    head = git(repo, "rev-parse", "HEAD")
    again = write_plan(bundle, make_plan(PLAN_A), repo)
    assert again.commits == [] and again.changed_clusters == []
    assert git(repo, "rev-parse", "HEAD") == head
    assert _status(repo) == ""


def test_changed_plan_commits_only_the_changed_clusters(bundle: Bundle, tmp_path: Path) -> None:
    repo = tmp_path / "deploy"
    write_plan(bundle, make_plan(PLAN_A), repo)
    before = git(repo, "rev-parse", "HEAD")
    result = write_plan(bundle, make_plan(PLAN_B, digest="sha256:in-b"), repo)
    # web left edge-b and arrived on cloud-1; edge-a is untouched
    assert result.changed_clusters == ["cloud-1", "edge-b"]
    assert [c.cluster for c in result.commits] == ["cloud-1", "edge-b"]
    changed = git(repo, "diff", "--name-only", before, "HEAD").splitlines()
    assert not [f for f in changed if f.startswith("clusters/edge-a/")]
    assert not (repo / "clusters/edge-b/apps/retail/web").exists()
    assert not (repo / "clusters/edge-b/sync/retail/web.yaml").exists()
    assert replicas_of(render_cluster(repo, "edge-b")) == {"telco/web": 2}
    assert "remove retail/web (2)" in result.commits[1].message
    assert read_current(repo) == PLAN_B
    assert diff_moves(read_current(repo), PLAN_B) == []


def test_unplaced_workload_leaves_every_cluster_and_its_base(
    bundle: Bundle, tmp_path: Path
) -> None:
    repo = tmp_path / "deploy"
    write_plan(bundle, make_plan(PLAN_A), repo)
    smaller = {k: v for k, v in PLAN_A.items() if k != "telco/web"}
    result = write_plan(bundle, make_plan(smaller), repo)
    assert result.changed_clusters == ["edge-b"]
    assert [c.cluster for c in result.commits] == ["edge-b", None]
    assert result.commits[-1].subject == "berth: bases: remove telco/web"
    assert not (repo / "bases/telco").exists()
    assert read_current(repo) == smaller
    for cluster in CLUSTERS:
        render_cluster(repo, cluster)  # still builds after the base is gone


def test_changing_format_rewrites_the_folders(bundle: Bundle, tmp_path: Path) -> None:
    repo = tmp_path / "deploy"
    write_plan(bundle, make_plan(PLAN_A), repo, fmt="flux")
    result = write_plan(bundle, make_plan(PLAN_A), repo, fmt="argocd")
    assert result.changed_clusters == sorted(CLUSTERS)
    assert not list(repo.glob("clusters/*/sync"))
    assert all(c.subject.endswith("update argocd manifests") for c in result.commits if c.cluster)
    assert [c.subject for c in result.commits if not c.cluster] == [
        "berth: argocd: write argocd/applicationset.yaml"]  # the hub's ApplicationSets, outside clusters/
    assert read_current(repo) == PLAN_A


def test_foreign_files_and_flux_bootstrap_are_kept(bundle: Bundle, tmp_path: Path) -> None:
    repo = tmp_path / "deploy"
    write_plan(bundle, make_plan(PLAN_A), repo)
    folder = repo / "clusters/edge-a"
    (folder / "flux-system").mkdir()
    (folder / "flux-system/kustomization.yaml").write_text("resources: [gotk.yaml]\n")
    (folder / "flux-system/gotk.yaml").write_text(
        "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: gotk, namespace: flux-system}\n"
    )
    (folder / "extra.yaml").write_text(
        "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: extra, namespace: default}\n"
    )
    root = (folder / "kustomization.yaml").read_text()
    (folder / "kustomization.yaml").write_text(root + "  - extra.yaml\n")
    git(repo, "add", "-A")
    git(repo, "-c", "user.name=Ops", "-c", "user.email=ops@example.com", "commit", "-qm", "ops")
    result = write_plan(bundle, make_plan(PLAN_B), repo)
    assert "edge-a" in result.changed_clusters  # flux-system is now listed
    names = {o["metadata"]["name"] for o in render_cluster(repo, "edge-a")}
    assert {"gotk", "extra", "web", "cache"} <= names
    assert (folder / "extra.yaml").is_file()
    assert write_plan(bundle, make_plan(PLAN_B), repo).commits == []


def test_dirty_clone_is_refused_and_left_alone(bundle: Bundle, tmp_path: Path) -> None:
    repo = tmp_path / "deploy"
    write_plan(bundle, make_plan(PLAN_A), repo)
    (repo / "clusters/edge-a/kustomization.yaml").write_text("# hand edit\n")
    with pytest.raises(GitOpsError, match="uncommitted"):
        write_plan(bundle, make_plan(PLAN_B), repo)
    assert (repo / "clusters/edge-a/kustomization.yaml").read_text() == "# hand edit\n"


def test_failure_mid_write_restores_the_clean_head(bundle: Bundle, tmp_path: Path) -> None:
    repo = tmp_path / "deploy"
    write_plan(bundle, make_plan(PLAN_A), repo)
    head = git(repo, "rev-parse", "HEAD")
    # a hook that refuses the second commit of the next write
    hook = repo / ".git/hooks/pre-commit"
    counter = tmp_path / "count"
    hook.write_text(
        f"#!/bin/sh\nn=$(cat {counter} 2>/dev/null || echo 0); n=$((n+1)); echo $n > {counter}\n"
        '[ "$n" -lt 2 ] || { echo "policy: no" >&2; exit 1; }\n'
    )
    hook.chmod(hook.stat().st_mode | stat.S_IXUSR)
    with pytest.raises(GitOpsError, match="policy: no"):
        write_plan(bundle, make_plan(PLAN_B, digest="sha256:in-b"), repo)
    assert git(repo, "rev-parse", "HEAD") == head
    assert _status(repo) == ""
    assert read_current(repo) == PLAN_A
    assert not (repo / ".git/berth-write-in-progress").exists()


def test_bad_source_is_an_input_error_and_writes_nothing(tmp_path: Path) -> None:
    bundle = make_bundle(tmp_path)
    (tmp_path / "input/apps/web/kustomization.yaml").unlink()
    repo = tmp_path / "deploy"
    with pytest.raises(InputError, match=r"spec\.source\.path"):
        write_plan(bundle, make_plan(PLAN_A), repo)
    assert not (repo / "clusters").exists()


def test_plan_with_unknown_workload_is_an_input_error(bundle: Bundle, tmp_path: Path) -> None:
    with pytest.raises(InputError, match="ghost"):
        write_plan(bundle, make_plan({"retail/ghost": {"edge-a": 1}}), tmp_path / "deploy")


def test_write_without_commit_only_writes_files(bundle: Bundle, tmp_path: Path) -> None:
    out = tmp_path / "preview"
    result = write_plan(bundle, make_plan(PLAN_A), out, commit=False)
    assert result.commits == [] and result.changed_clusters == sorted(CLUSTERS)
    assert not (out / ".git").exists()
    assert read_current(out) == PLAN_A


def test_read_current_of_missing_or_empty_repo_is_empty(tmp_path: Path) -> None:
    assert read_current(tmp_path / "nothing") == {}
    (tmp_path / "empty").mkdir()
    git(tmp_path / "empty", "init", "-q")
    assert read_current(tmp_path / "empty") == {}


def test_hand_edited_overlay_replicas_are_what_is_read_back(
    bundle: Bundle, tmp_path: Path
) -> None:
    repo = tmp_path / "deploy"
    write_plan(bundle, make_plan(PLAN_A), repo)
    overlay = repo / "clusters/edge-b/apps/telco/web/kustomization.yaml"
    overlay.write_text(overlay.read_text().replace("count: 2", "count: 5"))
    assert read_current(repo)["telco/web"] == {"edge-b": 5}
    (repo / "clusters/edge-a/apps/retail/web/kustomization.yaml").unlink()
    assert read_current(repo)["retail/web"] == {"edge-b": 2}


# --- pushing -----------------------------------------------------------------------


def test_push_rebases_over_a_concurrent_writer_and_keeps_both(
    bundle: Bundle, tmp_path: Path
) -> None:
    remote = bare_remote(tmp_path / "remote.git")
    seed = clone(remote, tmp_path / "seed")
    (seed / "README.md").write_text("deploy repo\n")
    git(seed, "add", "README.md")
    git(seed, "commit", "-qm", "init")
    git(seed, "push", "-q", "origin", "main")
    ours = clone(remote, tmp_path / "ours", identity="Ours")
    theirs = clone(remote, tmp_path / "theirs", identity="Theirs")
    # the other writer pushes after we cloned
    (theirs / "NOTES.md").write_text("other writer\n")
    git(theirs, "add", "NOTES.md")
    git(theirs, "commit", "-qm", "other writer's commit")
    git(theirs, "push", "-q", "origin", "main")

    result = write_plan(bundle, make_plan(PLAN_A), ours, push=True)
    assert result.pushed and result.push_attempts == 2
    remote_log = git(remote, "log", "--format=%s", "main").splitlines()
    assert "other writer's commit" in remote_log
    assert sum(s.startswith("berth: ") for s in remote_log) == 4
    assert git(remote, "rev-parse", "main") == git(ours, "rev-parse", "HEAD")
    # the reported commits are the rebased ones that are on the remote
    assert [c.sha for c in result.commits] == git(
        remote, "log", "-4", "--reverse", "--format=%H", "main"
    ).splitlines()
    assert _status(ours) == ""
    # history is linear: nothing was force-pushed over the other writer
    assert git(remote, "merge-base", "--is-ancestor", git(theirs, "rev-parse", "HEAD"), "main") == ""


def test_push_resolves_a_conflicting_berth_writer_by_rewriting_the_plan(
    bundle: Bundle, tmp_path: Path
) -> None:
    remote = bare_remote(tmp_path / "remote.git")
    first = clone(remote, tmp_path / "first")
    write_plan(bundle, make_plan(PLAN_A), first, push=True)
    ours = clone(remote, tmp_path / "ours")
    theirs = clone(remote, tmp_path / "theirs")
    other = {**PLAN_A, "telco/web": {"edge-b": 1, "edge-a": 1}}
    write_plan(bundle, make_plan(other, digest="sha256:other"), theirs, push=True)
    result = write_plan(bundle, make_plan(PLAN_B, digest="sha256:in-b"), ours, push=True)
    assert result.pushed
    # one commit per cluster that differs from what the remote had: the other writer
    # moved telco/web (edge-a, edge-b), we move retail/web (cloud-1, edge-b)
    assert sorted(c.cluster or "" for c in result.commits) == ["cloud-1", "edge-a", "edge-b"]
    git(theirs, "pull", "-q", "--ff-only")  # their commits are still in the history
    assert read_current(theirs) == PLAN_B
    log = git(theirs, "log", "--format=%B")
    assert "Berth-Input-Digest: sha256:other" in log and "Berth-Input-Digest: sha256:in-b" in log
    for cluster in CLUSTERS:
        render_cluster(theirs, cluster)


def test_rejected_push_raises_and_leaves_the_clone_clean(bundle: Bundle, tmp_path: Path) -> None:
    remote = bare_remote(tmp_path / "remote.git")
    seed = clone(remote, tmp_path / "seed")
    write_plan(bundle, make_plan(PLAN_A), seed, push=True)
    hook = remote / "hooks/pre-receive"
    hook.write_text("#!/bin/sh\necho 'protected branch: changes need review' >&2\nexit 1\n")
    hook.chmod(hook.stat().st_mode | stat.S_IXUSR)
    ours = clone(remote, tmp_path / "ours")
    head = git(ours, "rev-parse", "HEAD")
    remote_head = git(remote, "rev-parse", "main")
    with pytest.raises(GitOpsError, match="protected branch") as info:
        write_plan(bundle, make_plan(PLAN_B), ours, push=True, max_push_attempts=2)
    assert info.value.exit_code == 3
    assert "attempt 2/2" in str(info.value)  # retried, and the last attempt's reason is given
    assert git(ours, "rev-parse", "HEAD") == head
    assert _status(ours) == ""
    assert git(remote, "rev-parse", "main") == remote_head
    assert read_current(ours) == PLAN_A


def test_credentials_never_reach_messages() -> None:
    text = "fatal: unable to access 'https://bot:s3cr3t@git.example.com/deploy.git/': 403"
    assert "s3cr3t" not in sanitize(text)
    assert "https://***@git.example.com/deploy.git/" in sanitize(text)


def test_remote_url_in_generated_objects_has_no_credentials(
    bundle: Bundle, tmp_path: Path
) -> None:
    repo = tmp_path / "deploy"
    os.makedirs(repo)
    git(repo, "init", "-q", "-b", "main")
    git(repo, "remote", "add", "origin", "https://bot:s3cr3t@git.example.com/deploy.git")
    write_plan(bundle, make_plan(PLAN_A), repo, fmt="argocd")
    text = (repo / "clusters/edge-a/argocd-application.yaml").read_text()
    assert "repoURL: https://git.example.com/deploy.git" in text
    assert "s3cr3t" not in git(repo, "log", "-p")


def test_a_killed_write_is_undone_by_the_next_one(bundle: Bundle, tmp_path: Path) -> None:
    repo = tmp_path / "deploy"
    write_plan(bundle, make_plan(PLAN_A), repo)
    head = git(repo, "rev-parse", "HEAD")
    # the second commit of the next write hangs in a hook; then the writer is killed
    started = tmp_path / "started"
    hook = repo / ".git/hooks/pre-commit"
    hook.write_text(
        f"#!/bin/sh\nn=$(cat {started} 2>/dev/null || echo 0); n=$((n+1)); echo $n > {started}\n"
        '[ "$n" -lt 2 ] || sleep 60\n'
    )
    hook.chmod(hook.stat().st_mode | stat.S_IXUSR)
    script = tmp_path / "writer.py"
    script.write_text(
        "import sys\n"
        f"sys.path.insert(0, {str(Path(__file__).resolve().parents[1])!r})\n"
        "from pathlib import Path\n"
        "from adapters.gitops import write_plan\n"
        "from tests.test_gitops_support import PLAN_B, make_bundle, make_plan\n"
        f"write_plan(make_bundle(Path({str(tmp_path / 'other')!r})), make_plan(PLAN_B), "
        f"Path({str(repo)!r}))\n"
    )
    proc = subprocess.Popen([sys.executable, str(script)], start_new_session=True)
    try:
        deadline = time.monotonic() + 60
        while not (started.is_file() and started.read_text().strip() == "2"):
            assert proc.poll() is None, "the writer ended before it was killed"
            assert time.monotonic() < deadline
            time.sleep(0.05)
    finally:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()
    assert git(repo, "rev-parse", "HEAD") != head  # one cluster commit got in
    assert _status(repo) != ""  # and the next cluster is half-staged
    hook.unlink()
    result = write_plan(bundle, make_plan(PLAN_B), repo)
    assert [c.cluster for c in result.commits] == ["cloud-1", "edge-b"]
    assert git(repo, "rev-parse", "HEAD~2") == head
    assert _status(repo) == ""
    assert read_current(repo) == PLAN_B


def test_push_without_the_remote_fails_before_writing(bundle: Bundle, tmp_path: Path) -> None:
    repo = tmp_path / "deploy"
    write_plan(bundle, make_plan(PLAN_A), repo)
    head = git(repo, "rev-parse", "HEAD")
    with pytest.raises(GitOpsError, match="no remote 'origin'"):
        write_plan(bundle, make_plan(PLAN_B), repo, push=True)
    assert git(repo, "rev-parse", "HEAD") == head and _status(repo) == ""
