"""Credentials stay out of generated objects, messages and logs; tokens only in the Authorization header."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx
import pytest
import yaml

from adapters.gitops import write_plan
from engine.redaction import has_credentials, redact, strip_userinfo
from tests.api_fixture import RETAIL, bearer, free_port, workload, write_service
from tests.test_gitops_support import PLAN_A, bare_remote, clone, git, make_bundle, make_plan, write_bundle

BERTH = str(Path(sys.executable).parent / "berth")
#: a password with raw '@' (and ':'), a user name that is itself a token
PASSWORD = "p@ss:w0rd@X9"
USER = "ci-bot-7f3k"
REMOTE_URL = f"https://{USER}:{PASSWORD}@git.example.invalid/org/deploy.git"
CLEAN_URL = "https://git.example.invalid/org/deploy.git"
SECRETS = (PASSWORD, "w0rd@X9", "ss:w0rd", USER)


def leaks(text: str) -> list[str]:
    return [s for s in SECRETS if s in text]


@pytest.mark.parametrize(("text", "expected"), [
    (f"fatal: unable to access '{REMOTE_URL}/': 403",
     "fatal: unable to access 'https://***@git.example.invalid/org/deploy.git/': 403"),
    ("https://u:p@ss@host/x@y", "https://***@host/x@y"),
    ("https://tok@gh.example/r and http://a:b@c:8080", "https://***@gh.example/r and http://***@c:8080"),
    ("https://u:p?#q@host/x", "https://***@host/x"),
    ("ssh://git@host/x.git", "ssh://***@host/x.git"),
    ("no url @ all; https://host/@scope/pkg", "no url @ all; https://host/@scope/pkg"),
])
def test_redact_removes_the_whole_userinfo(text: str, expected: str) -> None:
    assert redact(text) == expected


def test_strip_userinfo_keeps_only_what_is_no_secret() -> None:
    assert strip_userinfo(REMOTE_URL) == CLEAN_URL
    assert strip_userinfo("https://tok@gh.example/r.git") == "https://gh.example/r.git"
    assert strip_userinfo("ssh://git@gh.example/r.git") == "ssh://git@gh.example/r.git"
    assert strip_userinfo("ssh://git:pw@gh.example/r.git") == "ssh://git@gh.example/r.git"
    assert strip_userinfo("git@gh.example:o/r.git") == "git@gh.example:o/r.git"
    assert has_credentials(REMOTE_URL) and not has_credentials(CLEAN_URL)
    assert not has_credentials("ssh://git@gh.example/r.git")


def remote_with_credentials(tmp_path: Path) -> tuple[Path, Path]:
    """A clone whose origin URL carries credentials; pushes reach a real bare repo (pushInsteadOf)."""
    bare = bare_remote(tmp_path / "remote.git")
    repo = clone(bare, tmp_path / "deploy")
    git(repo, "remote", "set-url", "origin", REMOTE_URL)
    git(repo, "config", f"url.{bare.as_uri()}.pushInsteadOf", REMOTE_URL)
    return bare, repo


def everything_in(repo: Path) -> str:
    """Every commit's message and full tree (all refs)."""
    return git(repo, "log", "--all", "-p", "--format=%H%n%B") + git(repo, "grep", "-I", "-h", "", "HEAD",
                                                                        check=False)


@pytest.mark.parametrize("fmt", ["flux", "argocd", "arc", "configsync"])
def test_generated_objects_reference_a_secret_never_the_credentials(tmp_path: Path, fmt: str) -> None:
    bare, repo = remote_with_credentials(tmp_path)
    result = write_plan(make_bundle(tmp_path), make_plan(PLAN_A), repo, fmt=fmt, commit=True, push=True)
    assert result.pushed
    assert leaks(everything_in(bare)) == []
    cluster = repo / "clusters" / "edge-a"
    if fmt == "argocd":
        apps = list(yaml.safe_load_all((cluster / "argocd-application.yaml").read_text()))
        sets = list(yaml.safe_load_all((repo / "argocd/applicationset.yaml").read_text()))
        assert len(apps) > 1 and len(sets) == 2
        for app in [*apps, *(s["spec"]["template"] for s in sets)]:
            assert app["spec"]["source"]["repoURL"] == CLEAN_URL
            assert app["metadata"]["annotations"]["placement.berth.dev/repository-secret"] == "berth-git-credentials"
    if fmt == "configsync":
        git_spec = yaml.safe_load((cluster / "rootsync.yaml").read_text())["spec"]["git"]
        assert git_spec["repo"] == CLEAN_URL
        assert git_spec["auth"] == "token" and git_spec["secretRef"] == {"name": "berth-git-credentials"}
    if fmt == "arc":
        body = json.loads((cluster / "arc-flux-configuration.json").read_text())["properties"]["gitRepository"]
        assert body["url"] == CLEAN_URL and body["localAuthRef"] == "berth-git-credentials"
        assert "--local-auth-ref berth-git-credentials" in (cluster / "arc-flux-configuration.sh").read_text()


