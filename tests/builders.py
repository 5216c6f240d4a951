"""Small builders for bundles in tests: documents as plain dicts, like YAML would give."""

from __future__ import annotations

from typing import Any

from engine.documents.bundle import Bundle
from engine.documents.load import load_documents
from engine.plan import Plan
from engine.planner import place

API = "placement.berth.dev/v1alpha1"


def cluster(name: str, *, labels: dict[str, str] | None = None, **spec: Any) -> dict[str, Any]:
    spec.setdefault("capacity", {"cpu": "8", "memory": "32Gi"})
    return {"apiVersion": API, "kind": "Cluster",
            "metadata": {"name": name, "labels": labels or {}}, "spec": spec}


def site(name: str, latency: dict[str, float]) -> dict[str, Any]:
    return {"apiVersion": API, "kind": "Site", "metadata": {"name": name},
            "spec": {"latencyMs": latency}}


def tenant(name: str, **spec: Any) -> dict[str, Any]:
    return {"apiVersion": API, "kind": "Tenant", "metadata": {"name": name}, "spec": spec}


def policy(name: str, namespace: str = "default", **spec: Any) -> dict[str, Any]:
    return {"apiVersion": API, "kind": "PlacementPolicy",
            "metadata": {"name": name, "namespace": namespace}, "spec": spec}


def workload(
    name: str, replicas: int = 1, *, namespace: str = "default", cpu: str = "1",
    resources: dict[str, Any] | None = None, **spec: Any
) -> dict[str, Any]:
    spec["replicas"] = replicas
    spec["resources"] = resources if resources is not None else {"cpu": cpu}
    return {"apiVersion": API, "kind": "Workload",
            "metadata": {"name": name, "namespace": namespace}, "spec": spec}


def objective(**spec: Any) -> dict[str, Any]:
    return {"apiVersion": API, "kind": "Objective", "metadata": {"name": "objective"}, "spec": spec}


def bundle_of(*docs: dict[str, Any]) -> Bundle:
    return load_documents(list(docs), source="test")


def solve(*docs: dict[str, Any], current: dict[str, dict[str, int]] | None = None,
          time_limit: float = 10.0) -> Plan:
    """Place and verify (``place`` raises when the independent verifier objects)."""
    return place(bundle_of(*docs), current=current, time_limit=time_limit)


def where(plan: Plan, workload: str) -> dict[str, int]:
    key = workload if "/" in workload else f"default/{workload}"
    return plan.assignment().get(key, {})


def reasons(plan: Plan, workload: str) -> list[str]:
    key = workload if "/" in workload else f"default/{workload}"
    for u in plan.unplaced:
        if u.workload == key:
            return [r.code for r in u.reasons]
    return []


def messages(plan: Plan, workload: str) -> str:
    key = workload if "/" in workload else f"default/{workload}"
    return " ".join(r.message for u in plan.unplaced if u.workload == key for r in u.reasons)
