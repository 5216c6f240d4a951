"""The service over real HTTP (uvicorn on 127.0.0.1, httpx): every endpoint and error class."""

from __future__ import annotations

import concurrent.futures as cf
import subprocess
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml

from engine.quantity import parse_quantity
from tests.api_fixture import ADMIN, API, FLEET, PAYMENTS, RETAIL, bearer, cluster, serve, workload, write_service


@pytest.fixture()
def service(tmp_path: Path):
    with serve(write_service(tmp_path)) as url, httpx.Client(base_url=url, timeout=60) as client:
        yield client


def _problem(r: httpx.Response, status: int) -> dict[str, Any]:
    assert r.status_code == status, r.text
    assert r.headers["content-type"].startswith("application/problem+json")
    body = r.json()
    assert {"type", "title", "status", "detail", "field"} <= body.keys()
    assert body["status"] == status
    return body


def test_health_ready_metrics_docs(service: httpx.Client) -> None:
    assert service.get("/healthz").json() == {"status": "ok"}
    ready = service.get("/readyz").json()
    assert ready["status"] == "ready" and ready["fleet"]["source"] == "file"
    assert "berth_fleet_stale" in service.get("/metrics").text
    assert service.get("/docs").status_code == 200
    paths = service.get("/openapi.json").json()["paths"]
    for path in ("/v1/placements", "/v1/placements/{namespace}/{name}", "/v1/plans", "/v1/fleet", "/v1/whatif"):
        assert path in paths


def test_place_get_list_delete(service: httpx.Client, tmp_path: Path) -> None:
    r = service.post("/v1/placements", json={"documents": [workload("web", "retail", replicas=2)]},
                     headers=bearer(RETAIL))
    assert r.status_code == 201, r.text
    body = r.json()
    assert body["accepted"] and body["plan"]["kind"] == "PlacementPlan"
    assert sum(body["plan"]["placements"][0]["clusters"].values()) == 2
    got = service.get("/v1/placements/retail/web", headers=bearer(RETAIL)).json()
    assert got["replicas"] == 2 and got["spec"]["resources"]["cpu"] == "1"
    listed = service.get("/v1/placements", headers=bearer(RETAIL)).json()["items"]
    assert [p["workload"] for p in listed] == ["retail/web"]
    assert service.get("/v1/placements", headers=bearer(PAYMENTS)).json()["items"] == []
    fleet = service.get("/v1/fleet", headers=bearer(RETAIL)).json()
    assert fleet["committedWorkloads"] == 1
    assert sum(parse_quantity("cpu", c["reserved"].get("cpu", "0")) for c in fleet["clusters"]) == 2000
    assert "name: web" in (tmp_path / "state" / "accepted.yaml").read_text()
    # placing it again is a conflict; a dry run reserves nothing
    _problem(service.post("/v1/placements", json={"documents": [workload("web", "retail")]},
                          headers=bearer(RETAIL)), 409)
    dry = service.post("/v1/placements", json={"documents": [workload("api", "retail")], "dryRun": True},
                       headers=bearer(RETAIL))
    assert dry.status_code == 200 and dry.json()["dryRun"]
    _problem(service.get("/v1/placements/retail/api", headers=bearer(RETAIL)), 404)
    assert service.delete("/v1/placements/retail/web", headers=bearer(RETAIL)).status_code == 200
    _problem(service.get("/v1/placements/retail/web", headers=bearer(RETAIL)), 404)
    _problem(service.delete("/v1/placements/retail/web", headers=bearer(RETAIL)), 404)


