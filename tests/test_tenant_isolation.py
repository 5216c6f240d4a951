"""A hostile tenant probes every endpoint and every field that names another object or a path.

One real uvicorn server with a real GitOps repository (Flux) and a sources folder per
tenant. ``payments`` places ``db`` (its overlay carries a Secret) with a policy; then
``retail``'s token tries every route of the app and every reference field at
``payments``' objects. Each attempt must be 403, 404 or 422 (or succeed without
touching ``payments``), no response may carry a byte of ``payments``' data, and nothing
``retail`` gets committed or rendered may carry it either.
"""

from __future__ import annotations

import subprocess
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml
from starlette.routing import Route

from adapters.api import create_app, load_config
from adapters.gitops import read_current, render_cluster
from tests.api_fixture import ADMIN, API, PAYMENTS, RETAIL, bearer, serve, workload, write_service

PAY_SECRET = "pay-db-password-8Hq2"
#: strings only payments' data holds: its workload, policy, Secret and source folder
PAY_MARKERS = ("payments/db", "db-policy", PAY_SECRET, "pay-db-secret")


def kustomize_app(folder: Path, name: str, extra: dict[str, Any] | None = None) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    docs = [{"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": name},
             "spec": {"selector": {"matchLabels": {"app": name}}, "template": {
                 "metadata": {"labels": {"app": name}}, "spec": {"containers": [{"name": name, "image": "nginx"}]}}}}]
    if extra:
        docs.append(extra)
    (folder / "app.yaml").write_text(yaml.safe_dump_all(docs))
    (folder / "kustomization.yaml").write_text("resources:\n- app.yaml\n")


def policy(name: str, ns: str, spec: dict[str, Any]) -> dict[str, Any]:
    return {"apiVersion": API, "kind": "PlacementPolicy", "metadata": {"name": name, "namespace": ns}, "spec": spec}


def sourced(name: str, ns: str, path: str, **spec: Any) -> dict[str, Any]:
    doc = workload(name, ns)
    doc["spec"].update(spec, source={"path": path})
    return doc


class World:
    def __init__(self, root: Path, client: httpx.Client, repo: Path) -> None:
        self.root, self.client, self.repo = root, client, repo
        self.seen: list[tuple[str, str]] = []  # (what retail sent, what it got back)

    def call(self, method: str, path: str, token: str = RETAIL, headers_extra: dict[str, str] | None = None,
             **kw: Any) -> httpx.Response:
        r = self.client.request(method, path, headers=bearer(token) | (headers_extra or {}), **kw)
        if token == RETAIL:
            self.seen.append((path + r.request.content.decode(), r.text + str(dict(r.headers))))
        return r

    def leaked(self) -> list[tuple[str, str]]:
        """(marker, response) for payments' data in an answer, unless the request itself named it."""
        return [(m, got[:300]) for sent, got in self.seen for m in PAY_MARKERS if m in got and m not in sent]

    def place(self, docs: list[dict[str, Any]], token: str = RETAIL, dry: bool = False) -> httpx.Response:
        return self.call("POST", "/v1/placements", token, json={"documents": docs, "dryRun": dry})


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[World]:
    root = tmp_path_factory.mktemp("isolation")
    kustomize_app(root / "sources/retail/web", "web")
    kustomize_app(root / "sources/payments/db", "db", {
        "apiVersion": "v1", "kind": "Secret", "metadata": {"name": "pay-db-secret"},
        "stringData": {"password": PAY_SECRET}})
    repo = root / "deploy"
    subprocess.run(["git", "init", "-q", "-b", "main", str(repo)], check=True)
    config = write_service(root, extra={"gitops": {"repo": str(repo), "format": "flux"}, "sourcesDir": "sources"})
    with serve(config) as url, httpx.Client(base_url=url, timeout=120) as client:
        w = World(root, client, repo)
        r = w.place([sourced("db", "payments", "payments/db", policy="db-policy"),
                     policy("db-policy", "payments", {"clusters": {"max": 1}})], PAYMENTS)
        assert r.status_code == 201, r.text
        w.payments_before = read_current(repo)["payments/db"]
        yield w


def refused(r: httpx.Response, *codes: int) -> None:
    assert r.status_code in (codes or (403, 404, 422)), r.text


#: (method, route path) -> probe; every route of the app must have one (checked below)
Probe = Callable[[World], None]


