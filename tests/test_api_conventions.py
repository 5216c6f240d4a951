"""The service's HTTP conventions, against a real uvicorn server and a real git clone.

Idempotency-Key on POST, ``limit``/``continue`` pagination, ETag with If-Match and
If-None-Match, ``PUT`` of a placed workload (spec section 4: what runs is kept), every
validation error at once, YAML bodies, and ``?watch=true`` as server-sent events.
"""

from __future__ import annotations

import concurrent.futures as cf
import json
import subprocess
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml

from adapters.api.pagination import Paginator
from adapters.gitops import read_current
from tests.api_fixture import ADMIN, API, PAYMENTS, RETAIL, bearer, serve, workload, write_service


def _git(repo: Path, *args: str) -> str:
    return subprocess.run(["git", "-C", str(repo), *args], check=True, capture_output=True, text=True).stdout.strip()


@pytest.fixture
def service(tmp_path: Path) -> Iterator[tuple[httpx.Client, Path, Path]]:
    repo = tmp_path / "deploy"
    subprocess.run(["git", "init", "-q", "-b", "main", str(repo)], check=True)
    _git(repo, "-c", "user.name=t", "-c", "user.email=t@t", "commit", "-q", "--allow-empty", "-m", "init")
    config = write_service(tmp_path, extra={"gitops": {"repo": str(repo), "format": "flux"}})
    with serve(config) as url, httpx.Client(base_url=url, timeout=120) as client:
        yield client, repo, config


def _post(client: httpx.Client, docs: list[dict[str, Any]], token: str = RETAIL, key: str | None = None,
          dry: bool = False) -> httpx.Response:
    headers = bearer(token) | ({"Idempotency-Key": key} if key else {})
    return client.post("/v1/placements", json={"documents": docs, "dryRun": dry}, headers=headers)


# --- Idempotency-Key ---------------------------------------------------------------------------


def test_a_retried_post_gets_the_first_answer_and_commits_once(service: tuple[httpx.Client, Path, Path]) -> None:
    client, repo, _ = service
    doc = workload("web", "retail", replicas=2)
    first = _post(client, [doc], key="req-1")
    assert first.status_code == 201, first.text
    commits = _git(repo, "rev-list", "--count", "HEAD")
    again = _post(client, [doc], key="req-1")
    assert again.status_code == 201 and again.json() == first.json()
    assert again.headers["idempotent-replayed"] == "true"
    assert _git(repo, "rev-list", "--count", "HEAD") == commits  # nothing committed twice
    # without the key the same request is what it always was: already placed
    assert _post(client, [doc]).status_code == 409
    # the same key for another request is refused, not replayed
    other = _post(client, [workload("api", "retail")], key="req-1")
    assert other.status_code == 422 and other.json()["field"] == "Idempotency-Key"


def test_retries_in_flight_wait_for_the_first(service: tuple[httpx.Client, Path, Path]) -> None:
    client, repo, _ = service
    doc = workload("api", "retail")
    with cf.ThreadPoolExecutor(6) as pool:
        answers = list(pool.map(lambda _: _post(client, [doc], key="same"), range(6)))
    assert {r.status_code for r in answers} == {201}, [r.text for r in answers]
    assert len({r.text for r in answers}) == 1
    assert list(read_current(repo)) == ["retail/api"]


def test_idempotent_answers_are_per_token(service: tuple[httpx.Client, Path, Path]) -> None:
    """A tenant that sends another tenant's key (and even its body) never gets that tenant's answer."""
    client, _, _ = service
    mine = _post(client, [workload("web", "retail")], key="shared-key")
    assert mine.status_code == 201
    theirs = _post(client, [workload("web", "retail")], token=PAYMENTS, key="shared-key")
    assert theirs.status_code == 403, theirs.text  # its own answer: retail is not its namespace
    assert "idempotent-replayed" not in theirs.headers and "eu-" not in theirs.text


# --- pagination ------------------------------------------------------------------------------------


