"""What the service has committed binds every answer: useFleet plans, and Infeasible never served.

Real uvicorn on 127.0.0.1, a real git repository as the GitOps clone.
"""

from __future__ import annotations

import subprocess
from pathlib import Path

import httpx
import yaml

from tests.api_fixture import ADMIN, FLEET, PAYMENTS, RETAIL, bearer, cluster, serve, workload, write_service


def _git(repo: Path, *args: str) -> str:
    return subprocess.run(["git", "-C", str(repo), *args], check=True, capture_output=True, text=True).stdout.strip()


def _repo(tmp_path: Path) -> Path:
    repo = tmp_path / "deploy"
    subprocess.run(["git", "init", "-q", "-b", "main", str(repo)], check=True)
    _git(repo, "-c", "user.name=t", "-c", "user.email=t@t", "commit", "-q", "--allow-empty", "-m", "init")
    return repo


def test_use_fleet_plan_starts_from_committed(tmp_path: Path) -> None:
    """The fleet has 10 cores; 10 are committed: a useFleet plan cannot use them again."""
    with serve(write_service(tmp_path)) as url, httpx.Client(base_url=url, timeout=60) as client:
        fill = workload("fill", "retail", replicas=10, cpu="1")
        assert client.post("/v1/placements", json={"documents": [fill]}, headers=bearer(RETAIL)).status_code == 201
        r = client.post("/v1/plans", json={"documents": [workload("web", "retail")], "useFleet": True},
                        headers=bearer(RETAIL))
        assert r.status_code == 200, r.text
        plan = r.json()
        assert plan["placements"] == []
        assert [u["workload"] for u in plan["unplaced"]] == ["retail/web"]
        assert plan["unplaced"][0]["reasons"][0]["code"] == "InsufficientCapacity"
        # another tenant's plan does not see the committed workload's name
        other = client.post("/v1/plans", json={"documents": [workload("api", "payments")], "useFleet": True},
                            headers=bearer(PAYMENTS))
        assert other.status_code == 200 and "fill" not in other.text
        # a committed name is a conflict, as for a placement
        again = client.post("/v1/plans", json={"documents": [fill], "useFleet": True}, headers=bearer(RETAIL))
        assert again.status_code == 409, again.text
        # without the fleet, the same bundle plans freely (nothing is reserved there)
        free = client.post("/v1/plans", json={"documents": [*FLEET, workload("web", "retail")]},
                           headers=bearer(ADMIN))
        assert free.status_code == 200 and free.json()["placements"][0]["workload"] == "retail/web"


def test_infeasible_is_never_served_or_committed(tmp_path: Path) -> None:
    """eu-1 shrinks below what is committed on it: no plan exists; 409 `infeasible`, nothing written."""
    repo = _repo(tmp_path)
    config = write_service(tmp_path, extra={"gitops": {"repo": str(repo), "format": "flux"}})
    with serve(config) as url, httpx.Client(base_url=url, timeout=60) as client:
        fill = workload("fill", "retail", replicas=10, cpu="1")
        assert client.post("/v1/placements", json={"documents": [fill]}, headers=bearer(RETAIL)).status_code == 201
    shrunk = [cluster("eu-1", "eu", "1", labels={"tier": "edge"}), *FLEET[1:]]
    (tmp_path / "bundle" / "fleet.yaml").write_text(yaml.safe_dump_all(shrunk), encoding="utf-8")
    head = _git(repo, "rev-parse", "HEAD")
    state = (tmp_path / "state" / "accepted.yaml").read_text()
    with serve(config) as url, httpx.Client(base_url=url, timeout=60) as client:
        for dry in (True, False):
            r = client.post("/v1/placements", json={"documents": [workload("web", "retail", cpu="100m")],
                                                    "dryRun": dry}, headers=bearer(RETAIL))
            assert r.status_code == 409, r.text
            body = r.json()
            assert r.headers["content-type"].startswith("application/problem+json")
            assert body["type"].endswith("/infeasible") and body["solver"] == "Infeasible"
            assert "plan" not in body and "reoptimize" in body["detail"]
        # a whole-bundle plan whose current does not fit within maxMoves 0: no plan either
        docs = [*shrunk, workload("big", "retail", replicas=4, cpu="1")]
        r = client.post("/v1/plans", json={"documents": docs, "current": {"retail/big": {"eu-1": 4}},
                                           "maxMoves": 0}, headers=bearer(ADMIN))
        assert r.status_code == 409, r.text
        assert r.json()["type"].endswith("/infeasible") and "placements" not in r.json()
        assert client.get("/v1/placements/retail/fill", headers=bearer(RETAIL)).json()["replicas"] == 10
    assert _git(repo, "rev-parse", "HEAD") == head
    assert _git(repo, "status", "--porcelain") == ""
    assert (tmp_path / "state" / "accepted.yaml").read_text() == state
