"""``berth serve`` with live capacity from a real Prometheus whose data for one cluster is OLD.

Prometheus answers (it is reachable), but eu-2's newest samples are 30-40 minutes old while
``maxAgeSeconds`` is 300: staleness is the age of the data. With ``onStale: refuse`` the
service is not ready and refuses placements naming eu-2; with ``fallback`` it places and says
that eu-2 was planned on the bundle's capacity.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.api_fixture import RETAIL, bearer, serve, workload, write_service
from tests.prom_fixture import OpenMetrics, running_prometheus

GI = 2**30


def _dataset(now: int) -> str:
    fresh = range(now - 600, now + 1, 30)
    old = range(now - 2400, now - 1800 + 1, 30)
    om = OpenMetrics()
    for name, times in (("eu-1", fresh), ("eu-2", old), ("us-1", fresh)):
        for resource, value, unit in (("cpu", 4, "core"), ("memory", 64 * GI, "byte"), ("pods", 110, "integer")):
            om.add("kube_node_status_allocatable",
                   {"cluster": name, "node": "n1", "resource": resource, "unit": unit}, value, times)
        om.add("kube_node_spec_unschedulable", {"cluster": name, "node": "n1"}, 0, times)
    return om.text()


@pytest.fixture(scope="module")
def prom(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    with running_prometheus(_dataset(int(time.time())), tmp_path_factory.mktemp("prom-stale")) as url:
        yield url


def _config(tmp_path: Path, prom: str, on_stale: str) -> Path:
    live = {"prometheus": prom, "maxAgeSeconds": 300, "onStale": on_stale, "refreshSeconds": 3600}
    return write_service(tmp_path, extra={"live": live})


def test_refuse_when_data_is_old(prom: str, tmp_path: Path) -> None:
    with serve(_config(tmp_path, prom, "refuse")) as url, httpx.Client(base_url=url, timeout=60) as client:
        ready = client.get("/readyz")
        assert ready.status_code == 503, ready.text
        body = ready.json()
        assert "eu-2" in body["detail"] and "eu-1" not in body["detail"]
        assert [c["name"] for c in body["freshness"]["staleClusters"]] == ["eu-2"]
        r = client.post("/v1/placements", json={"documents": [workload("web", "retail")]}, headers=bearer(RETAIL))
        assert r.status_code == 503, r.text
        assert "eu-2" in r.json()["detail"]
        assert client.get("/v1/placements", headers=bearer(RETAIL)).json()["items"] == []
    assert not (tmp_path / "state" / "accepted.yaml").exists()


def test_fallback_says_which_clusters_used_the_file(prom: str, tmp_path: Path) -> None:
    with serve(_config(tmp_path, prom, "fallback")) as url, httpx.Client(base_url=url, timeout=60) as client:
        assert client.get("/readyz").status_code == 200
        r = client.post("/v1/placements", json={"documents": [workload("web", "retail")]}, headers=bearer(RETAIL))
        assert r.status_code == 201, r.text
        stale = r.json()["fleet"]["staleClusters"]
        assert [(c["name"], c["capacityFrom"]) for c in stale] == [("eu-2", "file")]
        assert any("eu-2" in w and "bundle" in w for w in r.json()["plan"]["status"]["warnings"])
