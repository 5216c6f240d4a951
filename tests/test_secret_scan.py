"""Run every command and endpoint with credentials in remote URLs, tokens and config, then grep
everything Berth wrote (plan files, every commit's tree and message, generated objects, state,
stdout/stderr, the server's log) for them: none may appear."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import httpx
import yaml

from tests.api_fixture import ADMIN, API, PAYMENTS, RETAIL, bearer, free_port, workload, write_service
from tests.test_gitops_support import bare_remote, clone, git, write_bundle
from tests.test_secrets import PASSWORD, USER, berth_serve

BERTH = str(Path(sys.executable).parent / "berth")
PROM_PASSWORD = "prom:S3cr@t/9"  # raw '@', ':' and '/' (the last percent-encoded in the URL)
SECRETS = (PASSWORD, PASSWORD.split("@")[-1], USER, RETAIL, ADMIN, PAYMENTS, "S3cr@t", "S3cr%40t")


def remote_url(tmp: Path) -> str:
    return f"https://{USER}:{PASSWORD}@git.example.invalid/org/{tmp.name}.git"


def credentialed_clone(tmp: Path, name: str) -> tuple[Path, Path]:
    bare = bare_remote(tmp / f"{name}-remote.git")
    repo = clone(bare, tmp / name)
    url = remote_url(tmp)
    git(repo, "remote", "set-url", "origin", url)
    git(repo, "config", f"url.{bare.as_uri()}.pushInsteadOf", url)
    return bare, repo


def prometheus_url() -> str:
    return f"http://{USER}:{PROM_PASSWORD.replace('/', '%2F')}@127.0.0.1:{free_port()}"  # nothing listens


def written_by_berth(*roots: Path) -> str:
    """Every file below ``roots`` outside .git, and every commit (message and patch) of each repo."""
    parts: list[str] = []
    for root in roots:
        if (root / "HEAD").is_file() or (root / ".git").exists():
            parts.append(git(root, "log", "--all", "-p", "--format=%H%n%an %ae%n%B", check=False))
        for path in root.rglob("*"):
            if path.is_file() and ".git" not in path.relative_to(root).parts:
                parts.append(path.read_text(errors="replace"))
    return "\n".join(parts)


def leaks(text: str) -> list[str]:
    return [s for s in SECRETS if s in text]


def test_cli_commands_write_and_print_no_secret(tmp_path: Path) -> None:
    bundle = write_bundle(tmp_path / "input")
    bare, repo = credentialed_clone(tmp_path, "deploy")
    git(repo, "config", f"url.{bare.as_uri()}.insteadOf", remote_url(tmp_path))  # --push fetches first
    out = tmp_path / "out"
    out.mkdir()
    env = {**os.environ, "COLUMNS": "200"}
    commands = [
        (["place", str(bundle), "--gitops-repo", str(repo), "--commit", "--push", "--output", str(out / "plan.json")],
         0),
        (["reoptimize", str(bundle), "--gitops-repo", str(repo), "--max-moves", "3", "--commit", "--push",
          "--summary", str(out / "summary.json"), "--output", str(out / "plan2.json")], 0),
        (["status", "--gitops-repo", str(repo)], 0),
        (["status", "--gitops-repo", str(repo), "-o", "json"], 0),
        (["fleet", str(bundle), "--prometheus", prometheus_url()], 3),
        (["place", str(bundle), "--prometheus", prometheus_url(), "--output", str(out / "never.json")], 3),
    ]
    printed = []
    for args, code in commands:
        proc = subprocess.run([BERTH, *args], capture_output=True, text=True, timeout=300, env=env)
        assert proc.returncode == code, (args, proc.stdout, proc.stderr)
        printed.append(proc.stdout + proc.stderr)
    # a push that fails against a URL that carries credentials
    git(repo, "config", "--unset", f"url.{bare.as_uri()}.pushInsteadOf")
    git(repo, "config", "--unset", f"url.{bare.as_uri()}.insteadOf")
    git(repo, "remote", "set-url", "origin", f"http://{USER}:{PASSWORD}@127.0.0.1:{free_port()}/deploy.git")
    proc = subprocess.run([BERTH, "reoptimize", str(bundle), "--gitops-repo", str(repo), "--max-moves", "0",
                           "--commit", "--push"], capture_output=True, text=True, timeout=300, env=env)
    printed.append(proc.stdout + proc.stderr)
    text = "\n".join(printed) + written_by_berth(bare, repo, out)
    assert "apiVersion" in text and "commit" in text  # the scan read real output
    assert leaks(text) == []


def test_service_endpoints_and_logs_hold_no_secret(tmp_path: Path) -> None:
    bare, repo = credentialed_clone(tmp_path, "deploy")
    sources = tmp_path / "sources" / "retail" / "web"
    sources.mkdir(parents=True)
    (sources / "kustomization.yaml").write_text("resources: [app.yaml]\n")
    (sources / "app.yaml").write_text(yaml.safe_dump({
        "apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "web"},
        "spec": {"selector": {"matchLabels": {"app": "web"}}, "template": {
            "metadata": {"labels": {"app": "web"}}, "spec": {"containers": [{"name": "web", "image": "nginx"}]}}}}))
    config = write_service(tmp_path, extra={
        "gitops": {"repo": str(repo), "format": "argocd", "push": True},
        "sourcesDir": "sources",
        "live": {"prometheus": prometheus_url(), "refreshSeconds": 1, "onStale": "fallback"},
    })
    log = tmp_path / "serve.log"
    answers: list[str] = []
    with berth_serve(config, log) as url, httpx.Client(base_url=url, timeout=120) as client:
        def call(method: str, path: str, token: str | None = RETAIL, **kw: object) -> httpx.Response:
            r = client.request(method, path, headers=bearer(token) if token else {}, **kw)  # type: ignore[arg-type]
            answers.append(r.text + str(dict(r.headers)))
            return r

        web = workload("web", "retail")
        web["spec"]["source"] = {"path": "retail/web"}
        assert call("POST", "/v1/placements", json={"documents": [web]}).status_code == 201
        call("POST", "/v1/placements", json={"documents": [web], "dryRun": True})
        call("GET", "/v1/placements")
        call("GET", "/v1/placements/retail/web")
        call("GET", "/v1/fleet")
        call("GET", "/readyz", None)
        call("GET", "/metrics", None)
        call("GET", "/healthz", None)
        call("POST", "/v1/plans", json={"documents": [workload("api", "retail")], "useFleet": True})
        call("POST", "/v1/whatif", ADMIN, json={"scenarios": [
            {"apiVersion": API, "kind": "Scenario", "metadata": {"name": "s"}, "spec": {}}]})
        call("GET", f"/v1/placements?token={RETAIL}", None)
        call("GET", f"/v1/placements?access_token={ADMIN}", None)
        call("GET", "/v1/placements", "wrong-" + RETAIL)
        call("POST", "/v1/placements", json={"documents": [workload("x", "payments")]})
        call("DELETE", "/v1/placements/retail/web")
    text = "\n".join(answers) + log.read_text() + written_by_berth(bare, repo, tmp_path / "state")
    assert "berth-git-credentials" in written_by_berth(bare)  # the objects name the Secret instead
    assert "GET /v1/placements?<query not logged>" in text
    assert leaks(text) == []
