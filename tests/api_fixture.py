"""A real uvicorn server on 127.0.0.1 in a thread, for the HTTP tests."""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import uvicorn
import yaml

from adapters.api import create_app, hash_token, load_config
from adapters.api.state import ServiceState

API = "placement.berth.dev/v1alpha1"
ADMIN = "admin-secret-token"
RETAIL = "retail-secret-token"
PAYMENTS = "payments-secret-token"


def cluster(name: str, region: str, cpu: str, *, labels: dict[str, str] | None = None,
            price: str = "0.04") -> dict[str, Any]:
    return {"apiVersion": API, "kind": "Cluster", "metadata": {"name": name, "labels": labels or {}},
            "spec": {"region": region, "capacity": {"cpu": cpu, "memory": "64Gi", "pods": 110},
                     "price": {"cpu": price, "memory": "0.005"}}}


def workload(name: str, ns: str, *, replicas: int = 1, cpu: str = "1", priority: int = 0,
             policy: str | None = None) -> dict[str, Any]:
    spec: dict[str, Any] = {"replicas": replicas, "resources": {"cpu": cpu, "memory": "1Gi"}, "priority": priority}
    if policy:
        spec["policy"] = policy
    return {"apiVersion": API, "kind": "Workload", "metadata": {"name": name, "namespace": ns}, "spec": spec}


FLEET = [
    cluster("eu-1", "eu", "4", labels={"tier": "edge"}),
    cluster("eu-2", "eu", "3", labels={"tier": "edge"}, price="0.05"),
    cluster("us-1", "us", "3", labels={"tier": "cloud"}, price="0.08"),
    {"apiVersion": API, "kind": "Site", "metadata": {"name": "paris"},
     "spec": {"latencyMs": {"eu-1": 3, "eu-2": 8, "us-1": 90}}},
    {"apiVersion": API, "kind": "Tenant", "metadata": {"name": "payments"},
     "spec": {"clusterSelector": {"matchLabels": {"tier": "edge"}}, "quota": {"cpu": "4"}}},
]


def write_service(tmp: Path, *, extra: dict[str, Any] | None = None, docs: list[dict[str, Any]] | None = None
                  ) -> Path:
    (tmp / "bundle").mkdir(parents=True, exist_ok=True)
    (tmp / "bundle" / "fleet.yaml").write_text(yaml.safe_dump_all(docs or FLEET), encoding="utf-8")
    config: dict[str, Any] = {
        "bundle": ["bundle"],
        "tokens": [
            {"name": "ops", "sha256": hash_token(ADMIN), "admin": True},
            {"name": "retail-ci", "sha256": hash_token(RETAIL), "namespaces": ["retail"]},
            {"name": "payments-ci", "sha256": hash_token(PAYMENTS), "namespaces": ["payments"]},
        ],
        "limits": {"maxRequestBytes": 65536, "maxWorkloadsPerRequest": 5, "timeLimitSeconds": 2},
        "stateFile": "state/accepted.yaml",
        **(extra or {}),
    }
    path = tmp / "berth.yaml"
    path.write_text(yaml.safe_dump(config), encoding="utf-8")
    return path


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@contextmanager
def serve(config_path: Path, *, state: ServiceState | None = None) -> Iterator[str]:
    """``state``: the service's own (one made with a ``clock``: live data at explicit times)."""
    app = create_app(state.config if state is not None else load_config(config_path), state=state)
    port = free_port()
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning",
                                           access_log=False, limit_concurrency=400, backlog=512))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 20
    while not server.started:
        if time.monotonic() > deadline or not thread.is_alive():
            raise RuntimeError("uvicorn did not start")
        time.sleep(0.02)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(timeout=10)


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}