def probe_list(w: World) -> None:
    r = w.call("GET", "/v1/placements")
    assert r.status_code == 200 and r.json()["items"] == []
    # a page token payments got is no use to retail, and names nothing of payments'
    first = w.call("GET", "/v1/placements", PAYMENTS, params={"limit": 1}).json()
    assert first["items"] and first["items"][0]["workload"] == "payments/db"
    w.call("POST", "/v1/placements", PAYMENTS, json={"documents": [workload("db-2", "payments", cpu="100m")]})
    token = w.call("GET", "/v1/placements", PAYMENTS, params={"limit": 1}).json()["metadata"]["continue"]
    assert token
    refused(w.call("GET", "/v1/placements", params={"limit": 1, "continue": token}), 400)
    # a watch shows retail nothing of payments': not the state, not a change made while it runs
    events: list[str] = []

    def follow() -> None:
        with w.client.stream("GET", "/v1/placements", params={"watch": "true", "timeoutSeconds": 3},
                             headers=bearer(RETAIL)) as r:
            events.extend(r.iter_lines())

    thread = threading.Thread(target=follow)
    thread.start()
    time.sleep(0.5)
    w.call("DELETE", "/v1/placements/payments/db-2", PAYMENTS)
    thread.join(30)
    w.seen.append(("watch", "\n".join(events)))
    assert not [e for e in events if e.startswith("event:")], events
    admin: list[str] = []
    with w.client.stream("GET", "/v1/placements", params={"watch": "true", "timeoutSeconds": 1},
                         headers=bearer(ADMIN)) as r:
        admin.extend(r.iter_lines())
    assert any("payments/db" in e for e in admin)  # the stream would carry it: the data is there


def probe_put(w: World) -> None:
    spec = {"json": {"documents": [sourced("db", "payments", "payments/db", replicas=2)]}}
    refused(w.call("PUT", "/v1/placements/payments/db", **spec), 404)
    refused(w.call("PUT", "/v1/placements/payments/db", headers_extra={"If-Match": "*"}, **spec), 404)
    refused(w.call("PUT", "/v1/placements/retail/db", **spec), 403, 404, 422)
    refused(w.call("PUT", "/v1/placements/payments/db",
                   json={"documents": [sourced("db", "payments", "payments/db")], "dryRun": True}), 404)
    assert read_current(w.repo)["payments/db"] == w.payments_before


def probe_get(w: World) -> None:
    refused(w.call("GET", "/v1/placements/payments/db"), 404)
    missing = w.call("GET", "/v1/placements/payments/nothing-here")
    assert missing.status_code == 404
    # the answer is the same as for a name that does not exist, apart from the name itself
    mine = w.call("GET", "/v1/placements/payments/db").json()
    assert mine["detail"].replace("db", "X") == missing.json()["detail"].replace("nothing-here", "X")


def probe_delete(w: World) -> None:
    refused(w.call("DELETE", "/v1/placements/payments/db"), 404)
    assert read_current(w.repo)["payments/db"] == w.payments_before


def probe_create(w: World) -> None:
    web = lambda **spec: sourced("web", "retail", "retail/web", **spec)  # noqa: E731
    attempts: dict[str, list[dict[str, Any]]] = {
        "namespace": [sourced("db2", "payments", "payments/db")],
        "policy in another namespace": [policy("db-policy", "payments", {"clusters": {"max": 3}}), web()],
        "policy by name": [web(policy="db-policy")],
        "policy by ns/name": [web(policy="payments/db-policy")],
        "affinity": [web(policy="p1"), policy("p1", "retail", {"affinity": {"workloads": ["db"]}})],
        "affinity ns/name": [web(policy="p2"), policy("p2", "retail", {"affinity": {"workloads": ["payments/db"]}})],
        "dependsOn": [web(dependsOn=["db"])],
        "dependsOn ns/name": [web(dependsOn=["payments/db"])],
        "source.path": [sourced("web", "retail", "payments/db")],
        "source.path dot-dot": [sourced("web", "retail", "retail/../payments/db")],
        "source.path absolute": [sourced("web", "retail", str(w.root / "sources/payments/db"))],
        "cluster-wide policy": [web(), {"apiVersion": API, "kind": "ClusterPlacementPolicy",
                                        "metadata": {"name": "grab"},
                                        "spec": {"resourceSelectors": [{}], "clusters": {"max": 3}}}],
        "a cluster": [web(), {"apiVersion": API, "kind": "Cluster", "metadata": {"name": "eu-1"},
                              "spec": {"capacity": {"cpu": "1000"}}}],
    }
    for why, docs in attempts.items():
        for dry in (True, False):
            r = w.place(docs, dry=dry)
            assert r.status_code in (403, 404, 422), (why, dry, r.text)
            assert w.leaked() == [], why
    # a policy that tries to select payments' workloads is refused or binds nothing
    grab = policy("p4", "retail", {"resourceSelectors": [{"namespace": "payments"}], "priority": 1000,
                                   "clusters": {"max": 3}})
    r = w.place([web(), grab], dry=True)
    assert r.status_code in (200, 422), r.text
    assert w.leaked() == [] and read_current(w.repo)["payments/db"] == w.payments_before
    # anti-affinity to a name retail does not hold binds nothing: the same answer as without it,
    # so it cannot tell retail where payments/db runs
    plain = w.place([web()], dry=True)
    assert plain.status_code == 200, plain.text
    for name in ("db", "payments/db"):
        r = w.place([web(policy="p5"), policy("p5", "retail", {"antiAffinity": {"workloads": [name]}})], dry=True)
        assert r.status_code == 200, r.text
        assert r.json()["plan"]["placements"] == plain.json()["plan"]["placements"]
        assert w.leaked() == []
    assert read_current(w.repo)["payments/db"] == w.payments_before