def test_secret_name_is_configurable_and_public_remotes_reference_none(tmp_path: Path) -> None:
    bare, repo = remote_with_credentials(tmp_path)
    write_plan(make_bundle(tmp_path), make_plan(PLAN_A), repo, fmt="configsync", credentials_secret="deploy-creds")
    spec = yaml.safe_load((repo / "clusters/edge-a/rootsync.yaml").read_text())["spec"]["git"]
    assert spec["secretRef"] == {"name": "deploy-creds"}
    public = clone(bare, tmp_path / "public")
    git(public, "remote", "set-url", "origin", CLEAN_URL)
    write_plan(make_bundle(tmp_path), make_plan(PLAN_A), public, fmt="configsync")
    spec = yaml.safe_load((public / "clusters/edge-a/rootsync.yaml").read_text())["spec"]["git"]
    assert spec["auth"] == "none" and "secretRef" not in spec
    ssh = clone(bare, tmp_path / "ssh")
    git(ssh, "remote", "set-url", "origin", "ssh://git@git.example.invalid/org/deploy.git")
    write_plan(make_bundle(tmp_path), make_plan(PLAN_A), ssh, fmt="configsync")
    spec = yaml.safe_load((ssh / "clusters/edge-a/rootsync.yaml").read_text())["spec"]["git"]
    assert spec == {**spec, "auth": "ssh", "secretRef": {"name": "berth-git-credentials"},
                    "repo": "ssh://git@git.example.invalid/org/deploy.git"}


def test_a_failing_push_to_a_credential_url_prints_no_credential(tmp_path: Path) -> None:
    bundle_file = write_bundle(tmp_path / "input")
    bare = bare_remote(tmp_path / "remote.git")
    repo = clone(bare, tmp_path / "deploy")
    port = free_port()  # nothing listens there
    git(repo, "remote", "set-url", "origin", f"http://{USER}:{PASSWORD}@127.0.0.1:{port}/deploy.git")
    proc = subprocess.run([BERTH, "place", str(bundle_file), "--gitops-repo", str(repo), "--commit", "--push"],
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 3, proc.stdout + proc.stderr
    assert "127.0.0.1" in proc.stderr and leaks(proc.stdout + proc.stderr) == []


@contextmanager
def berth_serve(config: Path, log: Path) -> Iterator[str]:
    """``berth serve`` as a user starts it (access log on), its output in ``log``."""
    port = free_port()
    with log.open("w") as out:
        proc = subprocess.Popen([BERTH, "serve", "--config", str(config), "--port", str(port)],
                                stdout=out, stderr=subprocess.STDOUT, env={**os.environ, "COLUMNS": "200"})
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                if httpx.get(url + "/healthz", timeout=2).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            assert proc.poll() is None and time.monotonic() < deadline, log.read_text()
            time.sleep(0.1)
        yield url
    finally:
        proc.send_signal(signal.SIGINT)
        proc.wait(timeout=30)


def test_tokens_only_in_the_authorization_header_and_never_logged(tmp_path: Path) -> None:
    config = write_service(tmp_path)
    log = tmp_path / "serve.log"
    with berth_serve(config, log) as url:
        for query in (f"token={RETAIL}", f"access_token={RETAIL}", f"t={RETAIL}", "api_key=x"):
            r = httpx.get(f"{url}/v1/placements?{query}", timeout=30)
            assert r.status_code == 401, r.text
            assert "Authorization header" in r.json()["detail"] and RETAIL not in r.text
            # even with a valid header, a token in the URL is refused
            r = httpx.get(f"{url}/v1/placements?{query}", headers=bearer(RETAIL), timeout=30)
            assert r.status_code == 401
        assert httpx.get(f"{url}/healthz?token={RETAIL}", timeout=30).status_code == 401
        r = httpx.post(f"{url}/v1/placements", json={"documents": [workload("web", "retail")], "dryRun": True},
                       headers=bearer(RETAIL), timeout=60)
        assert r.status_code == 200, r.text
        assert httpx.get(f"{url}/v1/placements?dryRun=1", headers=bearer(RETAIL), timeout=30).status_code == 200
    text = log.read_text()
    assert "GET /v1/placements?<query not logged>" in text and '"POST /v1/placements HTTP/1.1" 200' in text
    assert RETAIL not in text
