"""Tenant isolation in every cluster: Namespace, ResourceQuota, LimitRange and RoleBinding per tenant."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml

from adapters.gitops import FORMATS, render_cluster, write_plan
from adapters.gitops.tenancy import k8s_quantity
from engine.documents.load import load_bundle
from engine.errors import InputError
from tests.test_gitops_support import BUNDLE, PLAN_A, git, make_plan, write_bundle
from tests.upstream_schemas import errors_of

TENANT = """\
---
apiVersion: placement.berth.dev/v1alpha1
kind: Tenant
metadata: {name: retail}
spec:
  headroom: {cpu: "1", memory: 1Gi}
  limitRange:
    limits:
      - {type: Container, default: {cpu: 500m, memory: 256Mi}, defaultRequest: {cpu: 100m, memory: 64Mi}}
  groups: [retail-devs, retail-ops]
  clusterRole: edit
"""
#: memory requests too, so the quota sums two resources
MEMORY = BUNDLE.replace('resources: {cpu: "1"}, source: {path: apps/kafka}',
                        'resources: {cpu: "1", memory: 2Gi}, source: {path: apps/kafka}')


def _bundle(tmp_path: Path, extra: str = TENANT) -> Path:
    path = write_bundle(tmp_path)
    path.write_text(MEMORY + extra)
    return path


def _of(objects: list[dict[str, Any]], kind: str, namespace: str) -> list[dict[str, Any]]:
    return [o for o in objects if o["kind"] == kind and o["metadata"].get("namespace") == namespace]


@pytest.mark.parametrize("fmt", sorted(FORMATS))
def test_each_cluster_carries_the_tenants_namespace_quota_limits_and_rbac(tmp_path: Path, fmt: str) -> None:
    bundle = load_bundle([_bundle(tmp_path)])
    repo = tmp_path / "deploy"
    write_plan(bundle, make_plan(PLAN_A), repo, fmt=fmt, commit=False)
    # what PLAN_A places for retail, plus the headroom (1 cpu, 1Gi):
    expected = {
        # kafka 3 x (1 cpu, 2Gi), cache 1 x 1 cpu, batch 2 x 2 cpu (no source: still placed there)
        "cloud-1": {"requests.cpu": "9", "requests.memory": "7Gi", "pods": "6"},
        "edge-a": {"requests.cpu": "3", "requests.memory": "1Gi", "pods": "3"},  # cache 1, web 2 x 500m
        "edge-b": {"requests.cpu": "2", "requests.memory": "1Gi", "pods": "2"},  # web 2 x 500m
    }
    for cluster, hard in expected.items():
        objects = render_cluster(repo, cluster)
        assert [o["metadata"]["name"] for o in objects if o["kind"] == "Namespace" and
                o["metadata"]["name"] == "retail"] == ["retail"], cluster
        (quota,) = _of(objects, "ResourceQuota", "retail")
        assert quota["spec"]["hard"] == hard, cluster
        (limits,) = _of(objects, "LimitRange", "retail")
        assert limits["spec"]["limits"][0]["default"] == {"cpu": "500m", "memory": "256Mi"}
        (binding,) = _of(objects, "RoleBinding", "retail")
        assert binding["roleRef"] == {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": "edit"}
        assert [s["name"] for s in binding["subjects"]] == ["retail-devs", "retail-ops"]
        # a namespace without a Tenant document gets its Namespace only
        assert not [o for o in objects if o["metadata"].get("namespace") == "telco"
                    and o["kind"] in ("ResourceQuota", "LimitRange", "RoleBinding")]
        for obj in objects:
            if obj["kind"] in ("Namespace", "ResourceQuota", "LimitRange", "RoleBinding"):
                assert errors_of(obj) == [], (cluster, obj["kind"])


#: Azure Arc needs a remote URL Azure can clone (a clone without one is refused)
REPO_URL = "https://git.example.com/deploy.git"


@pytest.mark.parametrize("fmt", sorted(FORMATS))
def test_a_drain_keeps_the_namespace_and_shrinks_the_quota_to_the_headroom(tmp_path: Path, fmt: str) -> None:
    bundle = load_bundle([_bundle(tmp_path)])
    repo = tmp_path / "deploy"
    write_plan(bundle, make_plan(PLAN_A), repo, fmt=fmt, repo_url=REPO_URL)
    drained = {**PLAN_A, "retail/web": {"cloud-1": 4}, "retail/cache": {"cloud-1": 2}}  # retail leaves edge-a
    write_plan(bundle, make_plan(drained), repo, fmt=fmt, repo_url=REPO_URL)
    assert git(repo, "status", "--porcelain") == ""
    objects = render_cluster(repo, "edge-a")
    namespaces = [o for o in objects if o["kind"] == "Namespace"]
    assert [n["metadata"]["name"] for n in namespaces] == ["retail"]
    assert not [o for o in objects if o["kind"] in ("Deployment", "StatefulSet")]
    (quota,) = _of(objects, "ResourceQuota", "retail")
    assert quota["spec"]["hard"] == {"requests.cpu": "1", "requests.memory": "1Gi", "pods": "0"}
    # and a cluster that loses every workload of every tenant keeps them all
    write_plan(bundle, make_plan({k: {"cloud-1": sum(v.values())} for k, v in PLAN_A.items()}), repo, fmt=fmt,
               repo_url=REPO_URL)
    edge_b = {o["metadata"]["name"] for o in render_cluster(repo, "edge-b") if o["kind"] == "Namespace"}
    assert edge_b == {"retail", "telco"}


def test_namespaces_are_annotated_never_to_be_pruned_but_the_quota_is(tmp_path: Path) -> None:
    bundle = load_bundle([_bundle(tmp_path)])
    repo = tmp_path / "deploy"
    write_plan(bundle, make_plan(PLAN_A), repo, fmt="argocd", commit=False)
    docs = list(yaml.safe_load_all((repo / "clusters/edge-a/namespaces.yaml").read_text()))
    by_kind = {d["kind"]: d for d in docs}
    options = by_kind["Namespace"]["metadata"]["annotations"]["argocd.argoproj.io/sync-options"]
    assert options == "Prune=false,Delete=false"
    assert by_kind["ResourceQuota"]["metadata"]["annotations"] == {"argocd.argoproj.io/sync-wave": "-1"}


def test_a_bad_limit_range_quantity_is_an_input_error(tmp_path: Path) -> None:
    path = _bundle(tmp_path, TENANT.replace("default: {cpu: 500m", "default: {cpu: lots"))
    with pytest.raises(InputError) as caught:
        load_bundle([path])
    assert caught.value.field is not None and caught.value.field.startswith("spec.limitRange.limits[0].default")


@pytest.mark.parametrize(("resource", "base", "text"), [
    ("cpu", 1500, "1500m"), ("cpu", 3000, "3"), ("memory", 3 * 2**30, "3Gi"), ("memory", 1536 * 2**20, "1536Mi"),
    ("memory", 1000, "1000"), ("nvidia.com/gpu", 2, "2"),
])
def test_quantities_are_written_exactly(resource: str, base: int, text: str) -> None:
    assert k8s_quantity(resource, base) == text


def test_the_example_isolates_its_tenant_and_connects_kafka(tmp_path: Path) -> None:
    from engine.planner import place

    bundle = load_bundle([Path(__file__).resolve().parent.parent / "examples" / "emco"])
    repo = tmp_path / "deploy"
    write_plan(bundle, place(bundle, time_limit=10), repo, commit=False)
    cloud, edge = render_cluster(repo, "cloud-eu-1"), render_cluster(repo, "edge-us-1")
    assert [o["kind"] for o in cloud if o["kind"].startswith("Service") and o["kind"] != "Service"] == ["ServiceExport"]
    assert [o["metadata"]["name"] for o in edge if o["kind"] == "ServiceImport"] == ["kafka"]
    (quota,) = _of(edge, "ResourceQuota", "retail")
    # cache 1 x (500m, 1Gi) and web 2 x (500m, 512Mi) there, plus the headroom (1 cpu, 2Gi, 2 pods)
    assert quota["spec"]["hard"] == {"requests.cpu": "2500m", "requests.memory": "4Gi", "pods": "5"}


def test_a_cluster_running_only_workloads_without_source_still_gets_the_namespace_and_quota(tmp_path: Path) -> None:
    bundle = load_bundle([_bundle(tmp_path)])
    repo = tmp_path / "deploy"
    plan = {"retail/kafka": {"cloud-1": 3}, "retail/batch": {"edge-b": 2}, "telco/web": {"edge-a": 2}}
    write_plan(bundle, make_plan(plan), repo, fmt="flux", commit=False)
    objects = render_cluster(repo, "edge-b")
    assert [o["metadata"]["name"] for o in objects if o["kind"] == "Namespace"] == ["retail"]
    (quota,) = _of(objects, "ResourceQuota", "retail")
    assert quota["spec"]["hard"] == {"requests.cpu": "5", "requests.memory": "1Gi", "pods": "2"}
