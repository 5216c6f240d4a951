"""Group commit: placements that arrive while a commit is in flight share the next one.

Real uvicorn, a real git clone whose pre-commit hook holds the first commit until the test
lets it go: the placements sent meanwhile are reserved (no overcommit) and committed
together, one commit per changed cluster, each answered only once its commit is in git and
the state file. A group whose commit fails leaves nothing reserved.
"""

from __future__ import annotations

import concurrent.futures as cf
import subprocess
import time
from pathlib import Path

import httpx
import yaml

from adapters.gitops import read_current
from tests.api_fixture import ADMIN, RETAIL, bearer, serve, workload, write_service


def _git(repo: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["git", "-C", str(repo), *args], capture_output=True, text=True)


def _service(tmp_path: Path) -> tuple[Path, Path]:
    repo = tmp_path / "deploy"
    subprocess.run(["git", "init", "-q", "-b", "main", str(repo)], check=True)
    _git(repo, "-c", "user.name=t", "-c", "user.email=t@t", "commit", "-q", "--allow-empty", "-m", "init")
    return repo, write_service(tmp_path, extra={"gitops": {"repo": str(repo), "format": "flux"},
                                                "limits": {"timeLimitSeconds": 5}})


def test_placements_sent_during_a_commit_are_committed_together(tmp_path: Path) -> None:
    repo, config = _service(tmp_path)
    inside, release = tmp_path / "inside", tmp_path / "release"
    hook = repo / ".git" / "hooks" / "pre-commit"
    # the first commit waits inside git until the test writes `release`; later ones go straight through
    hook.write_text(f"#!/bin/sh\n[ -f {release} ] && exit 0\ntouch {inside}\n"
                    f"for i in $(seq 600); do [ -f {release} ] && exit 0; sleep 0.1; done\n")
    hook.chmod(0o755)
    with serve(config) as url:
        acked: dict[str, bool] = {}

        def place(name: str) -> int:
            with httpx.Client(base_url=url, timeout=120) as c:
                r = c.post("/v1/placements", json={"documents": [workload(name, "retail", cpu="500m")]},
                           headers=bearer(RETAIL))
            if r.status_code == 201:  # answered: it must already be in git's HEAD
                acked[name] = _git(repo, "grep", "-q", "-F", name, "HEAD").returncode == 0
            return r.status_code

        with cf.ThreadPoolExecutor(12) as pool:
            first = pool.submit(place, "first")
            for _ in range(600):
                if inside.exists():
                    break
                time.sleep(0.1)
            assert inside.exists(), "the first commit never reached git"
            commits_before = int(_git(repo, "rev-list", "--count", "HEAD").stdout)
            rest = [pool.submit(place, f"grp-{i:02d}") for i in range(23)]
            time.sleep(3)  # they are reserved (solved) and wait for the commit in flight
            assert not any(f.done() for f in rest), "answered before its commit was made"
            release.write_text("go")
            statuses = [first.result(), *(f.result() for f in rest)]
        # 10 cores in the fleet, 500m each: 20 of the 24 fit, the last four are refused, never overcommitted
        assert statuses.count(201) == 20 and statuses.count(409) == 4, statuses
        assert all(acked.values()) and len(acked) == 20
        commits = int(_git(repo, "rev-list", "--count", "HEAD").stdout) - commits_before
        # the 19 placements that waited went into fewer commits than placements: one per changed cluster
        # and group, and the groups hold several placements each (how many depends on how fast they are
        # solved while the first commit waits)
        assert commits < 19, commits
        used: dict[str, int] = {}
        for spread in read_current(repo).values():
            for c, n in spread.items():
                used[c] = used.get(c, 0) + 500 * n
        assert all(used[c] <= {"eu-1": 4000, "eu-2": 3000, "us-1": 3000}[c] for c in used)  # no overcommit
        with httpx.Client(base_url=url, timeout=60) as c:
            metrics = {line.split()[0]: float(line.split()[-1]) for line in c.get("/metrics").text.splitlines()
                       if line.startswith("berth_commit_group_size_")}
            listed = c.get("/v1/placements", headers=bearer(ADMIN)).json()["items"]
        assert metrics["berth_commit_group_size_sum"] == 20 and len(listed) == 20
        assert metrics["berth_commit_group_size_count"] < 19  # 20 placements in fewer groups
    state = [d for d in yaml.safe_load_all((tmp_path / "state" / "accepted.yaml").read_text()) if d]
    assert len([d for d in state if d["kind"] == "Workload"]) == 20
    assert not [d for d in state if d["kind"] == "BerthPendingChange"]


def test_a_failed_group_reserves_nothing(tmp_path: Path) -> None:
    repo, config = _service(tmp_path)
    refuse = tmp_path / "refuse"
    hook = repo / ".git" / "hooks" / "pre-commit"
    hook.write_text(f"#!/bin/sh\n[ -f {refuse} ] && exit 1\nexit 0\n")
    hook.chmod(0o755)
    refuse.write_text("x")
    with serve(config) as url, httpx.Client(base_url=url, timeout=120) as client:
        big = workload("big", "retail", cpu="3500m")
        r = client.post("/v1/placements", json={"documents": [big]}, headers=bearer(RETAIL))
        assert r.status_code == 503, r.text
        assert client.get("/v1/placements/retail/big", headers=bearer(RETAIL)).status_code == 404
        refuse.unlink()
        # its capacity was not kept: only eu-1 (4 cores) holds 3.5, and it still can, once
        r = client.post("/v1/placements", json={"documents": [big]}, headers=bearer(RETAIL))
        assert r.status_code == 201, r.text
        r = client.post("/v1/placements", json={"documents": [workload("big2", "retail", cpu="3500m")]},
                        headers=bearer(RETAIL))
        assert r.status_code == 409, r.text
    assert read_current(repo) == {"retail/big": {"eu-1": 1}}
