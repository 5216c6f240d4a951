"""``berth status --gitops-repo DIR`` reads what each cluster runs from the repository."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
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


REC = "kind: ClusterPlacement\nspec: "
HAND_EDITED = [
    ("spec-is-a-list", REC + "[a]\n", None, "spec must be a mapping"),
    ("workloads-not-a-list", REC + "{workloads: 5}\n", None, "spec must be a mapping"),
    ("entry-not-a-mapping", REC + "{workloads: [web]}\n", None, "spec.workloads[0] needs"),
    ("replicas-huge", REC + "{workloads: [{workload: a/web, replicas: 100000000000000000000}]}\n",
     None, "spec.workloads[0] needs"),
    ("depends-not-a-list", REC + "{workloads: [{workload: a/web, replicas: 1, dependsOn: 5}]}\n",
     None, "dependsOn must be a list"),
    ("overlay-replicas-not-a-list",
     REC + "{workloads: [{workload: a/web, replicas: 1, overlay: web}]}\n",
     "replicas: {name: web}\n", "replicas must be a list"),
    ("not-yaml", "kind: [\n", None, "cannot read"),
]


@pytest.mark.parametrize(("record", "kustomization", "fragment"),
                         [pytest.param(r, k, f, id=n) for n, r, k, f in HAND_EDITED])
def test_a_hand_edited_repository_is_a_clear_error_naming_the_file(
    tmp_path: Path, record: str, kustomization: str | None, fragment: str
) -> None:
    from adapters.gitops import read_current
    from engine.errors import GitOpsError

    folder = tmp_path / "clusters" / "edge-1"
    folder.mkdir(parents=True)
    (folder / "berth-placement.yaml").write_text(record, encoding="utf-8")
    if kustomization is not None:
        (folder / "web").mkdir()
        (folder / "web" / "kustomization.yaml").write_text(kustomization, encoding="utf-8")
    with pytest.raises(GitOpsError) as info:
        read_current(tmp_path)
    assert fragment in str(info.value)
    assert str(folder) in str(info.value)
