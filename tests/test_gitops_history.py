"""``berth history`` and ``berth rollback`` on real git repositories with a bare remote."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from adapters.cli.app import app
from adapters.gitops import read_current, write_plan
from adapters.gitops.layout import plan_id
from engine.documents.load import load_bundle
from tests.test_gitops_support import BUNDLE, PLAN_A, PLAN_B, bare_remote, clone, git, make_plan, write_bundle

#: bundle B: edge-b shrank from 16 to 8 CPUs (plan A still fits: it uses 3 there)
BUNDLE_B = BUNDLE.replace('metadata: {name: edge-b}\nspec: {capacity: {cpu: "16"',
                          'metadata: {name: edge-b}\nspec: {capacity: {cpu: "8"')
#: bundle C: edge-b shrank to 2 CPUs, plan A's 3 no longer fit there
BUNDLE_C = BUNDLE.replace('metadata: {name: edge-b}\nspec: {capacity: {cpu: "16"',
                          'metadata: {name: edge-b}\nspec: {capacity: {cpu: "2"')


def _bundle_file(root: Path, text: str) -> Path:
    path = write_bundle(root)
    path.write_text(text)
    return path


def _run(*args: str) -> tuple[int, str, str]:
    out = CliRunner().invoke(app, list(args))
    return out.exit_code, out.stdout, out.stderr


@pytest.fixture
def repo(tmp_path: Path) -> dict[str, object]:
    """A clone of a bare remote holding plan A (bundle A), then plan B (bundle B), both pushed."""
    remote = bare_remote(tmp_path / "remote.git")
    work = clone(remote, tmp_path / "deploy")
    file_a = _bundle_file(tmp_path / "a", BUNDLE)
    file_b = _bundle_file(tmp_path / "b", BUNDLE_B)
    bundle_a, bundle_b = load_bundle([file_a]), load_bundle([file_b])
    plan_a, plan_b = make_plan(PLAN_A, bundle_a.digest()), make_plan(PLAN_B, bundle_b.digest())
    first = write_plan(bundle_a, plan_a, work, push=True)
    second = write_plan(bundle_b, plan_b, work, push=True)
    assert first.commits and second.commits
    return {"remote": remote, "work": work, "file_b": file_b, "id_a": plan_id(plan_a), "id_b": plan_id(plan_b),
            "first": first, "second": second, "tmp": tmp_path}


def test_history_lists_both_plans_newest_first_grouped_by_commit(repo: dict) -> None:
    code, out, err = _run("history", "--gitops-repo", str(repo["work"]), "-o", "json")
    assert code == 0, err
    plans = json.loads(out)["plans"]
    assert [p["plan"] for p in plans] == [repo["id_b"], repo["id_a"]]
    b, a = plans
    assert [c["sha"] for c in a["commits"]] == [c.sha for c in reversed(repo["first"].commits)]
    assert [c["sha"] for c in b["commits"]] == [c.sha for c in reversed(repo["second"].commits)]
    assert a["clusters"] == ["cloud-1", "edge-a", "edge-b"] and b["clusters"] == ["cloud-1", "edge-b"]
    assert a["placement"] == PLAN_A and b["placement"] == PLAN_B
    assert a["workloads"] == 5 and a["replicas"] == 13
    table = _run("history", "--gitops-repo", str(repo["work"]))[1]
    assert repo["id_a"].removeprefix("sha256:")[:12] in table and repo["id_b"].removeprefix("sha256:")[:12] in table


def test_rollback_dry_run_shows_the_moves_and_commits_nothing(repo: dict) -> None:
    head = git(repo["work"], "rev-parse", "HEAD")
    code, out, err = _run("rollback", str(repo["file_b"]), "--gitops-repo", str(repo["work"]), "--to", repo["id_a"])
    assert code == 0, err
    assert "retail/web" in out and "move retail/web: 2 from cloud-1 to edge-b" in out
    assert "dry run" in out
    assert git(repo["work"], "rev-parse", "HEAD") == head


def test_rollback_commit_restores_plan_a_as_new_commits_keeping_b(repo: dict) -> None:
    work, remote = repo["work"], repo["remote"]
    b_commits = [c.sha for c in repo["second"].commits]
    short = repo["id_a"].removeprefix("sha256:")[:10]
    code, out, err = _run("rollback", str(repo["file_b"]), "--gitops-repo", str(work), "--to", short,
                          "--commit", "--push")
    assert code == 0, err
    assert "retail/web" in out
    assert read_current(work) == PLAN_A
    fresh = clone(remote, repo["tmp"] / "fresh")
    assert read_current(fresh) == PLAN_A  # what the clusters will apply
    for sha in b_commits:  # no history rewritten: B's commits are ancestors of the new head
        assert git(fresh, "merge-base", "--is-ancestor", sha, "HEAD", check=False) == ""
    new = git(fresh, "log", "--format=%H", f"{b_commits[-1]}..HEAD").splitlines()
    assert len(new) == 2  # one per cluster the rollback changes (edge-b, cloud-1)
    for sha in new:
        body = git(fresh, "show", "-s", "--format=%B", sha)
        assert f"Berth-Rollback-To: {repo['id_a']}" in body and "Berth-Cluster: " in body
    plans = json.loads(_run("history", "--gitops-repo", str(fresh), "-o", "json")[1])["plans"]
    assert plans[0]["rollbackTo"] == repo["id_a"] and plans[0]["placement"] == PLAN_A
    assert [p["plan"] for p in plans[1:]] == [repo["id_b"], repo["id_a"]]


def test_rollback_to_a_commit(repo: dict) -> None:
    last_a = repo["first"].commits[-1].sha
    code, _out, err = _run("rollback", str(repo["file_b"]), "--gitops-repo", str(repo["work"]),
                          "--to", last_a[:9], "--commit")
    assert code == 0, err
    assert read_current(repo["work"]) == PLAN_A
    assert f"Berth-Rollback-To: {last_a}" in git(repo["work"], "show", "-s", "--format=%B", "HEAD")


def test_rollback_that_no_longer_fits_is_refused_and_commits_nothing(repo: dict) -> None:
    work = repo["work"]
    file_c = _bundle_file(repo["tmp"] / "c", BUNDLE_C)
    head, remote_head = git(work, "rev-parse", "HEAD"), git(repo["remote"], "rev-parse", "main")
    code, _out, err = _run("rollback", str(file_c), "--gitops-repo", str(work), "--to", repo["id_a"],
                          "--commit", "--push")
    assert code == 1
    assert "Capacity" in err and "edge-b" in err and "refused" in err
    assert git(work, "rev-parse", "HEAD") == head and git(repo["remote"], "rev-parse", "main") == remote_head
    assert git(work, "status", "--porcelain") == ""
    assert read_current(work) == PLAN_B


def test_rollback_refuses_a_workload_deleted_since(repo: dict) -> None:
    without_batch = BUNDLE.split("---\napiVersion: placement.berth.dev/v1alpha1\nkind: Workload\n"
                                 "metadata: {name: batch")[0]
    without_batch += BUNDLE.split("spec: {replicas: 2, resources: {cpu: \"2\"}}\n")[1]
    file_d = _bundle_file(repo["tmp"] / "d", without_batch)
    code, _out, err = _run("rollback", str(file_d), "--gitops-repo", str(repo["work"]), "--to", repo["id_a"])
    assert code == 1 and "UnknownWorkload" in err and "retail/batch" in err


def test_unknown_digest_or_commit_is_exit_2(repo: dict) -> None:
    head = git(repo["work"], "rev-parse", "HEAD")
    for bad in ("sha256:" + "0" * 64, "deadbeef0", "no-such-branch"):
        code, _out, err = _run("rollback", str(repo["file_b"]), "--gitops-repo", str(repo["work"]),
                               "--to", bad, "--commit")
        assert code == 2, (bad, err)
        assert "neither a committed plan" in err
    assert git(repo["work"], "rev-parse", "HEAD") == head


def test_history_of_a_folder_that_is_not_a_repository(tmp_path: Path) -> None:
    (tmp_path / "plain").mkdir()
    assert _run("history", "--gitops-repo", str(tmp_path / "plain"))[0] == 2
    assert _run("history", "--gitops-repo", str(tmp_path / "missing"))[0] == 2
    git(tmp_path, "init", "-q", "-b", "main", str(tmp_path / "empty"))
    code, out, _ = _run("history", "--gitops-repo", str(tmp_path / "empty"))
    assert code == 0 and "no plan" in out
