"""Every format's cluster folders build with real ``kubectl kustomize`` to the planned replicas."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
import yaml

from adapters.gitops import FORMATS, read_current, render_cluster, write_plan
from adapters.gitops.render import build
from engine.documents.bundle import Bundle
from engine.plan import diff_moves
from tests.test_gitops_support import (
    CLUSTERS,
    PLAN_A,
    PLAN_B,
    make_bundle,
    make_plan,
    replicas_of,
)

REPO_URL = "https://git.example.com/deploy.git"
EXPECTED_FLUX_SPEC = {"interval", "prune", "wait", "sourceRef", "path", "timeout"}


@pytest.fixture
def bundle(tmp_path: Path) -> Bundle:
    return make_bundle(tmp_path)


def _per_cluster(assignment: dict[str, dict[str, int]], *, sourced: bool = True) -> dict[str, Any]:
    out: dict[str, dict[str, int]] = {c: {} for c in CLUSTERS}
    for key, per in assignment.items():
        if sourced and key == "retail/batch":  # no source: recorded, never rendered
            continue
        for cluster, n in per.items():
            out[cluster][key] = n
    return out


@pytest.mark.parametrize("fmt", sorted(FORMATS))
@pytest.mark.parametrize("assignment", [PLAN_A, PLAN_B], ids=["plan-a", "plan-b"])
def test_every_cluster_renders_to_the_planned_replicas(
    bundle: Bundle, tmp_path: Path, fmt: str, assignment: dict[str, dict[str, int]]
) -> None:
    repo = tmp_path / "deploy"
    write_plan(bundle, make_plan(assignment), repo, fmt=fmt, repo_url=REPO_URL)
    expected = _per_cluster(assignment)
    for cluster in CLUSTERS:
        objects = render_cluster(repo, cluster)
        assert replicas_of(objects) == expected[cluster], (fmt, cluster)
        # every workload object lands in its namespace, and that namespace is declared
        namespaces = {o["metadata"]["name"] for o in objects if o["kind"] == "Namespace"}
        for obj in objects:
            if obj["kind"] in ("Deployment", "StatefulSet", "Service"):
                assert obj["metadata"]["namespace"] in namespaces
    assert read_current(repo) == assignment
    assert diff_moves(read_current(repo), make_plan(assignment).assignment()) == []


def _flux_objects(repo: Path, cluster: str) -> list[dict[str, Any]]:
    return [
        o
        for o in build(repo / "clusters" / cluster)
        if o["apiVersion"] == "kustomize.toolkit.fluxcd.io/v1" and o["kind"] == "Kustomization"
    ]


def test_flux_kustomizations_carry_required_fields_and_a_sound_dependency_graph(
    bundle: Bundle, tmp_path: Path
) -> None:
    repo = tmp_path / "deploy"
    write_plan(bundle, make_plan(PLAN_A), repo, fmt="flux")
    for cluster in CLUSTERS:
        objs = _flux_objects(repo, cluster)
        names = {o["metadata"]["name"] for o in objs}
        graph: dict[str, list[str]] = {}
        for o in objs:
            spec = o["spec"]
            assert set(spec) >= EXPECTED_FLUX_SPEC, spec
            assert o["metadata"]["namespace"] == "flux-system"
            assert spec["prune"] is True and spec["wait"] is True
            assert spec["sourceRef"] == {"kind": "GitRepository", "name": "flux-system"}
            assert spec["path"].startswith(f"./clusters/{cluster}/")
            assert (repo / spec["path"] / "kustomization.yaml").is_file()
            deps = [d["name"] for d in spec.get("dependsOn", [])]
            assert set(deps) <= names, f"{cluster}: {o['metadata']['name']} -> {deps}"
            graph[o["metadata"]["name"]] = deps
        _assert_acyclic(graph)
    # cloud-1 runs kafka and cache: cache waits for kafka
    cloud = {o["metadata"]["name"]: o for o in _flux_objects(repo, "cloud-1")}
    assert cloud["retail.cache"]["spec"]["dependsOn"] == [{"name": "retail.kafka"}]
    # edge-a runs cache and web but not kafka: web waits for cache, cache for nothing here
    edge = {o["metadata"]["name"]: o for o in _flux_objects(repo, "edge-a")}
    assert edge["retail.web"]["spec"]["dependsOn"] == [{"name": "retail.cache"}]
    assert "dependsOn" not in edge["retail.cache"]["spec"]


def _assert_acyclic(graph: dict[str, list[str]]) -> None:
    state: dict[str, int] = {}

    def visit(node: str) -> None:
        assert state.get(node) != 1, f"dependsOn cycle through {node}"
        if state.get(node) == 2:
            return
        state[node] = 1
        for dep in graph.get(node, []):
            visit(dep)
        state[node] = 2

    for node in graph:
        visit(node)


def test_dependency_through_an_absent_workload_is_kept_transitively(
    bundle: Bundle, tmp_path: Path
) -> None:
    # web -> cache -> kafka; on cloud-1 only web and kafka: web must wait for kafka
    plan = make_plan({"retail/kafka": {"cloud-1": 3}, "retail/web": {"cloud-1": 4}})
    repo = tmp_path / "deploy"
    write_plan(bundle, plan, repo, fmt="flux")
    objs = {o["metadata"]["name"]: o for o in _flux_objects(repo, "cloud-1")}
    assert objs["retail.web"]["spec"]["dependsOn"] == [{"name": "retail.kafka"}]


def test_argocd_sync_waves_follow_dependency_depth_within_each_chain(bundle: Bundle, tmp_path: Path) -> None:
    repo = tmp_path / "deploy"
    plan = make_plan({**PLAN_A, "retail/web": {"cloud-1": 4}, "telco/web": {"cloud-1": 2}})
    write_plan(bundle, plan, repo, fmt="argocd")
    cluster = repo / "clusters" / "cloud-1"
    apps = {a["metadata"]["name"]: a for a in yaml.safe_load_all((cluster / "argocd-application.yaml").read_text())}
    # the cluster folder (namespaces) and one Application per dependency chain: kafka <- cache <- web is
    # one chain, telco/web (unrelated) another, so it never waits for kafka's wave
    assert sorted(apps) == ["berth-cloud-1", "berth-cloud-1.retail.kafka", "berth-cloud-1.telco.web"]
    assert apps["berth-cloud-1"]["spec"]["source"]["path"] == "clusters/cloud-1"
    assert apps["berth-cloud-1"]["spec"]["destination"]["name"] == "cloud-1"
    for app in apps.values():
        assert app["spec"]["syncPolicy"]["automated"] == {"prune": True, "selfHeal": True, "allowEmpty": True}
    namespaces = build(cluster)
    assert {(o["kind"], o["metadata"]["name"]) for o in namespaces} == {("Namespace", "retail"), ("Namespace", "telco")}
    for ns in namespaces:
        assert ns["metadata"]["annotations"]["argocd.argoproj.io/sync-options"] == "Prune=false,Delete=false"
        assert ns["metadata"]["annotations"]["argocd.argoproj.io/sync-wave"] == "-1"

    def waves(app: str) -> dict[tuple[str, str], str]:
        objects = build(repo / apps[app]["spec"]["source"]["path"])
        return {(o["kind"], o["metadata"]["name"]): o["metadata"]["annotations"]["argocd.argoproj.io/sync-wave"]
                for o in objects}

    retail = waves("berth-cloud-1.retail.kafka")
    assert retail[("StatefulSet", "kafka")] == "0"
    assert retail[("Deployment", "cache")] == retail[("Service", "cache")] == "1"
    assert retail[("Deployment", "web")] == "2"
    assert waves("berth-cloud-1.telco.web") == {("Deployment", "web"): "0", ("Service", "web"): "0"}
    assert apps["berth-cloud-1.telco.web"]["spec"]["destination"] == {"name": "cloud-1", "namespace": "telco"}


def test_argocd_applicationset_outside_cluster_folders_yields_the_same_applications(
    bundle: Bundle, tmp_path: Path
) -> None:
    repo = tmp_path / "deploy"
    write_plan(bundle, make_plan(PLAN_A), repo, fmt="argocd", repo_url=REPO_URL)
    sets = {s["metadata"]["name"]: s for s in yaml.safe_load_all((repo / "argocd/applicationset.yaml").read_text())}
    assert sorted(sets) == ["berth-chains", "berth-clusters"]
    # expand each git directory generator over the repository as Argo CD would (path, basename, segments)
    made: dict[str, dict[str, Any]] = {}
    for appset in sets.values():
        (gen,) = appset["spec"]["generators"]
        assert gen["git"]["repoURL"] == REPO_URL
        for folder in sorted(repo.glob(gen["git"]["directories"][0]["path"])):
            if not folder.is_dir():
                continue
            rel = folder.relative_to(repo).as_posix()
            made.update(_expand(appset["spec"]["template"], rel))
    for cluster in CLUSTERS:
        for app in yaml.safe_load_all((repo / "clusters" / cluster / "argocd-application.yaml").read_text()):
            name = app["metadata"]["name"]
            assert name in made, name
            assert made[name]["spec"] == app["spec"], name
    assert len(made) == sum(
        len(list(yaml.safe_load_all((repo / "clusters" / c / "argocd-application.yaml").read_text())))
        for c in CLUSTERS)


def _expand(template: dict[str, Any], path: str) -> dict[str, dict[str, Any]]:
    """The ApplicationSet goTemplate fields Berth uses, filled in for one generated folder."""
    segments = path.split("/")

    def fill(value: Any) -> Any:
        if isinstance(value, dict):
            return {k: fill(v) for k, v in value.items()}
        if isinstance(value, list):
            return [fill(v) for v in value]
        if isinstance(value, str):
            value = value.replace("{{.path.path}}", path).replace("{{.path.basename}}", segments[-1])
            for i, seg in enumerate(segments):
                value = value.replace(f"{{{{index .path.segments {i}}}}}", seg)
            assert "{{" not in value, value
        return value

    app = fill(template)
    return {app["metadata"]["name"]: app}


def test_configsync_depends_on_names_objects_of_the_same_cluster(
    bundle: Bundle, tmp_path: Path
) -> None:
    repo = tmp_path / "deploy"
    write_plan(bundle, make_plan(PLAN_A), repo, fmt="configsync")
    for cluster in CLUSTERS:
        objects = build(repo / "clusters" / cluster)
        present = {
            f"{o['apiVersion'].split('/')[0] if '/' in o['apiVersion'] else ''}/namespaces/"
            f"{o['metadata'].get('namespace')}/{o['kind']}/{o['metadata']['name']}"
            for o in objects
        }
        for o in objects:
            ref = o["metadata"].get("annotations", {}).get("config.kubernetes.io/depends-on")
            if ref:
                assert set(ref.split(",")) <= present, (cluster, ref)
    objects = build(repo / "clusters" / "cloud-1")
    cache = next(o for o in objects if o["kind"] == "Deployment" and o["metadata"]["name"] == "cache")
    assert (
        cache["metadata"]["annotations"]["config.kubernetes.io/depends-on"]
        == "apps/namespaces/retail/StatefulSet/kafka"
    )
    sync = yaml.safe_load((repo / "clusters/cloud-1/rootsync.yaml").read_text())
    assert sync["kind"] == "RootSync"
    assert sync["spec"]["sourceFormat"] == "unstructured"
    assert sync["spec"]["git"]["dir"] == "clusters/cloud-1"


def test_arc_configuration_json_and_command_agree(bundle: Bundle, tmp_path: Path) -> None:
    repo = tmp_path / "deploy"
    write_plan(bundle, make_plan(PLAN_A), repo, fmt="arc", repo_url=REPO_URL)
    config = json.loads((repo / "clusters/cloud-1/arc-flux-configuration.json").read_text())
    props = config["properties"]
    assert props["sourceKind"] == "GitRepository"
    assert props["gitRepository"]["repositoryRef"] == {"branch": "main"}
    kust = props["kustomizations"]
    assert set(kust) == {"namespaces", "retail.kafka", "retail.cache"}
    assert kust["retail.cache"]["dependsOn"] == ["namespaces", "retail.kafka"]
    for k in kust.values():
        assert k["prune"] is True
        assert set(k["dependsOn"]) <= set(kust)
        assert (repo / k["path"] / "kustomization.yaml").is_file()
    command = (repo / "clusters/cloud-1/arc-flux-configuration.sh").read_text()
    assert "az k8s-configuration flux create" in command
    for name in kust:
        assert f"--kustomization name={name} " in command
    assert "'dependsOn=[\"namespaces\",\"retail.kafka\"]'" in command


def test_workload_without_source_is_recorded_but_not_rendered(
    bundle: Bundle, tmp_path: Path
) -> None:
    repo = tmp_path / "deploy"
    write_plan(bundle, make_plan({"retail/batch": {"edge-a": 2}}), repo, fmt="flux")
    assert read_current(repo) == {"retail/batch": {"edge-a": 2}}
    assert not (repo / "clusters/edge-a/apps").exists()
    assert not (repo / "bases").exists()
    assert replicas_of(render_cluster(repo, "edge-a")) == {}