def test_error_classes(service: httpx.Client) -> None:
    _problem(service.get("/v1/fleet"), 401)
    _problem(service.get("/v1/fleet", headers=bearer("wrong")), 401)
    body = _problem(service.post("/v1/placements", json={"documents": [{"kind": "Workload"}]},
                                 headers=bearer(RETAIL)), 422)
    assert body["field"].startswith("documents[0]")
    bad = workload("web", "retail")
    bad["spec"]["replicas"] = 0
    assert _problem(service.post("/v1/placements", json={"documents": [bad]}, headers=bearer(RETAIL)),
                    422)["field"] == "documents[0].spec.replicas"
    _problem(service.post("/v1/placements", json={"documents": [cluster("x", "eu", "1")]},
                          headers=bearer(ADMIN)), 422)
    _problem(service.post("/v1/placements", json={"documents": []}, headers=bearer(RETAIL)), 422)
    _problem(service.post("/v1/placements", content=b"{not json", headers={**bearer(RETAIL),
                          "content-type": "application/json"}), 422)
    missing_policy = workload("web", "retail", policy="nope")
    assert _problem(service.post("/v1/placements", json={"documents": [missing_policy]}, headers=bearer(RETAIL)),
                    422)["field"] == "spec.policy"
    many = [workload(f"w{i}", "retail") for i in range(6)]
    _problem(service.post("/v1/placements", json={"documents": many}, headers=bearer(RETAIL)), 422)
    huge = {"documents": [workload("w", "retail")], "pad": "x" * 70000}
    _problem(service.post("/v1/placements", json=huge, headers=bearer(RETAIL)), 413)
    too_big = workload("big", "retail", cpu="64")
    body = _problem(service.post("/v1/placements", json={"documents": [too_big]}, headers=bearer(RETAIL)), 409)
    assert body["unplaced"][0]["reasons"][0]["code"] == "InsufficientCapacity"
    _problem(service.post("/v1/whatif", json={"scenarios": [{"kind": "Scenario"}]}, headers=bearer(RETAIL)), 403)
    _problem(service.get("/v1/nothing", headers=bearer(ADMIN)), 404)
    _problem(service.put("/v1/fleet", headers=bearer(ADMIN)), 405)


def test_tenant_isolation(service: httpx.Client) -> None:
    secret = workload("card-vault", "payments", replicas=1)
    assert service.post("/v1/placements", json={"documents": [secret]}, headers=bearer(PAYMENTS)).status_code == 201
    # retail cannot read, delete or place into payments; answers do not say whether it exists
    for r in (service.get("/v1/placements/payments/card-vault", headers=bearer(RETAIL)),
              service.delete("/v1/placements/payments/card-vault", headers=bearer(RETAIL))):
        body = _problem(r, 404)
        assert body == _problem(service.get("/v1/placements/payments/ghost", headers=bearer(RETAIL)), 404) | {
            "detail": body["detail"], "errors": body["errors"]}
        assert body["errors"] == [{"field": None, "detail": body["detail"]}]
    _problem(service.post("/v1/placements", json={"documents": [workload("x", "payments")]},
                          headers=bearer(RETAIL)), 403)
    listing = service.get("/v1/placements", headers=bearer(RETAIL)).text
    fleet = service.get("/v1/fleet", headers=bearer(RETAIL)).text
    assert "card-vault" not in listing and "card-vault" not in fleet
    # a higher-priority payments workload fills the edge; retail's refusal must not name it
    hog = workload("hog", "payments", cpu="3", priority=100)
    assert service.post("/v1/placements", json={"documents": [hog]}, headers=bearer(PAYMENTS)).status_code == 201
    r = service.post("/v1/placements", json={"documents": [workload("big", "retail", cpu="5")]},
                     headers=bearer(RETAIL))
    assert "payments/" not in r.text
    # the admin sees everything
    assert len(service.get("/v1/placements", headers=bearer(ADMIN)).json()["items"]) == 2
    # tenant quota (4 cpu for payments) holds across requests
    more = workload("more", "payments", cpu="1")
    body = _problem(service.post("/v1/placements", json={"documents": [more]}, headers=bearer(PAYMENTS)), 409)
    assert body["unplaced"][0]["reasons"][0]["code"] == "QuotaExceeded"


