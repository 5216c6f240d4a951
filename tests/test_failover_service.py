"""``berth serve`` heals the fleet: a real uvicorn server, a real Prometheus, a real git remote.

The service's clock is set to explicit times of the backfilled data (tests/failover_fixture.py)
and each live refresh (the same call its refresh loop makes) is one failover pass. Placements
are made over HTTP by two tenants; after each step the clone, the remote, ``/v1/placements``,
``/v1/events`` (per token) and ``/metrics`` are read.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml

from adapters.api import load_config
from adapters.api.state import ServiceState
from adapters.gitops import read_current
from tests.api_fixture import ADMIN, PAYMENTS, RETAIL, bearer, serve, write_service
from tests.failover_fixture import T0, T1, T2, T3, cluster, dataset, tiers, usage, workload
from tests.prom_fixture import running_prometheus
from tests.test_gitops_support import bare_remote, clone, git

FLEET = [cluster("edge-a", "edge", "4", "0.01"), cluster("edge-b", "edge", "4", "0.02"),
         cluster("cloud-1", "cloud", "16", "0.10")]
REPLICAS = {"payments/pay": 2, "retail/web": 2, "retail/api": 2}


@pytest.fixture(scope="module")
def prom(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    with running_prometheus(dataset(), tmp_path_factory.mktemp("prom-failover-svc")) as url:
        yield url


class Clock:
    def __init__(self, t: float) -> None:
        self.t = t

    def __call__(self) -> float:
        return self.t


def _service(tmp_path: Path, prom: str, *, max_moves: int, grace: int) -> tuple[ServiceState, Clock, Path]:
    origin = bare_remote(tmp_path / "origin.git")
    repo = clone(origin, tmp_path / "deploy")
    extra = {"live": {"prometheus": prom, "maxAgeSeconds": 300, "refreshSeconds": 3600},
             "gitops": {"repo": str(repo), "push": True},
             "failover": {"maxMoves": max_moves, "graceSeconds": grace}}
    config = load_config(write_service(tmp_path, extra=extra, docs=FLEET))
    clock = Clock(T0 + 60)
    return ServiceState(config, clock=clock), clock, repo


def _place(client: httpx.Client, token: str, ns: str, name: str, replicas: int) -> None:
    docs = [tiers(ns), workload(name, ns, replicas)]
    r = client.post("/v1/placements", json={"documents": docs}, headers=bearer(token))
    assert r.status_code == 201, r.text


def _events(client: httpx.Client, token: str) -> list[dict[str, Any]]:
    r = client.get("/v1/events", headers=bearer(token))
    assert r.status_code == 200, r.text
    return list(r.json())


def _placements(client: httpx.Client) -> dict[str, dict[str, int]]:
    r = client.get("/v1/placements", headers=bearer(ADMIN))
    return {p["workload"]: p["clusters"] for p in r.json()["items"]}


def _whole(assignment: dict[str, dict[str, int]]) -> None:
    assert {k: sum(v.values()) for k, v in assignment.items()} == REPLICAS


def test_service_heals_a_lost_cluster_and_a_shrunk_one(prom: str, tmp_path: Path,
                                                       caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, logger="berth.failover")
    state, clock, repo = _service(tmp_path, prom, max_moves=6, grace=600)
    with serve(tmp_path / "berth.yaml", state=state) as url, httpx.Client(base_url=url, timeout=120) as client:
        # the edge's cheapest cluster takes payments' and retail's first workloads
        _place(client, PAYMENTS, "payments", "pay", 2)
        _place(client, RETAIL, "retail", "web", 2)
        _place(client, RETAIL, "retail", "api", 2)
        start = _placements(client)
        _whole(start)
        assert start["payments/pay"] == {"edge-a": 2} and start["retail/web"] == {"edge-a": 2}
        assert read_current(repo) == start

        clock.t = T1 + 360  # edge-a's metrics stopped 6 minutes ago
        state.refresh()
        assert [e["type"] for e in _events(client, ADMIN)] == ["ClusterLost"]
        clock.t = T1 + 660  # lost for 300 of the 600 grace seconds
        state.refresh()
        assert _placements(client) == start and read_current(repo) == start

        clock.t = T1 + 960
        state.refresh()
        healed = _placements(client)
        _whole(healed)
        assert all("edge-a" not in spread for spread in healed.values())
        assert healed["retail/api"] == start["retail/api"]  # it had nothing on edge-a: it stayed
        assert read_current(repo) == healed  # committed ...
        assert git(repo, "rev-parse", "HEAD") == git(tmp_path / "origin.git", "rev-parse", "main")  # ... and pushed
        assert usage(healed).get("edge-b", 0) <= 4
        events = _events(client, ADMIN)
        assert [e["type"] for e in events] == ["ClusterLost", "FailoverCommitted"]
        committed = events[1]
        assert committed["planDigest"].startswith("sha256:") and committed["commits"]
        assert {m["workload"] for m in committed["moves"]} == {"payments/pay", "retail/web"}
        assert sum(m["replicas"] for m in committed["moves"]) <= 6
        digest_lines = [r.getMessage() for r in caplog.records if committed["planDigest"] in r.getMessage()]
        assert digest_lines and "FailoverCommitted" in digest_lines[0]

        # each tenant sees only the events touching its namespace, and only its own workloads in them
        retail = _events(client, RETAIL)
        assert [e["type"] for e in retail] == ["ClusterLost", "FailoverCommitted"]
        assert {m["workload"] for m in retail[1]["moves"]} == {"retail/web"}
        assert retail[0]["workloads"] == ["retail/web"] and retail[1]["commits"] == []
        payments = _events(client, PAYMENTS)
        assert {m["workload"] for m in payments[1]["moves"]} == {"payments/pay"}
        assert "retail" not in str(payments)

        # t2: edge-b shrinks from 4 to 2 cpu
        clock.t = T2 + 60
        state.refresh()
        assert _events(client, ADMIN)[-1]["type"] == "ClusterShort"
        assert _placements(client) == healed
        clock.t = T2 + 660
        state.refresh()
        shrunk = _placements(client)
        _whole(shrunk)
        assert usage(shrunk).get("edge-b", 0) <= 2 and read_current(repo) == shrunk

        # t3: edge-a is back: nothing moves back
        clock.t = T3 + 60
        state.refresh()
        assert _events(client, ADMIN)[-1]["type"] == "ClusterRecovered"
        clock.t = T3 + 1200
        state.refresh()
        assert _placements(client) == shrunk and read_current(repo) == shrunk

        metrics = client.get("/metrics").text
        assert 'berth_failover_events_total{type="FailoverCommitted"} 2.0' in metrics
        assert 'berth_failover_events_total{type="ClusterLost"} 1.0' in metrics
        # the events page: `since` polls for what is new
        last = _events(client, ADMIN)[-1]["id"]
        assert client.get("/v1/events", params={"since": last}, headers=bearer(ADMIN)).json() == []


def test_service_infeasible_failover_commits_nothing(prom: str, tmp_path: Path) -> None:
    state, clock, repo = _service(tmp_path, prom, max_moves=1, grace=0)
    with serve(tmp_path / "berth.yaml", state=state) as url, httpx.Client(base_url=url, timeout=120) as client:
        _place(client, PAYMENTS, "payments", "pay", 2)
        _place(client, RETAIL, "retail", "web", 2)
        start, head = _placements(client), git(repo, "rev-parse", "HEAD")
        saved = (tmp_path / "state" / "accepted.yaml").read_text()
        clock.t = T1 + 360
        state.refresh()
        events = _events(client, ADMIN)
        assert [e["type"] for e in events] == ["ClusterLost", "FailoverInfeasible"]
        assert "maxMoves 1" in events[1]["message"] and "commits nothing" in events[1]["message"]
        assert {u["workload"] for u in events[1]["unplaced"]} == {"payments/pay", "retail/web"}
        assert _placements(client) == start and read_current(repo) == start
        assert git(repo, "rev-parse", "HEAD") == head
        assert (tmp_path / "state" / "accepted.yaml").read_text() == saved
        # a tenant sees its own part of it, with no other tenant's names
        mine = _events(client, RETAIL)[1]
        assert [u["workload"] for u in mine["unplaced"]] == ["retail/web"] and "payments" not in str(mine)
        state.refresh()  # the same situation again: recorded once
        assert len(_events(client, ADMIN)) == 2


def test_failover_needs_live_inputs(tmp_path: Path) -> None:
    config = load_config(write_service(tmp_path, extra={"failover": {"maxMoves": 3}}, docs=FLEET))
    from engine.errors import InputError

    with pytest.raises(InputError, match="self-healing needs live inputs") as err:
        ServiceState(config)
    assert err.value.field == "failover"


def test_failover_settings_are_checked(tmp_path: Path) -> None:
    from engine.errors import InputError

    path = write_service(tmp_path, extra={"failover": {"maxMoves": -1}}, docs=FLEET)
    with pytest.raises(InputError) as err:
        load_config(path)
    assert err.value.field == "failover.maxMoves"
    yaml.safe_load(path.read_text())


def test_a_metrics_source_in_the_bundle_makes_the_service_live(prom: str, tmp_path: Path) -> None:
    # no live.prometheus in the config: the bundle's MetricsSource names the Prometheus
    source = {"apiVersion": "placement.berth.dev/v1alpha1", "kind": "MetricsSource", "metadata": {"name": "prom"},
              "spec": {"prometheus": {"url": prom}, "latency": {"enabled": False}}}
    docs = [cluster("edge-b", "edge", "99", "0.02"), source]
    config = load_config(write_service(tmp_path, docs=docs))
    state = ServiceState(config, clock=Clock(T0 + 60))
    state.refresh()
    assert state.freshness()["source"] == "live"
    assert state.fleet.clusters[0].spec.capacity["cpu"] == 4000  # live, not the file's 99
