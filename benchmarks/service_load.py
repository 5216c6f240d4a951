"""Bounded load on a real ``berth serve`` (a process on 127.0.0.1, a real git clone): requests/s and p99.

``--fleet-scale`` measures the figures of issue 16 instead, at ``--clusters`` (default 1,000 there) and
``--committed`` (default 10,000) committed workloads: engine p50/p99 of one single-workload call on the
fast path and on today's path (the whole fleet pinned), the same dry run through ``berth serve`` (p50),
and sustained dry-run and committed placements per second (see ``fleet_scale``).

Not a test: it prints figures (docs/service.md keeps them). With ``--committed N`` the service first
gets N workloads committed (in batches), then ``--threads`` clients send ``--requests`` requests in
all, a ``--dry-share`` of them dry runs, the rest placements of new workloads, spread over four
tenants. ``--code DIR`` runs the server from another source tree (``git archive <commit> | tar -x``)
to compare before and after a change.

    .venv/bin/python -m benchmarks.service_load --committed 200 --requests 300 --threads 32
"""

from __future__ import annotations

import argparse
import concurrent.futures as cf
import gc
import http.client
import json
import statistics
import subprocess
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

import httpx
import yaml

from adapters.api.config import hash_token
from tests.serve_process import ServerProcess

API = "placement.berth.dev/v1alpha1"
TENANTS = ["shop", "pay", "media", "ops"]
TOKEN = "bench-admin-token"


def _fleet(clusters: int) -> list[dict[str, Any]]:
    return [{"apiVersion": API, "kind": "Cluster", "metadata": {"name": f"c{i:03d}"},
             "spec": {"region": f"r{i % 4}", "capacity": {"cpu": "4", "memory": "64Gi", "pods": 110},
                      "price": {"cpu": f"0.0{1 + i % 9}", "memory": "0.001"}}} for i in range(clusters)]


def _workload(name: str, ns: str) -> dict[str, Any]:
    return {"apiVersion": API, "kind": "Workload", "metadata": {"name": name, "namespace": ns},
            "spec": {"replicas": 2, "resources": {"cpu": "100m", "memory": "128Mi"}}}


def _setup(root: Path, clusters: int) -> Path:
    (root / "bundle").mkdir(parents=True)
    (root / "bundle" / "fleet.yaml").write_text(yaml.safe_dump_all(_fleet(clusters)))
    repo = root / "deploy"
    subprocess.run(["git", "init", "-q", "-b", "main", str(repo)], check=True)
    subprocess.run(["git", "-C", str(repo), "-c", "user.name=b", "-c", "user.email=b@b", "commit", "-q",
                    "--allow-empty", "-m", "init"], check=True)
    config = {
        "bundle": ["bundle"], "stateFile": "state/accepted.yaml",
        "gitops": {"repo": str(repo), "format": "flux"},
        "tokens": [{"name": t, "sha256": hash_token(f"token-{t}"), "namespaces": [t]} for t in TENANTS],
        "limits": {"maxWorkloadsPerRequest": 50, "timeLimitSeconds": 10, "maxRequestBytes": 4 << 20},
    }
    path = root / "berth.yaml"
    path.write_text(yaml.safe_dump(config))
    return path


def _post(client: httpx.Client, tenant: str, docs: list[dict[str, Any]], dry: bool) -> tuple[int, float]:
    started = time.perf_counter()
    r = client.post("/v1/placements", json={"documents": docs, "dryRun": dry},
                    headers={"Authorization": f"Bearer token-{tenant}"})
    return r.status_code, time.perf_counter() - started


def _p(values: list[float], q: float) -> float:
    if not values:
        return float("nan")
    if len(values) == 1:
        return values[0]
    return statistics.quantiles(values, n=100, method="inclusive")[round(q * 100) - 1]