def test_plans_and_whatif(service: httpx.Client) -> None:
    docs = [*FLEET, workload("web", "default", replicas=3)]
    plan = service.post("/v1/plans", json={"documents": docs}, headers=bearer(ADMIN))
    assert plan.status_code == 200, plan.text
    assert plan.json()["status"]["solver"] == "Optimal"
    with_fleet = service.post("/v1/plans", json={"documents": [workload("web", "retail")], "useFleet": True},
                              headers=bearer(RETAIL))
    assert with_fleet.status_code == 200 and with_fleet.json()["placements"][0]["workload"] == "retail/web"
    _problem(service.post("/v1/plans", json={"documents": [workload("web", "payments")], "useFleet": True},
                          headers=bearer(RETAIL)), 403)
    _problem(service.post("/v1/plans", json={"documents": [FLEET[0]], "useFleet": True},
                          headers=bearer(ADMIN)), 422)
    assert service.post("/v1/placements", json={"documents": [workload("web", "retail", replicas=3)]},
                        headers=bearer(RETAIL)).status_code == 201
    scenario = {"apiVersion": API, "kind": "Scenario", "metadata": {"name": "lose-eu"},
                "spec": {"edits": [{"removeClusters": {"regions": ["eu"]}}]}}
    r = service.post("/v1/whatif", json={"scenarios": [scenario]}, headers=bearer(ADMIN))
    assert r.status_code == 200, r.text
    result = r.json()["scenarios"][0]
    assert result["summary"]["clusters"] == 1 and result["delta"]["movedReplicas"] >= 0
    bad = {**scenario, "spec": {"edits": [{"removeClusters": {"regions": ["mars"]}}]}}
    assert "error" in service.post("/v1/whatif", json={"scenarios": [bad]}, headers=bearer(ADMIN)).json()[
        "scenarios"][0]


def test_no_overcommit_under_concurrency(service: httpx.Client) -> None:
    """200 parallel placements into 10 cores: accepted never exceed any cluster's capacity."""
    capacity = {c["metadata"]["name"]: parse_quantity("cpu", c["spec"]["capacity"]["cpu"])
                for c in FLEET if c["kind"] == "Cluster"}

    def one(i: int) -> httpx.Response:
        token, ns = (RETAIL, "retail") if i % 2 else (PAYMENTS, "payments")
        return service.post("/v1/placements", json={"documents": [workload(f"w{i}", ns, cpu="500m")]},
                            headers=bearer(token))

    with cf.ThreadPoolExecutor(max_workers=32) as pool:
        responses = list(pool.map(one, range(200)))
    accepted = [r.json() for r in responses if r.status_code == 201]
    assert all(r.status_code in (201, 409) for r in responses), {r.status_code for r in responses}
    used: dict[str, int] = {}
    for body in accepted:
        for cluster_name, n in body["plan"]["placements"][0]["clusters"].items():
            used[cluster_name] = used.get(cluster_name, 0) + 500 * n
    assert all(used[c] <= capacity[c] for c in used)
    assert len(accepted) == 20  # 10 cores / 500m: payments' 4-core quota and edge-only selector still fit
    listed = service.get("/v1/placements", headers=bearer(ADMIN)).json()["items"]
    assert len(listed) == len(accepted)


def test_commits_through_gitops(tmp_path: Path) -> None:
    repo = tmp_path / "deploy"
    subprocess.run(["git", "init", "-q", "-b", "main", str(repo)], check=True)
    subprocess.run(["git", "-C", str(repo), "commit", "-q", "--allow-empty", "-m", "init"], check=True,
                   env={"GIT_AUTHOR_NAME": "t", "GIT_AUTHOR_EMAIL": "t@t", "GIT_COMMITTER_NAME": "t",
                        "GIT_COMMITTER_EMAIL": "t@t", "HOME": str(tmp_path), "PATH": "/usr/bin:/bin"})
    config = write_service(tmp_path, extra={"gitops": {"repo": str(repo), "format": "flux"}})
    with serve(config) as url, httpx.Client(base_url=url, timeout=60) as client:
        r = client.post("/v1/placements", json={"documents": [workload("web", "retail", replicas=2)]},
                        headers=bearer(RETAIL))
        assert r.status_code == 201, r.text
        assert r.json()["gitops"]["commits"]
    from adapters.gitops import read_current

    assert sum(read_current(repo)["retail/web"].values()) == 2
    # a restart reads the committed placement back from git, definitions from the state file
    with serve(config) as url, httpx.Client(base_url=url, timeout=60) as client:
        got = client.get("/v1/placements/retail/web", headers=bearer(ADMIN))
        assert got.status_code == 200 and got.json()["replicas"] == 2
        assert client.delete("/v1/placements/retail/web", headers=bearer(ADMIN)).status_code == 200
    assert "retail/web" not in read_current(repo)
    assert yaml.safe_load((tmp_path / "state" / "accepted.yaml").read_text()) is None
