"""Crash injection: ``berth serve`` is killed (SIGKILL, its whole process group) while it accepts
placements, at random moments and from inside git (hooks kill it in the middle of a commit, and
after the remote received a push but before the service answered), restarted each time.

Afterwards: every acknowledged placement is in git (the clone and the remote) and in the state
with the spread it was acknowledged with, git and the state agree, the clone is clean, the state
file is whole, and the committed placement verifies (no overcommit).
"""

from __future__ import annotations

import random
import subprocess
import threading
import time
from pathlib import Path
from typing import Any

import httpx
import yaml

from tests.api_fixture import ADMIN, FLEET, PAYMENTS, RETAIL, bearer, workload, write_service
from tests.serve_process import ServerProcess

ROUNDS = 12
KILL_HOOK = """#!/bin/sh
# kill the server's whole process group when the countdown reaches 0 (set by the test)
f="$BERTH_TEST_KILL_DIR/countdown"
[ -f "$f" ] || exit 0
n=$(($(cat "$f") - 1))
echo "$n" > "$f"
if [ "$n" -eq 0 ]; then
  echo "{hook}" > "$BERTH_TEST_KILL_DIR/killed-by"
  kill -9 -"$(cat "$BERTH_TEST_KILL_DIR/pgid")"
  sleep 5
fi
exit 0
"""


def _git(repo: Path, *args: str) -> str:
    return subprocess.run(["git", "-C", str(repo), *args], check=True, capture_output=True, text=True).stdout


def _setup(tmp_path: Path) -> tuple[Path, Path, Path, Path]:
    """A bare remote and the service's clone; kill hooks at commits and after a push is received."""
    remote, repo = tmp_path / "remote.git", tmp_path / "deploy"
    subprocess.run(["git", "init", "-q", "--bare", "-b", "main", str(remote)], check=True)
    subprocess.run(["git", "clone", "-q", str(remote), str(repo)], check=True, capture_output=True)
    _git(repo, "-c", "user.name=t", "-c", "user.email=t@t", "commit", "-q", "--allow-empty", "-m", "init")
    _git(repo, "push", "-q", "origin", "main")
    for folder, hook in ((repo / ".git", "pre-commit"), (repo / ".git", "post-commit"), (remote, "post-receive")):
        path = folder / "hooks" / hook
        path.write_text(KILL_HOOK.replace("{hook}", hook))
        path.chmod(0o755)
    kill_dir = tmp_path / "kill"
    kill_dir.mkdir()
    config = write_service(tmp_path, extra={"gitops": {"repo": str(repo), "format": "flux", "push": True},
                                            "limits": {"timeLimitSeconds": 5}})
    return remote, repo, kill_dir, config


def _load(server: ServerProcess, round_no: int, acked: dict[str, dict[str, int]], stop: threading.Event,
          unexpected: list[str]) -> None:
    """Four clients placing unique small workloads until the server dies; 2xx answers are acked."""
    lock = threading.Lock()

    def client(c: int) -> None:
        token, ns = (RETAIL, "retail") if c % 2 else (PAYMENTS, "payments")
        with httpx.Client(base_url=server.url, timeout=30) as http:
            for i in range(1000):
                if stop.is_set():
                    return
                name = f"r{round_no}-c{c}-{i}"
                try:
                    r = http.post("/v1/placements", json={"documents": [workload(name, ns, cpu="250m")]},
                                  headers=bearer(token))
                except httpx.HTTPError:
                    return  # the server died with this request in flight: outcome unknown
                if r.status_code == 201:
                    with lock:
                        acked[f"{ns}/{name}"] = r.json()["plan"]["placements"][0]["clusters"]
                elif r.status_code not in (409, 503):
                    unexpected.append(f"{r.status_code} {r.text[:300]}")

    threads = [threading.Thread(target=client, args=(c,)) for c in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=120)


def _committed(server: ServerProcess) -> dict[str, dict[str, int]]:
    r = httpx.get(server.url + "/v1/placements", headers=bearer(ADMIN), timeout=30)
    assert r.status_code == 200, r.text
    return {p["workload"]: p["clusters"] for p in r.json()["items"]}


