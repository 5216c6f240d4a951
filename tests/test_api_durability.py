"""Accepting a placement is one atomic step: write-ahead record, git, done, then 2xx.

Real uvicorn on 127.0.0.1 and a real git clone. Faults are real: the state folder is replaced by
a file (writes fail with ENOTDIR, also for root), and a git hook does it in the middle of a commit.
"""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import httpx
import yaml

from tests.api_fixture import ADMIN, PAYMENTS, RETAIL, bearer, serve, workload, write_service


def _git(repo: Path, *args: str) -> str:
    return subprocess.run(["git", "-C", str(repo), *args], check=True, capture_output=True, text=True).stdout.strip()


def _service(tmp_path: Path) -> tuple[Path, Path]:
    repo = tmp_path / "deploy"
    subprocess.run(["git", "init", "-q", "-b", "main", str(repo)], check=True)
    _git(repo, "-c", "user.name=t", "-c", "user.email=t@t", "commit", "-q", "--allow-empty", "-m", "init")
    return repo, write_service(tmp_path, extra={"gitops": {"repo": str(repo), "format": "flux"}})


def _break(folder: Path) -> None:
    """Make every write below ``folder`` fail: move it aside and put a file in its place."""
    folder.rename(folder.with_name(folder.name + ".aside"))
    folder.write_text("not a folder\n")


def _mend(folder: Path) -> None:
    folder.unlink()
    folder.with_name(folder.name + ".aside").rename(folder)


def test_unwritable_state_file_fails_before_git(tmp_path: Path) -> None:
    repo, config = _service(tmp_path)
    state = tmp_path / "state"
    with serve(config) as url, httpx.Client(base_url=url, timeout=60) as client:
        ok = client.post("/v1/placements", json={"documents": [workload("web", "retail")]}, headers=bearer(RETAIL))
        assert ok.status_code == 201, ok.text
        head = _git(repo, "rev-parse", "HEAD")
        _break(state)
        r = client.post("/v1/placements", json={"documents": [workload("api", "retail")]}, headers=bearer(RETAIL))
        assert r.status_code == 503, r.text
        body = r.json()
        assert r.headers["content-type"].startswith("application/problem+json")
        assert "state file" in body["detail"] and "nothing was committed" in body["detail"]
        assert _git(repo, "rev-parse", "HEAD") == head and _git(repo, "status", "--porcelain") == ""
        assert client.get("/v1/placements/retail/api", headers=bearer(RETAIL)).status_code == 404
        # a delete is refused the same way, and the placement stays
        assert client.delete("/v1/placements/retail/web", headers=bearer(RETAIL)).status_code == 503
        assert _git(repo, "rev-parse", "HEAD") == head
        _mend(state)
        again = client.post("/v1/placements", json={"documents": [workload("api", "retail")]},
                            headers=bearer(RETAIL))
        assert again.status_code == 201, again.text
    from adapters.gitops import read_current

    assert set(read_current(repo)) == {"retail/web", "retail/api"}


def test_failure_after_git_is_acknowledged_and_kept(tmp_path: Path) -> None:
    """The state file breaks *during* the commit (a git hook): git has the placement, so the client
    gets 201, and neither a restart nor the next request removes it from git."""
    repo, config = _service(tmp_path)
    state = tmp_path / "state"
    hook = repo / ".git" / "hooks" / "post-commit"
    hook.write_text(f"#!/bin/sh\nif [ -d {state} ]; then mv {state} {state}.aside && echo x > {state}; fi\n")
    hook.chmod(0o755)
    with serve(config) as url, httpx.Client(base_url=url, timeout=60) as client:
        r = client.post("/v1/placements", json={"documents": [workload("web", "retail", replicas=2)]},
                        headers=bearer(RETAIL))
        assert r.status_code == 201, r.text
        spread = r.json()["plan"]["placements"][0]["clusters"]
    hook.unlink()
    _mend(state)
    text = (state / "accepted.yaml").read_text()
    assert "BerthPendingChange" in text  # the write-ahead record: marking it done failed
    with serve(config) as url, httpx.Client(base_url=url, timeout=60) as client:
        got = client.get("/v1/placements/retail/web", headers=bearer(ADMIN))
        assert got.status_code == 200 and got.json()["clusters"] == spread
        assert client.get("/readyz").json()["orphans"] == 0
        more = client.post("/v1/placements", json={"documents": [workload("api", "retail")]},
                           headers=bearer(RETAIL))
        assert more.status_code == 201, more.text
    from adapters.gitops import read_current

    assert read_current(repo)["retail/web"] == spread
    assert "BerthPendingChange" not in (state / "accepted.yaml").read_text()


def test_git_failure_rolls_back_the_record(tmp_path: Path) -> None:
    """git refuses the commit (a failing hook): 503, no definition kept, nothing pending, clone clean."""
    repo, config = _service(tmp_path)
    hook = repo / ".git" / "hooks" / "pre-commit"
    hook.write_text("#!/bin/sh\necho refused by policy >&2\nexit 1\n")
    hook.chmod(0o755)
    head = _git(repo, "rev-parse", "HEAD")
    with serve(config) as url, httpx.Client(base_url=url, timeout=60) as client:
        r = client.post("/v1/placements", json={"documents": [workload("web", "retail")]}, headers=bearer(RETAIL))
        assert r.status_code == 503, r.text
        assert client.get("/v1/placements/retail/web", headers=bearer(RETAIL)).status_code == 404
    assert _git(repo, "rev-parse", "HEAD") == head and _git(repo, "status", "--porcelain") == ""
    state_file = tmp_path / "state" / "accepted.yaml"
    assert not state_file.exists() or [d for d in yaml.safe_load_all(state_file.read_text()) if d] == []