def test_lists_page_with_limit_and_continue(service: tuple[httpx.Client, Path, Path]) -> None:
    client, _, _ = service
    names = [f"w{i}" for i in range(5)]
    assert _post(client, [workload(n, "retail", cpu="100m") for n in names]).status_code == 201
    assert _post(client, [workload("p", "payments", cpu="100m")], token=PAYMENTS).status_code == 201
    seen: list[str] = []
    params: dict[str, Any] = {"limit": 2}
    pages = 0
    while True:
        r = client.get("/v1/placements", params=params, headers=bearer(RETAIL))
        assert r.status_code == 200, r.text
        body = r.json()
        assert len(body["items"]) <= 2
        seen += [p["workload"] for p in body["items"]]
        pages += 1
        token = body["metadata"]["continue"]
        if token is None:
            assert body["metadata"]["remainingItemCount"] is None
            break
        assert body["metadata"]["remainingItemCount"] == 5 - len(seen)
        params = {"limit": 2, "continue": token}
    assert pages == 3 and seen == [f"retail/{n}" for n in names]  # all of retail's, once, in order, no payments
    first = client.get("/v1/placements", params={"limit": 2}, headers=bearer(RETAIL)).json()["metadata"]["continue"]
    # a token another token got, or one that was changed, is refused
    assert client.get("/v1/placements", params={"continue": first}, headers=bearer(ADMIN)).status_code == 400
    body, mac = first.split(".")
    forged = (body[:-2] + ("AA" if body[-2:] != "AA" else "BB")) + "." + mac
    assert client.get("/v1/placements", params={"continue": forged}, headers=bearer(RETAIL)).status_code == 400
    assert client.get("/v1/placements", params={"limit": 0}, headers=bearer(RETAIL)).status_code == 422


def test_a_continue_token_from_another_process_has_expired() -> None:
    old, new = Paginator(), Paginator()
    token = old.token(list_name="placements", caller="c", after="retail/a")
    assert old.after(token, list_name="placements", caller="c") == "retail/a"
    with pytest.raises(Exception) as info:
        new.after(token, list_name="placements", caller="c")
    assert getattr(info.value, "status", None) == 410


# --- ETag, If-Match, If-None-Match, PUT --------------------------------------------------------


def test_etag_guards_delete_and_put(service: tuple[httpx.Client, Path, Path]) -> None:
    client, repo, _ = service
    assert _post(client, [workload("web", "retail", replicas=2)]).status_code == 201
    got = client.get("/v1/placements/retail/web", headers=bearer(RETAIL))
    etag = got.headers["etag"]
    assert etag.startswith('"')
    unchanged = client.get("/v1/placements/retail/web", headers=bearer(RETAIL) | {"If-None-Match": etag})
    assert unchanged.status_code == 304 and unchanged.headers["etag"] == etag
    put = client.put("/v1/placements/retail/web", json={"documents": [workload("web", "retail", replicas=3)]},
                     headers=bearer(RETAIL) | {"If-Match": etag})
    assert put.status_code == 200, put.text
    new_etag = put.headers["etag"]
    assert new_etag != etag
    # the old ETag no longer matches: neither a second PUT nor a DELETE goes through
    stale = client.put("/v1/placements/retail/web", json={"documents": [workload("web", "retail", replicas=1)]},
                       headers=bearer(RETAIL) | {"If-Match": etag})
    assert stale.status_code == 412, stale.text
    assert client.delete("/v1/placements/retail/web", headers=bearer(RETAIL) | {"If-Match": etag}).status_code == 412
    assert sum(read_current(repo)["retail/web"].values()) == 3
    assert client.get("/v1/placements/retail/web", headers=bearer(RETAIL)).headers["etag"] == new_etag
    gone = client.delete("/v1/placements/retail/web", headers=bearer(RETAIL) | {"If-Match": new_etag})
    assert gone.status_code == 200, gone.text
    assert "retail/web" not in read_current(repo)


def test_put_keeps_what_runs_and_moves_nothing_else(service: tuple[httpx.Client, Path, Path], tmp_path: Path
                                                    ) -> None:
    client, repo, config = service
    assert _post(client, [workload("web", "retail", replicas=2)]).status_code == 201
    assert _post(client, [workload("db", "payments", replicas=2)], token=PAYMENTS).status_code == 201
    before = read_current(repo)
    # more replicas: the two that run stay where they run, one more is added; payments does not move
    r = client.put("/v1/placements/retail/web", json={"documents": [workload("web", "retail", replicas=3)]},
                   headers=bearer(RETAIL))
    assert r.status_code == 200, r.text
    after = read_current(repo)
    assert after["payments/db"] == before["payments/db"]
    assert sum(after["retail/web"].values()) == 3
    assert all(after["retail/web"].get(c, 0) >= n for c, n in before["retail/web"].items())
    # a change that does not fit: 409 with notApplied (spec 4), nothing changes, it keeps running
    big = client.put("/v1/placements/retail/web", json={"documents": [workload("web", "retail", replicas=40)]},
                     headers=bearer(RETAIL))
    assert big.status_code == 409, big.text
    assert [n["workload"] for n in big.json()["notApplied"]] == ["retail/web"]
    assert big.json()["notApplied"][0]["reasons"][0]["code"] == "ChangeNotApplied"
    assert read_current(repo) == after
    assert client.get("/v1/placements/retail/web", headers=bearer(RETAIL)).json()["spec"]["replicas"] == 3
    # the dry run of the same change answers the plan, with notApplied, and changes nothing
    dry = client.put("/v1/placements/retail/web", headers=bearer(RETAIL),
                     json={"documents": [workload("web", "retail", replicas=40)], "dryRun": True})
    assert dry.status_code == 200 and not dry.json()["accepted"] and dry.json()["plan"]["notApplied"]
    # fewer replicas
    down = client.put("/v1/placements/retail/web", json={"documents": [workload("web", "retail", replicas=1)]},
                      headers=bearer(RETAIL))
    assert down.status_code == 200, down.text
    final = read_current(repo)
    assert sum(final["retail/web"].values()) == 1 and final["payments/db"] == before["payments/db"]
    # the update survives a restart: the state file holds the new definition
    with serve(config) as url:
        got = httpx.get(url + "/v1/placements/retail/web", headers=bearer(RETAIL), timeout=60).json()
    assert got["spec"]["replicas"] == 1 and got["clusters"] == final["retail/web"]