def _check(repo: Path, state_file: Path, committed: dict[str, dict[str, int]],
           acked: dict[str, dict[str, int]]) -> None:
    from adapters.gitops import read_current

    lost = {k: v for k, v in acked.items() if committed.get(k) != v}
    assert not lost, f"acknowledged placements lost or changed: {lost}"
    assert read_current(repo) == committed, "git and the service disagree"
    docs = [d for d in yaml.safe_load_all(state_file.read_text()) if d]
    defined = {f"{d['metadata']['namespace']}/{d['metadata']['name']}" for d in docs if d.get("kind") == "Workload"}
    assert defined == set(committed), "the state file and git disagree"
    assert not any(d.get("kind") == "BerthPendingChange" for d in docs), "a change was left pending"


def test_kill_9_at_random_points_loses_nothing(tmp_path: Path) -> None:
    remote, repo, kill_dir, config = _setup(tmp_path)
    state_file = tmp_path / "state" / "accepted.yaml"
    rng = random.Random(20261201)
    acked: dict[str, dict[str, int]] = {}
    kills: list[str] = []
    unexpected: list[str] = []
    for round_no in range(ROUNDS):
        server = ServerProcess(config, tmp_path / "serve.log", env={"BERTH_TEST_KILL_DIR": str(kill_dir)})
        (kill_dir / "countdown").unlink(missing_ok=True)
        (kill_dir / "killed-by").unlink(missing_ok=True)
        try:  # the server is killed even when a check fails: no orphan outlives the test
            server.start()
            if round_no:
                _check(repo, state_file, _committed(server), acked)
            (kill_dir / "pgid").write_text(str(server.pgid))
            stop = threading.Event()
            if round_no % 2 == 0:  # from inside git: the n-th commit hook kills the server
                (kill_dir / "countdown").write_text(str(rng.randint(1, 9)))
                timer = None
            else:  # from outside, at a random moment
                timer = threading.Timer(rng.uniform(0.2, 3.0), server.kill)
                timer.start()
            loader = threading.Thread(target=_load, args=(server, round_no, acked, stop, unexpected))
            loader.start()
            deadline = time.monotonic() + 60
            while server.alive() and time.monotonic() < deadline:
                time.sleep(0.05)
            stop.set()
            if server.alive():  # the countdown outlived the load: kill now
                server.kill()
            server.kill()
            loader.join(timeout=120)
            if timer is not None:
                timer.cancel()
        finally:
            server.kill()
        by = kill_dir / "killed-by"
        kills.append(by.read_text().strip() if by.exists() else "timer")
    assert {"pre-commit", "post-commit", "post-receive"} & set(kills), kills  # some came from inside git
    assert not unexpected, unexpected  # only 201, 409 (no room) or 503 (git/state failed, nothing kept)

    server = ServerProcess(config, tmp_path / "serve.log").start()
    try:
        committed = _committed(server)
        _check(repo, state_file, committed, acked)
        assert httpx.get(server.url + "/readyz", timeout=10).json()["orphans"] == 0
    finally:
        server.stop()
    assert len(acked) >= 3, f"the load placed too little to test anything: {len(acked)}"
    print(f"{ROUNDS} kills ({', '.join(kills)}), {len(acked)} acknowledged, {len(committed)} committed")
    # what the clusters apply (the remote) is what the service says
    fresh = tmp_path / "fresh"
    subprocess.run(["git", "clone", "-q", str(remote), str(fresh)], check=True, capture_output=True)
    from adapters.gitops import read_current

    assert read_current(fresh) == committed, "the remote and the service disagree"
    # the clone is clean: no lock, no marker, nothing uncommitted
    assert _git(repo, "status", "--porcelain") == ""
    assert not (repo / ".git" / "index.lock").exists()
    assert not (repo / ".git" / "berth-write-in-progress").exists()
    assert not list(state_file.parent.glob(".accepted.yaml.*")), "a half-written state file was left"
    # no overcommit: the committed placement verifies against the fleet (spec section 2)
    _verify(tmp_path, committed)


def _verify(tmp_path: Path, committed: dict[str, dict[str, int]]) -> None:
    from engine.documents.load import load_documents
    from engine.plan import ObjectiveValues, Placement, Plan, PlanMetadata, PlanStatus
    from engine.verification import verify

    docs: list[dict[str, Any]] = [*FLEET]
    docs += [d for d in yaml.safe_load_all((tmp_path / "state" / "accepted.yaml").read_text()) if d]
    bundle = load_documents(docs)
    plan = Plan(metadata=PlanMetadata(input_digest=bundle.digest(), created_at="2026-12-01T00:00:00Z"),
                status=PlanStatus(solver="Feasible", solve_seconds=0.0, objective=ObjectiveValues()),
                placements=[Placement(workload=k, clusters=v) for k, v in sorted(committed.items())])
    assert verify(bundle, plan) == []
