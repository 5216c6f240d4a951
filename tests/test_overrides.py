"""OverridePolicy: per-cluster customisation, rendered as kustomize patches and built with real kubectl."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

from adapters.gitops import FORMATS, render_cluster, write_plan
from adapters.gitops.overrides import Image
from engine.documents.fields import API_VERSION
from engine.documents.load import load_bundle
from engine.errors import InputError
from tests.test_gitops_support import BUNDLE, PLAN_A, git, make_plan, write_bundle
from tests.upstream_schemas import errors_of

BERTH = str(Path(sys.executable).parent / "berth")

LABELLED = (BUNDLE
            .replace("metadata: {name: edge-a}", "metadata: {name: edge-a, labels: {tier: edge, region: eu}}")
            .replace("metadata: {name: edge-b}", "metadata: {name: edge-b, labels: {tier: edge, region: us}}")
            .replace("metadata: {name: web, namespace: retail}",
                     "metadata: {name: web, namespace: retail, labels: {app: web}}"))

POLICIES = """\
---
apiVersion: placement.berth.dev/v1alpha1
kind: OverridePolicy
metadata: {name: edge-web, namespace: retail}
spec:
  resourceSelectors: [{name: web}]
  overrideRules:
    - targetCluster: {labelSelector: {matchLabels: {tier: edge}}}
      overriders:
        imageOverrider:
          - {component: Registry, operator: replace, value: registry.edge.example}
          - {component: Tag, operator: replace, value: "1.28"}
        argsOverrider: [{containerName: web, operator: add, value: [--edge, --cache=64Mi]}]
        labelsOverrider: [{operator: add, value: {placement.example/tier: edge, short: "y"}}]
        annotationsOverrider: [{operator: add, value: {note: edge build}}]
        plaintext:
          - {path: /spec/template/spec/containers/0/env, operator: add, value: [{name: TIER, value: edge}]}
    - targetCluster: {clusterNames: [edge-b]}
      overriders:
        imageOverrider: [{component: Tag, operator: replace, value: "1.29"}]   # later rule wins
        commandOverrider: [{containerName: web, operator: add, value: [nginx, -g, daemon off;]}]
---
apiVersion: placement.berth.dev/v1alpha1
kind: OverridePolicy
metadata: {name: all-retail, namespace: retail}
spec:
  overrideRules:
    - overriders:
        labelsOverrider: [{operator: add, value: {placement.example/tier: any, team: retail}}]
"""


def _bundle(tmp_path: Path, extra: str = POLICIES) -> Path:
    path = write_bundle(tmp_path)
    path.write_text(LABELLED + extra)
    return path


def _object(objects: list[dict[str, Any]], kind: str, name: str, namespace: str) -> dict[str, Any]:
    found = [o for o in objects if o["kind"] == kind and o["metadata"]["name"] == name
             and o["metadata"].get("namespace") == namespace]
    assert len(found) == 1, (kind, name, [o["kind"] + "/" + o["metadata"]["name"] for o in objects])
    return found[0]


@pytest.mark.parametrize("fmt", sorted(FORMATS))
def test_each_cluster_builds_the_objects_its_rules_customise(tmp_path: Path, fmt: str) -> None:
    bundle = load_bundle([_bundle(tmp_path)])
    repo = tmp_path / "deploy"
    write_plan(bundle, make_plan(PLAN_A), repo, fmt=fmt, commit=False)

    edge_a = _object(render_cluster(repo, "edge-a"), "Deployment", "web", "retail")
    container = edge_a["spec"]["template"]["spec"]["containers"][0]
    assert container["image"] == "registry.edge.example/nginx:1.28"
    assert container["args"] == ["--edge", "--cache=64Mi"]
    assert container["env"] == [{"name": "TIER", "value": "edge"}]
    assert "command" not in container  # the edge-b rule does not reach edge-a
    # the match-all policy applies first and the one selecting by name overrides it (Karmada's order)
    assert edge_a["metadata"]["labels"]["placement.example/tier"] == "edge"
    assert edge_a["metadata"]["labels"]["team"] == "retail"
    assert edge_a["metadata"]["labels"]["short"] == "y"  # a string, not YAML 1.1 true
    assert edge_a["metadata"]["annotations"]["note"] == "edge build"
    assert edge_a["spec"]["replicas"] == 2  # Berth's replicas are untouched
    if fmt == "argocd":  # Berth's own patch still lands after the rules (annotations added by a rule)
        assert edge_a["metadata"]["annotations"]["argocd.argoproj.io/sync-wave"] == "1"  # after cache

    edge_b = _object(render_cluster(repo, "edge-b"), "Deployment", "web", "retail")
    container_b = edge_b["spec"]["template"]["spec"]["containers"][0]
    assert container_b["image"] == "registry.edge.example/nginx:1.29"  # rules in document order: later wins
    assert container_b["command"] == ["nginx", "-g", "daemon off;"]

    # a cluster no rule targets gets only the match-all labels; other namespaces nothing at all
    cloud = render_cluster(repo, "cloud-1")
    cache = _object(cloud, "Deployment", "cache", "retail")
    assert cache["spec"]["template"]["spec"]["containers"][0]["image"] == "nginx:1.27"
    assert cache["metadata"]["labels"]["team"] == "retail"
    telco = _object(render_cluster(repo, "edge-b"), "Deployment", "web", "telco")
    assert telco["spec"]["template"]["spec"]["containers"][0]["image"] == "nginx:1.27"
    assert "team" not in telco["metadata"]["labels"]

    for obj in (edge_a, edge_b, cache, telco):
        assert errors_of(obj) == [], obj["metadata"]
    overlay = yaml.safe_load((repo / "clusters/edge-a/apps/retail/web/kustomization.yaml").read_text())
    overlay["apiVersion"] = "kustomize.config.k8s.io/v1beta1"
    assert errors_of(overlay) == []


def test_the_document_uses_karmadas_field_names(tmp_path: Path) -> None:
    """Berth's OverridePolicy spec validates against Karmada's own OverridePolicy schema."""
    docs = [d for d in yaml.safe_load_all(POLICIES) if d]
    for doc in docs:
        karmada = {**doc, "apiVersion": "policy.karmada.io/v1alpha1"}
        for sel in karmada["spec"].get("resourceSelectors", []):
            sel.update(apiVersion="apps/v1", kind="Deployment")  # Karmada selects any kind; Berth, workloads
        assert errors_of(karmada) == [], doc["metadata"]["name"]
    assert load_bundle([_bundle(tmp_path)]).extras  # and Berth reads the same documents


@pytest.mark.parametrize(
    ("rule", "field", "words"),
    [
        ("plaintext: [{path: /spec/template/spec/nodeSelector/zone, operator: replace, value: a}]",
         "spec.overrideRules[0].overriders.plaintext[0].path", "cannot replace"),
        ("plaintext: [{path: /spec/replicas, operator: replace, value: 9}]",
         "spec.overrideRules[0].overriders.plaintext[0].path", "set by Berth"),
        ("argsOverrider: [{containerName: nope, operator: add, value: [-v]}]",
         "spec.overrideRules[0].overriders.argsOverrider[0].containerName", "no container named 'nope'"),
        ("labelsOverrider: [{operator: replace, value: {missing: x}}]",
         "spec.overrideRules[0].overriders.labelsOverrider[0].value", "cannot replace"),
    ],
    ids=["missing-path", "replicas", "container", "replace-missing-label"],
)
def test_an_invalid_path_is_an_input_error_naming_file_document_and_field(
    tmp_path: Path, rule: str, field: str, words: str
) -> None:
    # the rule targets a cluster where web does not run today: it is checked all the same
    bad = f"""\
