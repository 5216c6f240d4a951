"""Huge numbers in a request are a 422 naming the field, never a 500 (real uvicorn server)."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from tests.api_fixture import ADMIN, API, RETAIL, bearer, cluster, serve, workload, write_service

HUGE = (2**63, 2**64 + 5, -(2**63) - 1, 10**300)


@pytest.fixture(scope="module")
def client(tmp_path_factory: pytest.TempPathFactory) -> Iterator[httpx.Client]:
    config = write_service(tmp_path_factory.mktemp("numbers"))
    with serve(config) as url, httpx.Client(base_url=url, timeout=60) as c:
        yield c


def web(**spec: Any) -> dict[str, Any]:
    doc = workload("web", "retail")
    doc["spec"].update(spec)
    return doc


def policy(spec: dict[str, Any]) -> dict[str, Any]:
    return {"apiVersion": API, "kind": "PlacementPolicy", "metadata": {"name": "p", "namespace": "retail"},
            "spec": spec}


def placement_cases(n: int) -> list[tuple[dict[str, Any], str]]:
    return [
        ({"documents": [web(replicas=n)]}, "documents[0].spec.replicas"),
        ({"documents": [web(priority=n)]}, "documents[0].spec.priority"),
        ({"documents": [web(resources={"cpu": n})]}, "documents[0].spec.resources.cpu"),
        ({"documents": [web(policy="p"), policy({"clusters": {"min": 1, "max": n}})]},
         "documents[1].spec.clusters.max"),
        ({"documents": [web()], "timeLimit": n}, "timeLimit"),
    ]


def plan_cases(n: int) -> list[tuple[dict[str, Any], str]]:
    big_cluster = cluster("x", "eu", "4")
    big_cluster["spec"]["capacity"]["pods"] = n
    return [
        ({"documents": [web()], "useFleet": True, "maxMoves": n}, "maxMoves"),
        ({"documents": [web()], "useFleet": True, "current": {"retail/web": {"eu-1": n}}}, "current.retail/web.eu-1"),
        ({"documents": [big_cluster, web()]}, "documents[0].spec.capacity.pods"),
    ]


@pytest.mark.parametrize("n", HUGE)
def test_huge_integers_are_422_naming_the_field(client: httpx.Client, n: int) -> None:
    for path, cases in (("/v1/placements", placement_cases(n)), ("/v1/plans", plan_cases(n))):
        for body, field in cases:
            r = client.post(path, json=body, headers=bearer(RETAIL))
            assert r.status_code == 422, (path, field, r.text)
            problem = r.json()
            assert problem["field"] == field and problem["status"] == 422
            assert str(n) not in r.text  # the value is not echoed
    r = client.post("/v1/whatif", json={"scenarios": [], "timeLimit": n}, headers=bearer(ADMIN))
    assert r.status_code == 422


@pytest.mark.parametrize(("quantity", "field"), [
    ("9" * 300, "documents[0].spec.resources.cpu"),  # a quantity string: huge once in millicores
    ("99999999999999999999", "documents[0].spec.resources.cpu"),
    ("9" * 40 + "Ei", "documents[0].spec.resources.cpu"),
])
def test_huge_quantities_are_422(client: httpx.Client, quantity: str, field: str) -> None:
    r = client.post("/v1/placements", json={"documents": [web(resources={"cpu": quantity})], "dryRun": True},
                    headers=bearer(RETAIL))
    assert r.status_code == 422, r.text
    assert r.json()["field"] == field


def test_non_finite_numbers_are_422(client: httpx.Client) -> None:
    for literal in ("1e400", "NaN", "-Infinity"):
        body = '{"documents": [' + httpx.Request("POST", "/", json=web()).content.decode() + '], "timeLimit": ' \
            + literal + "}"
        r = client.post("/v1/placements", content=body, headers={**bearer(RETAIL), "content-type": "application/json"})
        assert r.status_code == 422, (literal, r.text)
        assert r.json()["field"] == "timeLimit"


def test_largest_allowed_numbers_answer_without_error(client: httpx.Client) -> None:
    """Just inside the limit the service answers (placed or not), never 500."""
    n = 2**53 - 1
    for body in ({"documents": [web(replicas=n)], "dryRun": True}, {"documents": [web(priority=n)], "dryRun": True},
                 {"documents": [web(priority=-n)], "dryRun": True}):
        r = client.post("/v1/placements", json=body, headers=bearer(RETAIL))
        assert r.status_code in (200, 409, 422), r.text
