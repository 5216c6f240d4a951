"""``berth status --gitops-repo DIR`` reads what each cluster runs from the repository."""

from __future__ import annotations

import json
from pathlib import Path

import typer
from typer.testing import CliRunner

from adapters.cli.status import register
from adapters.gitops import write_plan
from tests.test_gitops_support import PLAN_A, make_bundle, make_plan


def _app() -> typer.Typer:
    app = typer.Typer()
    register(app)

    @app.command("noop")
    def noop() -> None:  # a second command keeps typer in multi-command mode
        """Nothing."""

    return app


def test_status_prints_every_cluster_and_its_replicas(tmp_path: Path) -> None:
    repo = tmp_path / "deploy"
    result = write_plan(make_bundle(tmp_path), make_plan(PLAN_A), repo)
    out = CliRunner().invoke(_app(), ["status", "--gitops-repo", str(repo), "-o", "json"])
    assert out.exit_code == 0, out.output
    data = json.loads(out.output)
    got = {
        (c["name"], w["workload"]): w["replicas"] for c in data["clusters"] for w in c["workloads"]
    }
    want = {(c, k): n for k, per in PLAN_A.items() for c, n in per.items()}
    assert got == want
    shas = {c["name"]: c["lastCommit"]["sha"] for c in data["clusters"]}
    for info in result.commits[1:]:
        assert info.sha.startswith(shas[info.cluster])
    table = CliRunner().invoke(_app(), ["status", "--gitops-repo", str(repo)])
    assert table.exit_code == 0
    assert "retail/kafka" in table.output and "no source" in table.output


def test_status_of_an_empty_folder_and_a_missing_one(tmp_path: Path) -> None:
    (tmp_path / "empty").mkdir()
    out = CliRunner().invoke(_app(), ["status", "--gitops-repo", str(tmp_path / "empty")])
    assert out.exit_code == 0 and "no cluster" in out.output
    out = CliRunner().invoke(_app(), ["status", "--gitops-repo", str(tmp_path / "missing")])
    assert out.exit_code == 2


def test_write_result_summary_says_what_happened(tmp_path: Path) -> None:
    bundle = make_bundle(tmp_path)
    repo = tmp_path / "deploy"
    first = write_plan(bundle, make_plan(PLAN_A), repo)
    assert "4 commit(s)" in first.summary() and "edge-a" in first.summary()
    again = write_plan(bundle, make_plan(PLAN_A), repo)
    assert "nothing committed" in again.summary()
