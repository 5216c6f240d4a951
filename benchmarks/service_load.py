"""Bounded load on a real ``berth serve`` (a process on 127.0.0.1, a real git clone): requests/s and p99.

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
import statistics
import subprocess
import tempfile
import time
from pathlib import Path
from typing import Any

import httpx
import yaml

from adapters.api.config import hash_token
from tests.serve_process import ServerProcess

API = "placement.berth.dev/v1alpha1"
TENANTS = ["shop", "pay", "media", "ops"]


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


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--committed", type=int, nargs="+", default=[0, 200])
    parser.add_argument("--requests", type=int, default=200)
    parser.add_argument("--threads", type=int, default=32)
    parser.add_argument("--dry-share", type=float, default=0.5)
    parser.add_argument("--clusters", type=int, default=40)
    parser.add_argument("--code", type=Path, default=None, help="run the server from this source tree")
    args = parser.parse_args()
    for n in args.committed:
        print(run(n, args.requests, args.threads, args.dry_share, args.clusters, args.code), flush=True)


if __name__ == "__main__":
    main()