def run(committed: int, requests: int, threads: int, dry_share: float, clusters: int, code: Path | None
        ) -> dict[str, Any]:
    with tempfile.TemporaryDirectory(prefix="berth-load-") as tmp:
        root = Path(tmp)
        server = ServerProcess(_setup(root, clusters), root / "serve.log", code=code).start()
        try:
            with httpx.Client(base_url=server.url, timeout=300) as client:
                for start in range(0, committed, 50):  # the fleet's committed workloads, in batches
                    tenant = TENANTS[(start // 50) % len(TENANTS)]
                    docs = [_workload(f"base-{i}", tenant) for i in range(start, min(committed, start + 50))]
                    status, _ = _post(client, tenant, docs, False)
                    assert status == 201, status

            def one(i: int) -> tuple[bool, int, float]:
                tenant = TENANTS[i % len(TENANTS)]
                dry = int((i + 1) * dry_share) > int(i * dry_share)  # evenly spread
                with httpx.Client(base_url=server.url, timeout=300) as c:
                    status, seconds = _post(c, tenant, [_workload(f"load-{i}", tenant)], dry)
                return dry, status, seconds

            started = time.perf_counter()
            with cf.ThreadPoolExecutor(max_workers=threads) as pool:
                results = list(pool.map(one, range(requests)))
            wall = time.perf_counter() - started
        finally:
            server.stop()
    dry = [s for d, st, s in results if d and st == 200]
    acc = [s for d, st, s in results if not d and st == 201]
    other = sorted({st for d, st, _ in results if st not in (200, 201)})
    return {"committed": committed, "requests": requests, "threads": threads, "wall_s": round(wall, 1),
            "rps": round(requests / wall, 1), "accepted": len(acc), "dry_runs": len(dry), "other_status": other,
            "accepted_p50_s": round(_p(acc, 0.5), 2), "accepted_p99_s": round(_p(acc, 0.99), 2),
            "dry_p50_s": round(_p(dry, 0.5), 2), "dry_p99_s": round(_p(dry, 0.99), 2)}




def _big_fleet(clusters: int) -> list[dict[str, Any]]:
    return [{"apiVersion": API, "kind": "Cluster", "metadata": {"name": f"c{i:04d}", "labels": {"tier": "edge"}},
             "spec": {"region": f"r{i % 8}", "capacity": {"cpu": "8", "memory": "64Gi", "pods": 110},
                      "price": {"cpu": f"0.0{1 + i % 9}", "memory": "0.001"}}} for i in range(clusters)]


def _small_workload(name: str, ns: str, replicas: int = 2) -> dict[str, Any]:
    return {"apiVersion": API, "kind": "Workload", "metadata": {"name": name, "namespace": ns},
            "spec": {"replicas": replicas, "resources": {"cpu": "100m", "memory": "128Mi"}}}


def fleet_setup(root: Path, clusters: int, committed: int) -> Path:
    """Bundle (fleet + committed definitions), the running placement, the config; returns the config.

    Committed workloads keep to one of 8 regions (a policy per region and tenant, as real fleets
    pin apps to a geography); each runs one replica on each of two clusters of its region.
    """
    docs = _big_fleet(clusters)
    regions = 8
    for ns in TENANTS:
        docs += [{"apiVersion": API, "kind": "PlacementPolicy", "metadata": {"name": f"in-r{r}", "namespace": ns},
                  "spec": {"clusterAffinity": {"fieldSelector": {"matchExpressions": [
                      {"key": "region", "operator": "In", "values": [f"r{r}"]}]}}}} for r in range(regions)]
    per_region = max(1, clusters // regions)
    placements = []
    for i in range(committed):
        ns, r = TENANTS[i % len(TENANTS)], i % regions
        w = _small_workload(f"base-{i:05d}", ns)
        w["spec"]["policy"] = f"in-r{r}"
        docs.append(w)
        k = (i // regions) * 2
        a, b = r + regions * (k % per_region), r + regions * ((k + 1) % per_region)
        placements.append({"workload": f"{ns}/base-{i:05d}", "clusters": {f"c{a:04d}": 1, f"c{b:04d}": 1}})
    (root / "bundle").mkdir(parents=True)
    (root / "bundle" / "fleet.yaml").write_text(yaml.dump_all(docs, Dumper=getattr(yaml, "CSafeDumper",
                                                                                   yaml.SafeDumper)))
    (root / "plan.json").write_text(json.dumps({"placements": placements}))
    config = {"bundle": ["bundle"], "current": "plan.json", "stateFile": "state/accepted.yaml",
              "tokens": [{"name": "ops", "sha256": hash_token(TOKEN), "admin": True}],
              "limits": {"maxWorkloadsPerRequest": 50, "timeLimitSeconds": 30, "maxTimeLimitSeconds": 120,
                         "maxRequestBytes": 4 << 20}}
    path = root / "berth.yaml"
    path.write_text(yaml.safe_dump(config))
    return path


def _ms(values: list[float]) -> dict[str, float]:
    return {"n": len(values), "p50_ms": round(1000 * _p(values, 0.5), 2), "p99_ms": round(1000 * _p(values, 0.99), 2)}


def engine_calls(config: Path, calls: int, today: int) -> dict[str, Any]:
    """Single-workload dry runs in-process: fast path, then today's path."""
    from adapters.api import load_config
    from adapters.api.state import Principal, ServiceState, parse_request_documents

    started = time.perf_counter()
    state = ServiceState(load_config(config))
    loaded = time.perf_counter() - started
    started = time.perf_counter()
    state.fast.start(background=False)
    gc.freeze()  # as ServiceState.start does: the fleet's objects stay out of the collector's full passes
    warmed = time.perf_counter() - started
    admin = Principal("ops", True)
    out: dict[str, Any] = {"load_s": round(loaded, 1), "warm_check_s": round(warmed, 1),
                           "warm_status": state.fast.status}
    for name, n, fast in (("fast", calls, True), ("today", today, False)):
        state.fast.checked = fast and state.fast.status == "ready"
        seconds: list[float] = []
        for i in range(n):
            items = parse_request_documents([_small_workload(f"probe-{i}", TENANTS[i % 4])], kinds=("Workload",),
                                            principal=admin)
            t0 = time.perf_counter()
            plan, ok, _ = state.place(admin, items, dry_run=True, time_limit=120)
            seconds.append(time.perf_counter() - t0)
            assert ok, plan.unplaced
        out[name] = _ms(seconds)
    return out


def http_calls(config: Path, calls: int, sustained: int, threads: int, commits: int, today: int
               ) -> dict[str, Any]:
    """Dry runs and committed placements through a real ``berth serve``; then dry runs on today's path
    (the same server with ``BERTH_FAST_PATH=off``)."""
    from tests.serve_process import ServerProcess

    headers = {"Authorization": f"Bearer {TOKEN}"}
    out: dict[str, Any] = {}
    slow = ServerProcess(config, config.parent / "serve-today.log", env={"BERTH_FAST_PATH": "off"}).start(timeout=600)
    try:
        with httpx.Client(base_url=slow.url, timeout=900, headers=headers) as client:
            for dry in (True, False):  # dry runs, then committed placements, one client, one at a time
                seconds = []
                started = time.perf_counter()
                for i in range(today):
                    t0 = time.perf_counter()
                    r = client.post("/v1/placements", json={"documents": [_small_workload(
                        f"t{'d' if dry else 'c'}-{i}", TENANTS[i % 4])], "dryRun": dry})
                    assert r.status_code == (200 if dry else 201), r.text[:300]
                    seconds.append(time.perf_counter() - t0)
                rate = round(today / (time.perf_counter() - started), 2)
                out["today_dry_sequential" if dry else "today_commit_sequential"] = {**_ms(seconds), "per_s": rate}
    finally:
        slow.stop()
    server = ServerProcess(config, config.parent / "serve.log").start(timeout=600)
    try:
        with httpx.Client(base_url=server.url, timeout=600, headers=headers) as client:
            deadline = time.monotonic() + 600
            while client.get("/readyz").json().get("fastPath") not in ("ready", None) and time.monotonic() < deadline:
                time.sleep(1)

            def post(i: int, dry: bool, c: httpx.Client = client) -> float:
                t0 = time.perf_counter()
                r = c.post("/v1/placements", json={"documents": [_small_workload(f"h{'d' if dry else 'c'}-{i}",
                                                                           TENANTS[i % 4])], "dryRun": dry})
                assert r.status_code == (200 if dry else 201), r.text[:300]
                return time.perf_counter() - t0

            out["dry_sequential"] = _ms([post(i, True) for i in range(calls)])

            def many(n: int, dry: bool, offset: int) -> dict[str, Any]:
                """``n`` calls from ``threads`` clients, each on its own keep-alive connection (the standard
                library's, which costs the shared cores far less than httpx: the server is what is measured)."""
                local = threading.local()
                port = int(server.url.rsplit(":", 1)[1])

                def one(i: int) -> float:
                    if not hasattr(local, "conn"):
                        local.conn = http.client.HTTPConnection("127.0.0.1", port, timeout=600)
                        opened.append(local.conn)
                    body = json.dumps({"documents": [_small_workload(f"h{'d' if dry else 'c'}-{offset + i}",
                                                                     TENANTS[i % 4])], "dryRun": dry})
                    t0 = time.perf_counter()
                    local.conn.request("POST", "/v1/placements", body=body,
                                       headers={**headers, "Content-Type": "application/json"})
                    r = local.conn.getresponse()
                    text = r.read()
                    assert r.status == (200 if dry else 201), text[:300]
                    return time.perf_counter() - t0

                opened: list[http.client.HTTPConnection] = []
                t0 = time.perf_counter()
                with cf.ThreadPoolExecutor(max_workers=threads) as pool:
                    seconds = list(pool.map(one, range(n)))
                wall = time.perf_counter() - t0
                for c in opened:
                    c.close()
                return {**_ms(seconds), "per_s": round(n / wall, 1), "threads": threads}

            out["dry_sustained"] = many(sustained, True, 10_000)
            out["committed_sustained"] = many(commits, False, 20_000)
            metrics = client.get("/metrics").text
            out["fast_path"] = {line.split("{", 1)[1].split("}")[0]: float(line.rsplit(" ", 1)[1])
                                for line in metrics.splitlines() if line.startswith("berth_fast_path_total{")}
            out["commit_groups"] = _groups(metrics)
    finally:
        server.stop()
    return out


def _groups(metrics: str) -> dict[str, Any]:
    """Commit groups from ``berth_commit_group_size``: how many, their mean size, the bucket of the largest."""
    values: dict[str, float] = {}
    buckets: list[tuple[float, float]] = []
    for line in metrics.splitlines():
        if line.startswith("berth_commit_group_size_bucket{"):
            le = line.split('le="', 1)[1].split('"', 1)[0]
            buckets.append((float(le), float(line.rsplit(" ", 1)[1])))
        elif line.startswith(("berth_commit_group_size_sum", "berth_commit_group_size_count")):
            name, value = line.rsplit(" ", 1)
            values[name.rsplit("_", 1)[1]] = float(value)
    count = values.get("count", 0.0)
    largest = next((le for le, n in sorted(buckets) if n >= count), None) if count else None
    return {"groups": int(count), "mean": round(values.get("sum", 0.0) / count, 1) if count else None,
            "largest": None if largest is None else f"<= {largest:g}"}


def fleet_scale(args: argparse.Namespace) -> None:
    """Issue 16's figures: one fleet of ``--clusters`` with ``--committed`` workloads committed."""
    with tempfile.TemporaryDirectory(prefix="berth-fleet-") as tmp:
        root = Path(tmp)
        t0 = time.perf_counter()
        config = fleet_setup(root, args.clusters, args.committed[0])
        print({"setup_s": round(time.perf_counter() - t0, 1), "clusters": args.clusters,
               "committed": args.committed[0]}, flush=True)
        result: dict[str, Any] = {"clusters": args.clusters, "committed": args.committed[0],
                                  "engine": engine_calls(config, args.requests, args.today)}
        print({"engine": result["engine"]}, flush=True)
        result["http"] = http_calls(config, args.requests, args.sustained, args.threads, args.commits, args.today)
        print({"http": result["http"]}, flush=True)
        if args.json is not None:
            args.json.write_text(json.dumps(result, indent=1))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--committed", type=int, nargs="+", default=[0, 200])
    parser.add_argument("--requests", type=int, default=200)
    parser.add_argument("--threads", type=int, default=32)
    parser.add_argument("--dry-share", type=float, default=0.5)
    parser.add_argument("--clusters", type=int, default=40)
    parser.add_argument("--code", type=Path, default=None, help="run the server from this source tree")
    parser.add_argument("--fleet-scale", action="store_true", help="issue 16's figures (see the module docstring)")
    parser.add_argument("--today", type=int, default=3, help="fleet scale: calls on today's path")
    parser.add_argument("--sustained", type=int, default=400, help="fleet scale: dry runs for the rate")
    parser.add_argument("--commits", type=int, default=200, help="fleet scale: placements for the rate")
    parser.add_argument("--json", type=Path, default=None, help="fleet scale: write the figures here as JSON")
    args = parser.parse_args()
    if args.fleet_scale:
        fleet_scale(args)
        return
    for n in args.committed:
        print(run(n, args.requests, args.threads, args.dry_share, args.clusters, args.code), flush=True)


if __name__ == "__main__":
    main()