---
apiVersion: {API_VERSION}
kind: OverridePolicy
metadata: {{name: broken, namespace: retail}}
spec:
  resourceSelectors: [{{labelSelector: {{matchLabels: {{app: web}}}}}}]
  overrideRules:
    - targetCluster: {{clusterNames: [cloud-1]}}
      overriders:
        {rule}
"""
    path = _bundle(tmp_path, bad)
    with pytest.raises(InputError) as caught:
        write_plan(load_bundle([path]), make_plan(PLAN_A), tmp_path / "files", commit=False)
    err = caught.value
    assert err.file == str(path) and err.field == field
    assert err.document == "OverridePolicy retail/broken (document #9)"
    assert words in str(err)


def test_the_command_line_refuses_it_with_exit_2_before_anything_is_committed(tmp_path: Path) -> None:
    good = _bundle(tmp_path)
    repo = tmp_path / "deploy"
    first = subprocess.run([BERTH, "place", str(good), "--gitops-repo", str(repo), "--commit"],
                           capture_output=True, text=True, timeout=300)
    assert first.returncode == 0, first.stderr
    head = git(repo, "rev-parse", "HEAD")
    good.write_text(good.read_text().replace("/spec/template/spec/containers/0/env", "/spec/template/spec/x/0"))
    second = subprocess.run([BERTH, "place", str(good), "--gitops-repo", str(repo), "--commit"],
                            capture_output=True, text=True, timeout=300)
    assert second.returncode == 2, second.stderr
    assert "OverridePolicy retail/edge-web" in second.stderr and "plaintext[0].path" in second.stderr
    assert git(repo, "rev-parse", "HEAD") == head
    assert git(repo, "status", "--porcelain") == ""


@pytest.mark.parametrize(
    ("image", "component", "operator", "value", "expected"),
    [
        ("nginx:1.27", "Registry", "add", "registry.example", "registry.example/nginx:1.27"),
        ("docker.io/library/nginx:1.27", "Registry", "add", ".cn", "docker.io.cn/library/nginx:1.27"),
        ("docker.io/library/nginx:1.27", "Registry", "remove", "", "library/nginx:1.27"),
        ("localhost:5000/app", "Repository", "replace", "other", "localhost:5000/other"),
        ("app:1.0", "Tag", "add", "-debug", "app:1.0-debug"),
        ("app:1.0", "Tag", "remove", "", "app"),
        ("app@sha256:abc", "Tag", "replace", "2.0", "app:2.0"),
    ],
)
def test_image_components(image: str, component: str, operator: str, value: str, expected: str) -> None:
    from engine.documents.overrides import ImageOverrider

    rule = ImageOverrider(component=component, operator=operator, value=value)  # type: ignore[arg-type]
    assert str(Image.parse(image).change(rule)) == expected


def test_the_example_customises_each_region(tmp_path: Path) -> None:
    from engine.planner import place

    example = Path(__file__).resolve().parent.parent / "examples" / "emco"
    bundle = load_bundle([example])
    repo = tmp_path / "deploy"
    write_plan(bundle, place(bundle, time_limit=10), repo, commit=False)
    us = _object(render_cluster(repo, "edge-us-1"), "Deployment", "web", "retail")
    eu = _object(render_cluster(repo, "edge-eu-1"), "Deployment", "web", "retail")
    assert us["spec"]["template"]["spec"]["containers"][0]["image"] == "registry.us.example/library/web:1.0"
    assert us["spec"]["template"]["spec"]["containers"][0]["args"] == ["--port=8080", "--cache-size=256Mi"]
    assert eu["spec"]["template"]["spec"]["containers"][0]["image"] == "registry.eu.example/library/web:1.0"
    assert eu["spec"]["template"]["spec"]["containers"][0]["args"] == ["--port=8080"]
