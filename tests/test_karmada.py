"""Karmada parity (docs/karmada.md): what a PropagationPolicy user expects, through the whole engine.

Every plan comes from ``engine.planner.place``, which raises when the independent verifier
(``engine.verify``) objects; some cases also feed the verifier hand-made plans that break a rule.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from engine.errors import InputError
from engine.verify import codes, verify
from tests.builders import bundle_of, cluster, messages, policy, reasons, solve, where, workload

BERTH = str(Path(sys.executable).parent / "berth")
NOEXEC = [{"key": "drain", "value": "soon", "effect": "NoExecute"}]


def _c(name: str, cpu: str = "8", labels: dict[str, str] | None = None, **spec: Any) -> dict[str, Any]:
    return cluster(name, labels=labels, capacity={"cpu": cpu, "memory": "64Gi"}, **spec)


def _run(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([BERTH, *args], capture_output=True, text=True, timeout=300)


# --- 4. the default replica scheduling is Berth's Divided, not Karmada's Duplicated ----------


def test_no_replica_scheduling_divides_replicas_over_the_fleet() -> None:
    plan = solve(_c("a", "2"), _c("b", "2"), policy("p", clusterAffinity={"clusterNames": ["a", "b"]}),
                 workload("web", 4, policy="p"))
    placed = where(plan, "web")
    assert sum(placed.values()) == 4 and placed != {"a": 4, "b": 4}


# --- 3. tolerationSeconds ----------------------------------------------------------------------


@pytest.mark.parametrize(("toleration", "expected"), [
    ({"key": "drain", "operator": "Exists", "effect": "NoSchedule", "tolerationSeconds": 30},
     "tolerationSeconds applies only to effect NoExecute"),
    ({"key": "drain", "operator": "Exists", "tolerationSeconds": 30},
     "tolerationSeconds applies only to effect NoExecute"),
    ({"key": "drain", "operator": "Exists", "effect": "NoExecute", "tolerationSeconds": -1},
     "greater than or equal to 0"),
    ({"key": "drain", "operator": "Exists", "effect": "NoExecute", "tolerationSeconds": "300"},
     "expected an integer"),
    ({"key": "drain", "operator": "Exists", "effect": "NoExecute", "tolerationSeconds": 1.5},
     "expected an integer"),
    ({"key": "drain", "operator": "Exists", "effect": "NoExecute", "tolerationSeconds": True},
     "expected an integer"),
])
def test_bad_toleration_seconds_is_an_input_error(toleration: dict[str, Any], expected: str) -> None:
    with pytest.raises(InputError) as err:
        bundle_of(_c("a"), policy("p", tolerations=[toleration]), workload("web", 1, policy="p"))
    text = str(err.value)
    assert "PlacementPolicy default/p" in text and "spec.tolerations[0]" in text and expected in text


TIMED = {"key": "drain", "operator": "Equal", "value": "soon", "effect": "NoExecute", "tolerationSeconds": 300}


@pytest.mark.parametrize(("tolerations", "on_tainted"), [
    pytest.param([], 0, id="untolerated"),
    pytest.param([TIMED], 0, id="timed-only: no new replicas"),
    pytest.param([{**TIMED, "tolerationSeconds": 0}], 0, id="zero seconds"),
    pytest.param([{k: v for k, v in TIMED.items() if k != "tolerationSeconds"}], 3, id="untimed"),
    pytest.param([TIMED, {"operator": "Exists"}], 3, id="untimed wildcard wins"),
])
def test_timed_toleration_places_no_new_replicas(tolerations: list[dict[str, Any]], on_tainted: int) -> None:
    # the tainted cluster is free, the other costs: only a full toleration puts replicas there
    docs = [_c("tainted", price={"cpu": "0"}, taints=NOEXEC), _c("other", price={"cpu": "1"}),
            policy("p", tolerations=tolerations), workload("web", 3, policy="p")]
    plan = solve(*docs)
    assert where(plan, "web").get("tainted", 0) == on_tainted
    assert sum(where(plan, "web").values()) == 3
    warned = [w for w in plan.status.warnings if "tolerationSeconds" in w]
    if any("tolerationSeconds" in t for t in tolerations) and on_tainted == 0:
        seconds = tolerations[0]["tolerationSeconds"]
        assert warned and f"for {seconds} s only" in warned[0] and "tainted" in warned[0]
        assert "default/web" in warned[0] and "drain=soon:NoExecute" in warned[0]
    else:
        assert not warned


def test_timed_toleration_is_recorded_and_explained_when_unplaced() -> None:
    from engine.problem import build_problem

    docs = [_c("tainted", taints=NOEXEC), policy("p", tolerations=[TIMED]), workload("web", 2, policy="p")]
    problem = build_problem(bundle_of(*docs))
    assert problem.toleration_seconds == {(0, 0): 300}
    plan = solve(*docs)
    assert reasons(plan, "web") == ["Untolerated"]
    assert "tolerated for 300 s only, so no new replicas" in messages(plan, "web")


def test_verifier_refuses_new_replicas_under_a_timed_toleration() -> None:
    bundle = bundle_of(_c("tainted", taints=NOEXEC), _c("other"), policy("p", tolerations=[TIMED]),
                       workload("web", 2, policy="p"))
    bad = {"placements": [{"workload": "default/web", "clusters": {"tainted": 2}}], "unplaced": []}
    assert "Untolerated" in codes(verify(bundle, bad))
    good = {"placements": [{"workload": "default/web", "clusters": {"other": 2}}], "unplaced": []}
    assert not verify(bundle, good)


def test_cli_records_toleration_seconds_in_the_plan(tmp_path: Path) -> None:
    bundle = tmp_path / "bundle.json"
    bundle.write_text(json.dumps([_c("tainted", taints=NOEXEC), _c("other"), policy("p", tolerations=[TIMED]),
                                  workload("web", 2, policy="p")]))
    out = tmp_path / "plan.json"
    result = _run("place", str(bundle), "--output", str(out))
    assert result.returncode == 0, result.stderr
    plan = json.loads(out.read_text())
    assert plan["placements"][0]["clusters"] == {"other": 2}
    assert any("for 300 s only" in w for w in plan["status"]["warnings"])
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps([_c("a"), policy("p", tolerations=[{**TIMED, "tolerationSeconds": -5}])]))
    refused = _run("place", str(bad), "--output", str(tmp_path / "never.json"))
    assert refused.returncode == 2 and "spec.tolerations[0].tolerationSeconds" in refused.stderr
    assert not (tmp_path / "never.json").exists()


# --- 1. policy selection: resourceSelectors, ClusterPlacementPolicy, priority -------------------


def _w(name: str, namespace: str = "default", labels: dict[str, str] | None = None, **spec: Any) -> dict[str, Any]:
    doc = workload(name, 1, namespace=namespace, **spec)
    doc["metadata"]["labels"] = labels or {}
    return doc


def _to(name: str, cluster_name: str, *selectors: dict[str, Any], namespace: str = "default",
        priority: int | None = None) -> dict[str, Any]:
    """A policy that sends what it selects to one cluster (so the plan shows which policy won)."""
    spec: dict[str, Any] = {"clusterAffinity": {"clusterNames": [cluster_name]}}
    if selectors or not name.startswith("pinned"):
        spec["resourceSelectors"] = list(selectors)
    if priority is not None:
        spec["priority"] = priority
    return policy(name, namespace, **spec)


def _cluster_to(name: str, cluster_name: str, *selectors: dict[str, Any],
                priority: int | None = None) -> dict[str, Any]:
    doc = _to(name, cluster_name, *selectors, priority=priority)
    doc["kind"] = "ClusterPlacementPolicy"
    del doc["metadata"]["namespace"]
    return doc


FLEET = [_c("a"), _c("b"), _c("c"), _c("d")]
WEB = {"app": "web"}
BY_NAME = {"name": "web"}
BY_LABEL = {"labelSelector": {"matchLabels": WEB}}
ALL = {"kind": "Workload"}

SELECTION: list[tuple[str, list[dict[str, Any]], str]] = [
    ("by-name", [_to("p", "b", BY_NAME)], "b"),
    ("by-name-with-karmada-fields",
     [_to("p", "b", {"apiVersion": "placement.berth.dev/v1alpha1", "kind": "Workload", "name": "web"})], "b"),
    ("by-label", [_to("p", "c", BY_LABEL)], "c"),
    ("by-label-expression",
     [_to("p", "c", {"labelSelector": {"matchExpressions": [{"key": "app", "operator": "In", "values": ["web"]}]}})],
     "c"),
    ("label-mismatch-selects-nothing", [_to("p", "c", {"labelSelector": {"matchLabels": {"app": "db"}}}),
                                        _to("fallback", "d", ALL)], "d"),
    ("name-beats-label-beats-all", [_to("all", "a", ALL), _to("label", "c", BY_LABEL), _to("name", "b", BY_NAME)],
     "b"),
    ("label-beats-all", [_to("all", "a", ALL), _to("label", "c", BY_LABEL)], "c"),
    ("best-selector-of-a-policy-counts", [_to("mixed", "a", ALL, BY_NAME), _to("label", "c", BY_LABEL)], "a"),
    ("name-ignores-label-selector", [_to("p", "b", {"name": "web", "labelSelector": {"matchLabels": {"x": "y"}}})],
     "b"),
    ("explicit-priority-first", [_to("name", "b", BY_NAME), _to("all", "a", ALL, priority=10)], "a"),
    ("negative-priority-loses", [_to("name", "b", BY_NAME, priority=-1), _to("all", "a", ALL)], "a"),
    ("ties-by-name", [_to("zeta", "b", BY_LABEL), _to("alpha", "c", BY_LABEL)], "c"),
    ("other-namespace-policy-ignored", [_to("p", "b", BY_NAME, namespace="other"), _to("all", "a", ALL)], "a"),
    ("cluster-policy-is-the-default", [_cluster_to("fleet", "d", ALL)], "d"),
    ("namespaced-beats-cluster-scoped",
     [_cluster_to("fleet", "d", BY_NAME, priority=100), _to("ns-all", "a", ALL)], "a"),
    ("cluster-policies-by-priority", [_cluster_to("low", "c", BY_NAME), _cluster_to("high", "d", ALL, priority=5)],
     "d"),
    ("cluster-policy-namespace-selector",
     [_cluster_to("shop-only", "b", {"namespace": "shop"}), _cluster_to("rest", "c", ALL)], "c"),
    ("cluster-policy-own-namespace", [_cluster_to("default-only", "b", {"namespace": "default", "name": "web"})],
     "b"),
    ("workload-policy-field-wins", [_to("pinned", "d"), _to("name", "b", BY_NAME, priority=100)], "d"),
]


@pytest.mark.parametrize(("docs", "expected"), [pytest.param(d, e, id=n) for n, d, e in SELECTION])
def test_policy_selection(docs: list[dict[str, Any]], expected: str) -> None:
    own = {"policy": "pinned"} if any(d["metadata"]["name"] == "pinned" for d in docs) else {}
    plan = solve(*FLEET, *docs, _w("web", labels=WEB, **own), _w("other", labels={"app": "db"}))
    assert where(plan, "web") == {expected: 1}


def test_no_matching_policy_means_the_default_policy() -> None:
    plan = solve(_c("a", price={"cpu": "1"}), _c("b", price={"cpu": "0"}), _to("p", "a", {"name": "db"}),
                 _w("web", labels=WEB))
    assert where(plan, "web") == {"b": 1}


def test_selection_applies_every_field_of_the_chosen_policy() -> None:
    # the selected policy's replicaScheduling (Duplicated) and tolerations both apply
    tainted = _c("t", taints=[{"key": "edge", "effect": "NoSchedule"}])
    pol = policy("dup", resourceSelectors=[BY_LABEL], tolerations=[{"key": "edge", "operator": "Exists"}],
                 replicaScheduling={"replicaSchedulingType": "Duplicated"})
    plan = solve(_c("a"), tainted, pol, _w("web", labels=WEB))
    assert where(plan, "web") == {"a": 1, "t": 1}


def test_verifier_reads_the_selected_policy() -> None:
    bundle = bundle_of(*FLEET, _to("all", "a", ALL), _to("name", "b", BY_NAME), _w("web", labels=WEB))
    wrong = {"placements": [{"workload": "default/web", "clusters": {"a": 1}}], "unplaced": []}
    assert "ClusterAffinity" in codes(verify(bundle, wrong))
    right = {"placements": [{"workload": "default/web", "clusters": {"b": 1}}], "unplaced": []}
    assert not verify(bundle, right)


BAD_SELECTORS = [
    ("wrong-kind", [_to("p", "a", {"kind": "Deployment"})], "spec.resourceSelectors[0].kind", "'Workload'"),
    ("wrong-api-version", [_to("p", "a", {"apiVersion": "apps/v1", "name": "web"})],
     "spec.resourceSelectors[0].apiVersion", "placement.berth.dev/v1alpha1"),
    ("bad-operator", [_to("p", "a", {"labelSelector": {"matchExpressions": [{"key": "app", "operator": "Is"}]}})],
     "spec.resourceSelectors[0].labelSelector.matchExpressions[0].operator", "expected"),
    ("in-without-values",
     [_to("p", "a", {"labelSelector": {"matchExpressions": [{"key": "app", "operator": "In"}]}})],
     "spec.resourceSelectors[0].labelSelector.matchExpressions[0]", "needs at least one value"),
    ("unknown-selector-field", [_to("p", "a", {"names": ["web"]})], "spec.resourceSelectors[0].names",
     "not a known field"),
    ("empty-list", [_to("p", "a")], "spec.resourceSelectors", "at least one selector"),
    ("other-namespace", [_to("p", "a", {"namespace": "shop"})], "spec.resourceSelectors[0].namespace",
     "its own namespace 'default'"),
    ("priority-not-integer", [_to("p", "a", ALL, priority="high")], "spec.priority", "expected an integer"),
    ("cluster-policy-without-selectors",
     [{"apiVersion": "placement.berth.dev/v1alpha1", "kind": "ClusterPlacementPolicy", "metadata": {"name": "f"},
       "spec": {}}], "spec.resourceSelectors", "is required in a ClusterPlacementPolicy"),
    ("cluster-policy-with-affinity",
     [{**_cluster_to("f", "a", ALL), "spec": {"resourceSelectors": [ALL], "affinity": {"workloads": ["db"]}}}],
     "spec.affinity", "namespaced PlacementPolicy"),
]


@pytest.mark.parametrize(("docs", "field", "expected"), [pytest.param(d, f, e, id=n) for n, d, f, e in BAD_SELECTORS])
def test_bad_selectors_are_input_errors(docs: list[dict[str, Any]], field: str, expected: str) -> None:
    with pytest.raises(InputError) as err:
        bundle_of(_c("a"), *docs, _w("web", labels=WEB))
    assert err.value.field == field, str(err.value)
    assert expected in str(err.value)
    kind = docs[0]["kind"]
    assert f"{kind} " in str(err.value)


SELECTION_YAML = """\
apiVersion: placement.berth.dev/v1alpha1
kind: Cluster
metadata: {name: edge-1}
spec: {capacity: {cpu: "8"}}
---
apiVersion: placement.berth.dev/v1alpha1
kind: Cluster
metadata: {name: cloud-1}
spec: {capacity: {cpu: "8"}}
---
apiVersion: placement.berth.dev/v1alpha1
kind: ClusterPlacementPolicy
metadata: {name: fleet-default}
spec:
  resourceSelectors: [{apiVersion: placement.berth.dev/v1alpha1, kind: Workload}]
  clusterAffinity: {clusterNames: [cloud-1]}