def test_put_is_refused_for_what_the_token_cannot_see_or_the_path_does_not_name(
        service: tuple[httpx.Client, Path, Path]) -> None:
    client, repo, _ = service
    assert _post(client, [workload("db", "payments")], token=PAYMENTS).status_code == 201
    r = client.put("/v1/placements/payments/db", json={"documents": [workload("db", "payments", replicas=2)]},
                   headers=bearer(RETAIL))
    assert r.status_code == 404 and "eu-" not in r.text
    missing = client.put("/v1/placements/retail/none", json={"documents": [workload("none", "retail")]},
                         headers=bearer(RETAIL))
    assert missing.status_code == 404
    other = client.put("/v1/placements/payments/db", json={"documents": [workload("x", "payments")]},
                       headers=bearer(PAYMENTS))
    assert other.status_code == 422 and other.json()["field"] == "documents"
    assert sum(read_current(repo)["payments/db"].values()) == 1


# --- problem details: every error at once --------------------------------------------------------


def test_every_validation_error_at_once(service: tuple[httpx.Client, Path, Path]) -> None:
    client, _, _ = service
    bad = workload("web", "retail")
    bad["spec"]["replicas"] = 0
    bad["spec"]["colour"] = "blue"
    worse = workload("api", "retail")
    worse["spec"]["priority"] = "high"
    r = _post(client, [bad, worse, {"apiVersion": API, "kind": "Cluster"}])
    assert r.status_code == 422, r.text
    fields = [e["field"] for e in r.json()["errors"]]
    assert set(fields) == {"documents[0].spec.replicas", "documents[0].spec.colour", "documents[1].spec.priority",
                           "documents[2].kind"}
    assert all(e["detail"] for e in r.json()["errors"])
    assert r.json()["field"] == fields[0]
    # request-level errors too
    r = client.post("/v1/placements", json={"documents": [], "dryRun": "perhaps", "timeLimit": -1},
                    headers=bearer(RETAIL))
    assert {e["field"] for e in r.json()["errors"]} >= {"documents", "dryRun", "timeLimit"}


# --- YAML bodies -----------------------------------------------------------------------------------


def test_yaml_bodies_are_read_as_json(service: tuple[httpx.Client, Path, Path]) -> None:
    client, repo, _ = service
    body = {"documents": [workload("web", "retail", replicas=2)]}
    headers = bearer(RETAIL) | {"content-type": "application/yaml"}
    r = client.post("/v1/placements", content=yaml.safe_dump(body), headers=headers)
    assert r.status_code == 201, r.text
    assert sum(read_current(repo)["retail/web"].values()) == 2
    # the same checks as JSON: namespace, validation (every error), size
    r = client.post("/v1/placements", content=yaml.safe_dump({"documents": [workload("x", "payments")]}),
                    headers=headers)
    assert r.status_code == 403
    bad = workload("y", "retail")
    bad["spec"]["replicas"] = "two"
    r = client.post("/v1/placements", content=yaml.safe_dump({"documents": [bad]}), headers=headers)
    assert r.status_code == 422 and r.json()["errors"][0]["field"] == "documents[0].spec.replicas"
    assert client.post("/v1/placements", content="x: " + "y" * 70000, headers=headers).status_code == 413
    # aliases (a billion laughs), several documents and broken YAML are refused, naming why
    laughs = "a: &a [x, x]\nb: &b [*a, *a]\nc: &c [*b, *b]\ndocuments: [*c]\n"
    r = client.post("/v1/placements", content=laughs, headers=headers)
    assert r.status_code == 422 and "aliases" in r.json()["detail"]
    assert client.post("/v1/placements", content="a: 1\n---\nb: 2\n", headers=headers).status_code == 422
    r = client.post("/v1/placements", content="documents: [\n", headers=headers)
    assert r.status_code == 422 and "line" in r.json()["detail"]
    # a PUT takes YAML as well
    r = client.put("/v1/placements/retail/web", content=yaml.safe_dump({"documents": [workload("web", "retail")]}),
                   headers=headers)
    assert r.status_code == 200, r.text
    assert sum(read_current(repo)["retail/web"].values()) == 1


