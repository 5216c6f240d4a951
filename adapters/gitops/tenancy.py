"""Tenant isolation in every cluster (EMCO's logical clouds), as objects of ``namespaces.yaml``.

For each namespace that has a Tenant document and each cluster it uses, the cluster folder
carries, beside the Namespace:

- a ResourceQuota ``berth-tenant`` whose ``hard`` is what the plan places there for the tenant
  (replicas x requests of its workloads, and one pod per replica) plus ``spec.headroom``;
- a LimitRange ``berth-tenant`` when the Tenant gives ``spec.limitRange``;
- a RoleBinding ``berth-tenant`` of ``spec.groups`` to the ClusterRole ``spec.clusterRole``
  (default ``edit``), when groups are given.

A namespace stays listed after the tenant's last workload leaves the cluster (nothing deletes
it on a drain); its quota is then the headroom alone.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from engine import Tenant, is_byte_resource

__all__ = ["QUOTA_NAME", "k8s_quantity", "quota_hard", "tenancy_objects"]

QUOTA_NAME = "berth-tenant"
LABELS = {"app.kubernetes.io/managed-by": "berth"}
_BINARY = (("Ei", 2**60), ("Pi", 2**50), ("Ti", 2**40), ("Gi", 2**30), ("Mi", 2**20), ("Ki", 2**10))


def k8s_quantity(resource: str, base: int) -> str:
    """Base units (millicores, bytes, units) as the shortest exact Kubernetes quantity."""
    if resource == "cpu":
        return str(base // 1000) if base % 1000 == 0 else f"{base}m"
    if is_byte_resource(resource):
        for suffix, size in _BINARY:
            if base and base % size == 0:
                return f"{base // size}{suffix}"
        return str(base)
    return str(base)


def _quota_key(resource: str) -> str:
    """ResourceQuota ``hard`` name of a request: ``pods`` as is, every other as ``requests.<name>``."""
    return resource if resource == "pods" else f"requests.{resource}"


def quota_hard(placed: Iterable[tuple[int, Mapping[str, int]]], headroom: Mapping[str, int]) -> dict[str, str]:
    """``hard`` for replicas x requests of ``placed`` (``(replicas, requests)`` pairs) plus ``headroom``."""
    total: dict[str, int] = {"pods": 0}
    for replicas, requests in placed:
        total["pods"] += replicas
        for resource, amount in requests.items():
            if resource != "pods":
                total[resource] = total.get(resource, 0) + replicas * amount
    for resource, amount in headroom.items():
        total[resource] = total.get(resource, 0) + amount
    return {_quota_key(r): k8s_quantity(r, n) for r, n in sorted(total.items())}


def _limit_range(tenant: Tenant) -> dict[str, Any] | None:
    limits = tenant.spec.limit_range
    if limits is None:
        return None
    items = [item.model_dump(by_alias=True, exclude_none=True) for item in limits.limits]
    return {"limits": [{k: v for k, v in i.items() if v != {}} for i in items]}


def tenancy_objects(namespace: str, tenant: Tenant, placed: Iterable[tuple[int, Mapping[str, int]]],
                    *, annotations: Mapping[str, str] | None = None) -> list[dict[str, Any]]:
    """The ResourceQuota, LimitRange and RoleBinding of ``tenant`` in ``namespace`` on one cluster."""

    def meta() -> dict[str, Any]:
        out: dict[str, Any] = {"name": QUOTA_NAME, "namespace": namespace, "labels": dict(LABELS)}
        if annotations:
            out["annotations"] = dict(annotations)
        return out

    objects: list[dict[str, Any]] = [{
        "apiVersion": "v1", "kind": "ResourceQuota", "metadata": meta(),
        "spec": {"hard": quota_hard(placed, tenant.spec.headroom)},
    }]
    limit_range = _limit_range(tenant)
    if limit_range is not None:
        objects.append({"apiVersion": "v1", "kind": "LimitRange", "metadata": meta(), "spec": limit_range})
    if tenant.spec.groups:
        objects.append({
            "apiVersion": "rbac.authorization.k8s.io/v1", "kind": "RoleBinding", "metadata": meta(),
            "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole",
                        "name": tenant.spec.cluster_role},
            "subjects": [{"apiGroup": "rbac.authorization.k8s.io", "kind": "Group", "name": g}
                         for g in tenant.spec.groups],
        })
    return objects

