"""``source.path`` stays inside the tenant's own sources folder (service) or the bundle's folder (CLI)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml

from adapters.gitops import write_plan
from engine.documents.load import load_bundle
from engine.errors import InputError
from engine.planner import place
from tests.api_fixture import ADMIN, PAYMENTS, RETAIL, bearer, serve, workload, write_service
from tests.builders import cluster
from tests.builders import workload as bundle_workload

BERTH = str(Path(sys.executable).parent / "berth")
SECRET = "payments-db-password-Zq7"


def app_folder(folder: Path, name: str, *, extra: dict[str, str] | None = None,
               resources: list[str] | None = None) -> Path:
    """A kustomize folder with a Deployment ``name`` (and ``extra`` files)."""
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "deployment.yaml").write_text(yaml.safe_dump({
        "apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": name},
        "spec": {"selector": {"matchLabels": {"app": name}}, "template": {
            "metadata": {"labels": {"app": name}},
            "spec": {"containers": [{"name": name, "image": "nginx:1.27"}]}}}}), encoding="utf-8")
    for file, text in (extra or {}).items():
        (folder / file).write_text(text, encoding="utf-8")
    kust = {"apiVersion": "kustomize.config.k8s.io/v1beta1", "kind": "Kustomization",
            "resources": ["deployment.yaml", *(extra or {}), *(resources or [])]}
    (folder / "kustomization.yaml").write_text(yaml.safe_dump(kust), encoding="utf-8")
    return folder


def secret_yaml(name: str) -> str:
    return yaml.safe_dump({"apiVersion": "v1", "kind": "Secret", "metadata": {"name": name},
                           "stringData": {"password": SECRET}})


@pytest.fixture
def sources(tmp_path: Path) -> Path:
    root = tmp_path / "sources"
    app_folder(root / "retail" / "web", "web")
    app_folder(root / "payments" / "db", "db", extra={"secret.yaml": secret_yaml("db")})
    app_folder(tmp_path / "elsewhere" / "app", "app", extra={"secret.yaml": secret_yaml("app")})
    return root


@contextmanager
def client_for(tmp_path: Path, extra: dict[str, Any] | None = None, config: Path | None = None
               ) -> Iterator[httpx.Client]:
    """A real uvicorn server on 127.0.0.1 with ``sourcesDir: sources``."""
    config = config or write_service(tmp_path, extra={"sourcesDir": "sources", **(extra or {})})
    with serve(config) as url, httpx.Client(base_url=url, timeout=60) as client:
        yield client


def with_source(name: str, ns: str, path: str) -> dict[str, Any]:
    doc = workload(name, ns)
    doc["spec"]["source"] = {"path": path}
    return doc


def post(client: httpx.Client, doc: dict[str, Any], token: str = RETAIL, *, dry: bool = True) -> Any:
    return client.post("/v1/placements", json={"documents": [doc], "dryRun": dry}, headers=bearer(token))


def test_service_accepts_only_the_tenants_own_folder(tmp_path: Path, sources: Path) -> None:
    (sources / "retail" / "to-payments").symlink_to(sources / "payments" / "db")
    (sources / "retail" / "up").symlink_to(tmp_path / "elsewhere")
    app_folder(sources / "retail" / "inner", "inner")
    (sources / "retail" / "inner" / "stolen.yaml").symlink_to(sources / "payments" / "db" / "secret.yaml")
    app_folder(sources / "retail" / "reach", "reach", resources=["../../payments/db"])
    refused = {
        "payments/db": "another tenant's folder",
        "../elsewhere/app": "outside sourcesDir",
        str(sources / "payments" / "db"): "absolute, another tenant's",
        str(tmp_path / "elsewhere" / "app"): "absolute, outside",
        "retail/../payments/db": "dot-dot back out",
        "retail/to-payments": "symlink to another tenant",
        "retail/up/app": "symlink outside",
        "retail/inner": "a file inside links to another tenant's Secret",
        "retail/reach": "kustomization resources reach another tenant",
        "retail/missing": "does not exist",
        ".": "sourcesDir itself",
        "retail/web\x00": "NUL",
    }
    with client_for(tmp_path) as client:
        for path, why in refused.items():
            for dry in (True, False):
                r = post(client, with_source("web", "retail", path), dry=dry)
                assert r.status_code == 422, (why, r.text)
                body = r.json()
                assert body["field"] == "documents[0].spec.source.path", why
                # nothing of the other tenant's files, no server folder beyond what the caller wrote
                assert SECRET not in r.text and str(tmp_path) not in body["detail"].replace(path, ""), why
        # plans check the same rule
        r = client.post("/v1/plans", json={"documents": [with_source("web", "retail", "payments/db")],
                                           "useFleet": True}, headers=bearer(RETAIL))
        assert r.status_code == 422 and r.json()["field"] == "documents[0].spec.source.path"
        # the own folder works, as a relative or an absolute path
        assert post(client, with_source("web", "retail", "retail/web")).status_code == 200
        assert post(client, with_source("web", "retail", str(sources / "retail" / "web"))).status_code == 200
        # the admin too is held to the document's namespace folder
        assert post(client, with_source("web", "retail", "payments/db"), ADMIN).status_code == 422
        assert post(client, with_source("db", "payments", "payments/db"), PAYMENTS).status_code == 200


def test_per_token_sources_folder(tmp_path: Path, sources: Path) -> None:
    app_folder(tmp_path / "ci-checkouts" / "retail-web", "web")
    config = write_service(tmp_path, extra={"sourcesDir": "sources"})
    data = yaml.safe_load(config.read_text())
    data["tokens"][1]["sources"] = "ci-checkouts"
    config.write_text(yaml.safe_dump(data))
    with client_for(tmp_path, config=config) as client:
        assert post(client, with_source("web", "retail", "../ci-checkouts/retail-web")).status_code == 200
        r = post(client, with_source("web", "retail", "retail/web"))
        assert r.status_code == 422 and r.json()["field"] == "documents[0].spec.source.path"


def test_committed_source_never_carries_another_tenants_files(tmp_path: Path, sources: Path) -> None:
    repo = tmp_path / "deploy"
    with client_for(tmp_path, {"gitops": {"repo": str(repo), "format": "flux"}}) as client:
        (sources / "retail" / "web" / "stolen.yaml").symlink_to(sources / "payments" / "db" / "secret.yaml")
        assert post(client, with_source("web", "retail", "retail/web"), dry=False).status_code == 422
        (sources / "retail" / "web" / "stolen.yaml").unlink()
        assert post(client, with_source("web", "retail", "retail/web"), dry=False).status_code == 201
    text = subprocess.run(["git", "-C", str(repo), "log", "-p", "--all"], capture_output=True, text=True,
                          check=True).stdout
    assert "bases/retail/web/deployment.yaml" in text and SECRET not in text


def test_writer_refuses_a_base_that_reaches_out(tmp_path: Path) -> None:
    """At every write, not only when accepted: a folder that was closed may not be now."""
    bundle_dir = tmp_path / "bundle"
    app_folder(bundle_dir / "apps" / "web", "web")
    app_folder(tmp_path / "other", "other", extra={"secret.yaml": secret_yaml("other")})
    doc = bundle_workload("web", 1, namespace="retail", source={"path": "apps/web"})
    (bundle_dir / "b.yaml").write_text(yaml.safe_dump_all([cluster("a"), doc]), encoding="utf-8")
    bundle = load_bundle([bundle_dir])
    plan = place(bundle, time_limit=5)
    (bundle_dir / "apps" / "web" / "s.yaml").symlink_to(tmp_path / "other" / "secret.yaml")
    with pytest.raises(InputError, match=r"spec\.source\.path.*symlink s\.yaml points outside"):
        write_plan(bundle, plan, tmp_path / "deploy")
    (bundle_dir / "apps" / "web" / "s.yaml").unlink()
    kust = bundle_dir / "apps" / "web" / "kustomization.yaml"
    kust.write_text(kust.read_text() + "components:\n- ../../../other\n")
    with pytest.raises(InputError, match=r"components entry '\.\./\.\./\.\./other' leaves the folder"):
        write_plan(bundle, plan, tmp_path / "deploy")
    assert not (tmp_path / "deploy" / "clusters").exists()


def run(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "COLUMNS": "200"}
    return subprocess.run([BERTH, *args], capture_output=True, text=True, timeout=120, cwd=cwd, env=env)


def test_cli_keeps_sources_inside_the_bundle_folder(tmp_path: Path) -> None:
    app_folder(tmp_path / "shared" / "web", "web")
    bundle_dir = tmp_path / "bundle"
    bundle_dir.mkdir()
    doc = bundle_workload("web", 1, namespace="retail", source={"path": "../shared/web"})
    bundle_file = bundle_dir / "fleet.json"
    bundle_file.write_text(json.dumps([cluster("a"), doc]), encoding="utf-8")
    repo = tmp_path / "deploy"
    out = tmp_path / "plan.json"
    for command in (["place", str(bundle_file), "--gitops-repo", str(repo), "--commit", "--output", str(out)],
                    ["reoptimize", str(bundle_file), "--gitops-repo", str(repo), "--commit"]):
        result = run(*command, cwd=tmp_path)
        assert result.returncode == 2, result.stdout + result.stderr
        err = " ".join(result.stderr.split())
        assert "fleet.json" in err and "Workload retail/web" in err and "spec.source.path" in err, err
        assert "--allow-sources-outside" in err
        assert not repo.exists() and not out.exists()
    result = run("place", str(bundle_file), "--gitops-repo", str(repo), "--commit", "--allow-sources-outside",
                 cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert (repo / "bases" / "retail" / "web" / "deployment.yaml").is_file()
    result = run("reoptimize", str(bundle_file), "--gitops-repo", str(repo), "--allow-sources-outside",
                 cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    # a folder given on the command line is a root for the files below it
    (bundle_dir / "sub").mkdir()
    app_folder(bundle_dir / "apps" / "web", "web")
    doc["spec"]["source"]["path"] = "../apps/web"
    bundle_file.unlink()
    (bundle_dir / "sub" / "fleet.json").write_text(json.dumps([cluster("a"), doc]), encoding="utf-8")
    assert run("place", str(bundle_dir), cwd=tmp_path).returncode == 0
    assert run("place", str(bundle_dir / "sub" / "fleet.json"), cwd=tmp_path).returncode == 2