# --- watch -------------------------------------------------------------------------------------------


class Watcher:
    """Reads one SSE stream in a thread; events as (type, data) pairs."""

    def __init__(self, base: str, token: str, **params: Any) -> None:
        self.events: list[tuple[str, dict[str, Any]]] = []
        self.comments = 0
        self.opened = threading.Event()
        self.thread = threading.Thread(target=self._run, args=(base, token, params), daemon=True)
        self.thread.start()
        assert self.opened.wait(30)

    def _run(self, base: str, token: str, params: dict[str, Any]) -> None:
        with httpx.stream("GET", base + "/v1/placements", params={"watch": "true", **params},
                          headers=bearer(token), timeout=60) as r:
            assert r.headers["content-type"].startswith("text/event-stream")
            self.opened.set()
            kind = ""
            for line in r.iter_lines():
                if line.startswith("event: "):
                    kind = line.removeprefix("event: ")
                elif line.startswith("data: "):
                    self.events.append((kind, json.loads(line.removeprefix("data: "))))
                elif line.startswith(":"):
                    self.comments += 1

    def wait_for(self, n: int) -> list[tuple[str, dict[str, Any]]]:
        deadline = time.monotonic() + 60
        while len(self.events) < n and time.monotonic() < deadline and self.thread.is_alive():
            time.sleep(0.05)
        return list(self.events)


def test_watch_streams_changes_of_the_tokens_namespaces(service: tuple[httpx.Client, Path, Path]) -> None:
    client, _, _ = service
    assert _post(client, [workload("old", "retail")]).status_code == 201
    base = str(client.base_url)
    retail = Watcher(base, RETAIL, timeoutSeconds=20)
    admin = Watcher(base, ADMIN, timeoutSeconds=20)
    assert retail.wait_for(1)[0][0] == "ADDED"  # the state first: what runs now
    assert _post(client, [workload("db", "payments")], token=PAYMENTS).status_code == 201
    assert _post(client, [workload("web", "retail", replicas=2)]).status_code == 201
    assert client.put("/v1/placements/retail/web", json={"documents": [workload("web", "retail", replicas=1)]},
                      headers=bearer(RETAIL)).status_code == 200
    assert client.delete("/v1/placements/retail/old", headers=bearer(RETAIL)).status_code == 200
    got = retail.wait_for(4)
    assert [(t, e["object"]["workload"]) for t, e in got] == [
        ("ADDED", "retail/old"), ("ADDED", "retail/web"), ("MODIFIED", "retail/web"), ("DELETED", "retail/old")]
    assert got[2][1]["object"]["replicas"] == 1
    assert ("ADDED", "payments/db") in [(t, e["object"]["workload"]) for t, e in admin.wait_for(5)]
    assert all("payments" not in json.dumps(e) for _, e in got)
    # resume after the ADDED of web: only what came later
    since = got[1][1]["resourceVersion"]
    resumed = Watcher(base, RETAIL, resourceVersion=since, timeoutSeconds=2)
    resumed.thread.join(30)
    assert [(t, e["object"]["workload"]) for t, e in resumed.events] == [
        ("MODIFIED", "retail/web"), ("DELETED", "retail/old")]
    # a version from before this process started is too old: ERROR 410, and the stream ends
    listed = client.get("/v1/placements", headers=bearer(RETAIL)).json()["metadata"]["resourceVersion"]
    too_old = Watcher(base, RETAIL, resourceVersion="1", timeoutSeconds=20)
    too_old.thread.join(30)
    assert not too_old.thread.is_alive()
    assert too_old.events == [("ERROR", too_old.events[0][1])] and too_old.events[0][1]["object"]["code"] == 410
    # from the list's resourceVersion: nothing old, the next change only
    follow = Watcher(base, RETAIL, resourceVersion=listed, timeoutSeconds=20)
    assert _post(client, [workload("new", "retail")]).status_code == 201
    assert [(t, e["object"]["workload"]) for t, e in follow.wait_for(1)] == [("ADDED", "retail/new")]