def test_start_replays_or_rolls_back_a_pending_change(tmp_path: Path) -> None:
    """A write-ahead record left by a crash: replayed when git has the change, rolled back when not."""
    repo, config = _service(tmp_path)
    state_file = tmp_path / "state" / "accepted.yaml"
    with serve(config) as url, httpx.Client(base_url=url, timeout=60) as client:
        assert client.post("/v1/placements", json={"documents": [workload("web", "retail")]},
                           headers=bearer(RETAIL)).status_code == 201
    web = next(d for d in yaml.safe_load_all(state_file.read_text()) if d)
    ghost = workload("ghost", "retail")
    from adapters.gitops import read_current

    placed = read_current(repo)["retail/web"]
    pending = [
        {"kind": "BerthPendingChange", "id": "a", "op": "place", "before": {"retail/web": None},
         "after": {"retail/web": placed}, "added": [["Workload", "retail/web"]], "removed": []},
    ]
    # 1. git has it: replayed
    state_file.write_text(yaml.safe_dump_all([web, *pending]))
    with serve(config) as url, httpx.Client(base_url=url, timeout=60) as client:
        assert client.get("/v1/placements/retail/web", headers=bearer(ADMIN)).status_code == 200
        assert "replayed place retail/web" in client.get("/readyz").json()["recovered"]
    assert "BerthPendingChange" not in state_file.read_text()
    # 2. git does not have it (the crash came before the commit): rolled back, no orphan, no ghost
    pending[0] |= {"before": {"retail/ghost": None}, "after": {"retail/ghost": {"eu-1": 1}},
                   "added": [["Workload", "retail/ghost"]]}
    state_file.write_text(yaml.safe_dump_all([web, ghost, *pending]))
    with serve(config) as url, httpx.Client(base_url=url, timeout=60) as client:
        assert client.get("/v1/placements/retail/ghost", headers=bearer(ADMIN)).status_code == 404
        assert "rolled back place retail/ghost" in client.get("/readyz").json()["recovered"]
        assert client.get("/v1/placements/retail/web", headers=bearer(ADMIN)).status_code == 200
    text = state_file.read_text()
    assert "ghost" not in text and "BerthPendingChange" not in text
    shutil.rmtree(tmp_path / "state.aside", ignore_errors=True)


def test_dry_runs_and_reads_do_not_wait_for_a_commit(tmp_path: Path) -> None:
    """A commit is held inside git (a hook waits for the test); meanwhile a dry run of another tenant,
    a GET and /v1/fleet answer. Placements that reserve still wait: they are serialised."""
    import threading

    repo, config = _service(tmp_path)
    inside, release = tmp_path / "inside", tmp_path / "release"
    hook = repo / ".git" / "hooks" / "pre-commit"
    hook.write_text(f"#!/bin/sh\ntouch {inside}\nfor i in $(seq 600); do [ -f {release} ] && exit 0; sleep 0.1; done\n")
    hook.chmod(0o755)
    with serve(config) as url, httpx.Client(base_url=url, timeout=120) as client:
        results: dict[str, int] = {}

        def commit() -> None:
            r = client.post("/v1/placements", json={"documents": [workload("web", "retail")]},
                            headers=bearer(RETAIL))
            results["commit"] = r.status_code

        worker = threading.Thread(target=commit)
        worker.start()
        for _ in range(600):
            if inside.exists():
                break
            worker.join(timeout=0.1)
        assert inside.exists(), "the commit never reached git"
        try:
            with httpx.Client(base_url=url, timeout=20) as other:
                dry = other.post("/v1/placements", json={"documents": [workload("api", "payments")], "dryRun": True},
                                 headers=bearer(PAYMENTS))
                assert dry.status_code == 200, dry.text
                assert other.get("/v1/placements", headers=bearer(ADMIN)).json()["items"] == []  # not acknowledged yet
                assert other.get("/v1/fleet", headers=bearer(ADMIN)).status_code == 200
            assert "commit" not in results
        finally:
            release.write_text("go")
            worker.join(timeout=120)
        assert results["commit"] == 201
        listed = client.get("/v1/placements", headers=bearer(ADMIN)).json()["items"]
        assert [p["workload"] for p in listed] == ["retail/web"]


def test_an_orphan_is_never_removed_silently(tmp_path: Path) -> None:
    """The state file is lost: git's workload has no definition. It is reported and kept; a change to
    its cluster is refused (409) instead of rewriting the folder without it."""
    repo, config = _service(tmp_path)
    with serve(config) as url, httpx.Client(base_url=url, timeout=60) as client:
        assert client.post("/v1/placements", json={"documents": [workload("web", "retail", replicas=2)]},
                           headers=bearer(RETAIL)).status_code == 201
    (tmp_path / "state" / "accepted.yaml").unlink()
    from adapters.gitops import read_current

    before = read_current(repo)
    head = _git(repo, "rev-parse", "HEAD")
    with serve(config) as url, httpx.Client(base_url=url, timeout=60) as client:
        assert client.get("/readyz").json()["orphans"] == 1
        r = client.post("/v1/placements", json={"documents": [workload("api", "retail")]}, headers=bearer(RETAIL))
        if r.status_code == 409:
            assert "orphan" in r.json()["detail"]
            assert _git(repo, "rev-parse", "HEAD") == head
        else:  # placed on a cluster the orphan does not use
            assert r.status_code == 201, r.text
            assert not set(r.json()["plan"]["placements"][0]["clusters"]) & set(before["retail/web"])
    assert read_current(repo)["retail/web"] == before["retail/web"]