---
apiVersion: placement.berth.dev/v1alpha1
kind: PlacementPolicy
metadata: {name: edge-apps, namespace: retail}
spec:
  resourceSelectors: [{labelSelector: {matchLabels: {tier: edge}}}]
  clusterAffinity: {clusterNames: [edge-1]}
---
apiVersion: placement.berth.dev/v1alpha1
kind: Workload
metadata: {name: pos, namespace: retail, labels: {tier: edge}}
spec: {replicas: 2, resources: {cpu: "1"}}
---
apiVersion: placement.berth.dev/v1alpha1
kind: Workload
metadata: {name: reports, namespace: retail}
spec: {replicas: 1, resources: {cpu: "1"}}
"""


def test_cli_selects_policies_from_a_bundle_file(tmp_path: Path) -> None:
    bundle = tmp_path / "bundle.yaml"
    bundle.write_text(SELECTION_YAML)
    out = tmp_path / "plan.json"
    result = _run("place", str(bundle), "--output", str(out))
    assert result.returncode == 0, result.stderr
    plan = json.loads(out.read_text())
    assert {p["workload"]: p["clusters"] for p in plan["placements"]} == {
        "retail/pos": {"edge-1": 2}, "retail/reports": {"cloud-1": 1}}
    assert _run("verify", str(bundle), str(out)).returncode == 0
    bad = tmp_path / "bad.yaml"
    bad.write_text(SELECTION_YAML.replace("kind: Workload}]", "kind: Deployment}]"))
    refused = _run("place", str(bad), "--output", str(tmp_path / "never.json"))
    assert refused.returncode == 2
    assert "ClusterPlacementPolicy fleet-default" in refused.stderr and "resourceSelectors[0].kind" in refused.stderr
    assert not (tmp_path / "never.json").exists()
