"""Connectivity: MCS ServiceExport/ServiceImport (or Istio ServiceEntry) where clients and servers are apart."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from adapters.gitops import FORMATS, render_cluster, write_plan
from engine.documents.load import load_bundle
from engine.errors import InputError
from tests.test_gitops_support import BUNDLE, PLAN_A, PLAN_B, make_plan, write_bundle
from tests.upstream_schemas import errors_of

KINDS = ("ServiceExport", "ServiceImport", "ServiceEntry")


def _bundle(tmp_path: Path, cache_via: str = "mcs") -> Path:
    text = (BUNDLE
            .replace('resources: {cpu: "1"}, source: {path: apps/kafka}',
                     'resources: {cpu: "1"}, source: {path: apps/kafka}, exports: {service: kafka}')
            .replace("dependsOn: [kafka], source: {path: apps/cache}",
                     "dependsOn: [kafka], source: {path: apps/cache}, "
                     f"exports: {{service: cache, via: {cache_via}}}"))
    path = write_bundle(tmp_path)
    path.write_text(text)
    return path


def _links(repo: Path, cluster: str) -> dict[tuple[str, str], dict[str, Any]]:
    return {(o["kind"], o["metadata"]["name"]): o for o in render_cluster(repo, cluster) if o["kind"] in KINDS}


@pytest.mark.parametrize("fmt", sorted(FORMATS))
def test_exports_where_the_service_runs_and_imports_where_its_remote_clients_run(tmp_path: Path, fmt: str) -> None:
    bundle = load_bundle([_bundle(tmp_path)])
    repo = tmp_path / "deploy"
    # PLAN_A: kafka on cloud-1; cache (needs kafka) on edge-a and cloud-1; web (needs cache) on edge-a, edge-b
    write_plan(bundle, make_plan(PLAN_A), repo, fmt=fmt, commit=False)
    cloud, edge_a, edge_b = (_links(repo, c) for c in ("cloud-1", "edge-a", "edge-b"))
    assert set(cloud) == {("ServiceExport", "kafka"), ("ServiceExport", "cache")}
    assert set(edge_a) == {("ServiceImport", "kafka"), ("ServiceExport", "cache"), ("ServiceImport", "cache")}
    assert set(edge_b) == {("ServiceImport", "cache")}  # web's cache runs elsewhere; telco/web exports nothing
    kafka = edge_a[("ServiceImport", "kafka")]
    assert kafka["apiVersion"] == "multicluster.x-k8s.io/v1alpha1" and kafka["metadata"]["namespace"] == "retail"
    assert kafka["spec"] == {"type": "ClusterSetIP", "ports": [{"name": "port-80", "port": 80, "protocol": "TCP"}]}
    for obj in [*cloud.values(), *edge_a.values(), *edge_b.values()]:
        assert errors_of(obj) == [], obj


def test_objects_follow_the_placement_when_it_moves(tmp_path: Path) -> None:
    bundle = load_bundle([_bundle(tmp_path)])
    repo = tmp_path / "deploy"
    write_plan(bundle, make_plan(PLAN_A), repo)
    write_plan(bundle, make_plan(PLAN_B), repo)  # web moves from edge-b to cloud-1
    assert _links(repo, "edge-b") == {}
    assert ("ServiceImport", "cache") in _links(repo, "cloud-1")
    together = {k: {"cloud-1": sum(v.values())} for k, v in PLAN_A.items()}
    write_plan(bundle, make_plan(together), repo)  # everything on one cluster: nothing to connect
    assert all(_links(repo, c) == {} for c in ("cloud-1", "edge-a", "edge-b"))


@pytest.mark.parametrize("fmt", sorted(FORMATS))
def test_istio_service_entries_instead(tmp_path: Path, fmt: str) -> None:
    bundle = load_bundle([_bundle(tmp_path, cache_via="istio")])
    repo = tmp_path / "deploy"
    write_plan(bundle, make_plan(PLAN_A), repo, fmt=fmt, commit=False)
    edge_b = _links(repo, "edge-b")
    assert set(edge_b) == {("ServiceEntry", "cache")}
    entry = edge_b[("ServiceEntry", "cache")]
    assert entry["apiVersion"] == "networking.istio.io/v1"
    assert entry["spec"]["hosts"] == ["cache.retail.svc.clusterset.local"]
    assert [e["network"] for e in entry["spec"]["endpoints"]] == ["cloud-1", "edge-a"]
    assert entry["spec"]["ports"] == [{"name": "port-80", "number": 80, "protocol": "TCP"}]
    assert errors_of(entry) == []
    assert ("ServiceExport", "cache") not in _links(repo, "edge-a")  # the mesh, not MCS, carries it


def test_a_service_the_base_lacks_is_an_input_error(tmp_path: Path) -> None:
    path = _bundle(tmp_path)
    path.write_text(path.read_text().replace("exports: {service: kafka}", "exports: {service: kafka-broker}"))
    with pytest.raises(InputError) as caught:
        write_plan(load_bundle([path]), make_plan(PLAN_A), tmp_path / "deploy", commit=False)
    assert caught.value.field == "spec.exports.service" and caught.value.file == str(path)
    assert "kafka-broker" in str(caught.value)


def test_exports_without_a_base_is_an_input_error(tmp_path: Path) -> None:
    path = _bundle(tmp_path)
    path.write_text(path.read_text().replace("spec: {replicas: 2, resources: {cpu: \"2\"}}",
                                             "spec: {replicas: 2, resources: {cpu: \"2\"}, exports: {service: batch}}"))
    with pytest.raises(InputError) as caught:
        load_bundle([path])
    assert caught.value.document is not None and "retail/batch" in caught.value.document
    assert "give spec.source too" in str(caught.value)