def probe_plans(w: World) -> None:
    refused(w.call("POST", "/v1/plans", json={"documents": [sourced("db", "payments", "payments/db")],
                                               "useFleet": True}), 403)
    refused(w.call("POST", "/v1/plans", json={"documents": [workload("web", "retail", policy="db-policy")],
                                               "useFleet": True}), 422)
    r = w.call("POST", "/v1/plans", json={"documents": [workload("web", "retail")], "useFleet": True})
    assert r.status_code in (200, 409), r.text
    r = w.call("POST", "/v1/plans", json={"documents": [workload("web", "retail")], "useFleet": True,
                                           "current": {"payments/db": {"eu-1": 1}}})
    assert r.status_code in (200, 403, 409, 422), r.text


def probe_fleet(w: World) -> None:
    r = w.call("GET", "/v1/fleet")
    assert r.status_code == 200 and r.json()["committedWorkloads"] == 0


def probe_events(w: World) -> None:
    # without failover configured nothing is recorded; tests/test_failover_service.py scopes real events
    r = w.call("GET", "/v1/events")
    assert r.status_code == 200 and r.json() == []


def probe_whatif(w: World) -> None:
    scenario = {"apiVersion": API, "kind": "Scenario", "metadata": {"name": "s"}, "spec": {}}
    refused(w.call("POST", "/v1/whatif", json={"scenarios": [scenario]}), 403)


def probe_public(path: str) -> Probe:
    def probe(w: World) -> None:
        r = w.client.get(path)
        w.seen.append((path, r.text))
        assert r.status_code in (200, 503)
    return probe


PROBES: dict[tuple[str, str], Probe] = {
    ("GET", "/v1/placements"): probe_list,
    ("POST", "/v1/placements"): probe_create,
    ("GET", "/v1/placements/{namespace}/{name}"): probe_get,
    ("DELETE", "/v1/placements/{namespace}/{name}"): probe_delete,
    ("PUT", "/v1/placements/{namespace}/{name}"): probe_put,
    ("POST", "/v1/plans"): probe_plans,
    ("GET", "/v1/fleet"): probe_fleet,
    ("POST", "/v1/whatif"): probe_whatif,
    ("GET", "/v1/events"): probe_events,
    ("GET", "/healthz"): probe_public("/healthz"),
    ("GET", "/readyz"): probe_public("/readyz"),
    ("GET", "/metrics"): probe_public("/metrics"),
    ("GET", "/openapi.json"): probe_public("/openapi.json"),
    ("GET", "/docs"): probe_public("/docs"),
    ("GET", "/docs/oauth2-redirect"): probe_public("/docs/oauth2-redirect"),
}


def app_routes(tmp_path: Path) -> set[tuple[str, str]]:
    """Every (method, path) the app serves: its OpenAPI paths and its own documentation routes."""
    app = create_app(load_config(write_service(tmp_path)))
    routes = {(m.upper(), path) for path, ops in app.openapi()["paths"].items() for m in ops}
    routes |= {("GET", r.path) for r in app.routes if isinstance(r, Route) and "GET" in (r.methods or ())}
    return routes


def test_every_route_is_probed(tmp_path: Path) -> None:
    assert app_routes(tmp_path) == set(PROBES), "a new endpoint needs a probe in PROBES"


@pytest.mark.parametrize("route", sorted(PROBES), ids=lambda r: f"{r[0]} {r[1]}")
def test_another_tenants_token_gets_nothing(world: World, route: tuple[str, str]) -> None:
    world.seen.clear()
    PROBES[route](world)
    assert world.seen and world.leaked() == []


def test_the_admin_sees_payments_and_retail_does_not(world: World) -> None:
    """The probes above could pass against an empty service: this proves the data is there."""
    got = world.call("GET", "/v1/placements/payments/db", ADMIN)
    assert got.status_code == 200 and got.json()["workload"] == "payments/db"
    assert world.call("GET", "/v1/placements/payments/db", PAYMENTS).status_code == 200


def test_nothing_retail_commits_or_renders_holds_payments_data(world: World) -> None:
    r = world.place([sourced("web", "retail", "retail/web")])
    assert r.status_code == 201, r.text
    assert not [m for m in PAY_MARKERS if m in r.text]
    repo = world.repo
    assert read_current(repo)["payments/db"] == world.payments_before
    retail_files = [p for p in repo.rglob("*") if p.is_file() and "/.git/" not in str(p)
                    and ("/retail/" in str(p) or p.name.startswith("retail"))]
    assert retail_files
    for path in retail_files:
        assert not [m for m in PAY_MARKERS if m in path.read_text()], path
    # what each cluster runs in namespace retail, as Flux would render it
    for cluster in read_current(repo)["retail/web"]:
        objects = render_cluster(repo, cluster)
        retail = [o for o in objects if (o.get("metadata") or {}).get("namespace") == "retail"]
        assert retail and all(PAY_SECRET not in yaml.safe_dump(o) for o in retail)
        assert not [o for o in retail if o.get("kind") == "Secret"]
