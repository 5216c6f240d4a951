"""Karmada parity (docs/karmada.md): what a PropagationPolicy user expects, through the whole engine.

Every plan comes from ``engine.planner.place``, which raises when the independent verifier
(``engine.verification``) objects; some cases also feed the verifier hand-made plans that break a rule.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from engine.errors import InputError
from engine.solvers.solution import Deadline
from engine.verification import verify
from engine.verification.violations import codes
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
    from engine.build import build_problem

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


def _place_file(tmp_path: Path, text: str) -> tuple[Path, dict[str, Any]]:
    """Write a YAML bundle, run ``berth place`` and ``berth verify`` on it; the bundle path and the plan."""
    bundle = tmp_path / "bundle.yaml"
    bundle.write_text(text)
    out = tmp_path / "plan.json"
    result = _run("place", str(bundle), "--output", str(out))
    assert result.returncode == 0, result.stderr
    assert _run("verify", str(bundle), str(out)).returncode == 0
    return bundle, json.loads(out.read_text())


def test_cli_selects_policies_from_a_bundle_file(tmp_path: Path) -> None:
    _, plan = _place_file(tmp_path, SELECTION_YAML)
    assert {p["workload"]: p["clusters"] for p in plan["placements"]} == {
        "retail/pos": {"edge-1": 2}, "retail/reports": {"cloud-1": 1}}
    bad = tmp_path / "bad.yaml"
    bad.write_text(SELECTION_YAML.replace("kind: Workload}]", "kind: Deployment}]"))
    refused = _run("place", str(bad), "--output", str(tmp_path / "never.json"))
    assert refused.returncode == 2
    assert "ClusterPlacementPolicy fleet-default" in refused.stderr and "resourceSelectors[0].kind" in refused.stderr
    assert not (tmp_path / "never.json").exists()


# --- 2. replicaScheduling.weightPreference ----------------------------------------------------


def _static(*entries: tuple[dict[str, Any], int], **extra: Any) -> dict[str, Any]:
    return {"weightPreference": {"staticWeightList": [{"targetCluster": t, "weight": n} for t, n in entries]},
            **extra}


DYNAMIC = {"weightPreference": {"dynamicWeight": "AvailableReplicas"}}
EDGE, CLOUD = {"tier": "edge"}, {"tier": "cloud"}


def _names(*names: str) -> dict[str, Any]:
    return {"clusterNames": list(names)}


WEIGHTED: list[tuple[str, list[dict[str, Any]], dict[str, Any], int, dict[str, int]]] = [
    ("static-2-to-1-remainder-to-heaviest", [_c("a"), _c("b"), _c("c")],
     {"replicaScheduling": _static((_names("a"), 2), (_names("b"), 1))}, 7, {"a": 5, "b": 2}),
    ("static-equal-ties-by-name", [_c("c"), _c("b"), _c("a")],
     {"replicaScheduling": _static((_names("a", "b", "c"), 1))}, 5, {"a": 2, "b": 2, "c": 1}),
    ("static-label-selector", [_c("e1", labels=EDGE), _c("e2", labels=EDGE), _c("k1", labels=CLOUD)],
     {"replicaScheduling": _static(({"labelSelector": {"matchLabels": EDGE}}, 3),
                                   ({"labelSelector": {"matchLabels": CLOUD}}, 2))}, 8,
     {"e1": 3, "e2": 3, "k1": 2}),
    ("static-first-matching-entry", [_c("a"), _c("b")],
     {"replicaScheduling": _static((_names("a"), 1), (_names("a", "b"), 3))}, 4, {"a": 1, "b": 3}),
    ("static-no-match-means-equal", [_c("a"), _c("b")],
     {"replicaScheduling": _static((_names("zzz"), 5))}, 4, {"a": 2, "b": 2}),
    ("static-over-eligible-clusters-only", [_c("a"), _c("b"), _c("c")],
     {"clusterAffinity": {"exclude": ["b"]}, "replicaScheduling": _static((_names("a", "b", "c"), 1))}, 4,
     {"a": 2, "c": 2}),
    ("static-beats-cost", [_c("dear", price={"cpu": "9"}), _c("cheap", price={"cpu": "0"})],
     {"replicaScheduling": _static((_names("dear", "cheap"), 1))}, 4, {"dear": 2, "cheap": 2}),
    ("static-field-selector", [_c("p1", region="eu"), _c("u1", region="us")],
     {"replicaScheduling": _static(({"fieldSelector": {"matchExpressions": [
         {"key": "region", "operator": "In", "values": ["eu"]}]}}, 1), (_names("u1"), 4))}, 10,
     {"p1": 2, "u1": 8}),
    ("dynamic-by-free-cpu", [_c("a", "6"), _c("b", "3"), _c("c", "1")], {"replicaScheduling": DYNAMIC}, 5,
     {"a": 4, "b": 1}),
    ("dynamic-pods-limit", [cluster("a", capacity={"cpu": "64", "pods": 2}), cluster("b", capacity={"cpu": "4"})],
     {"replicaScheduling": DYNAMIC}, 3, {"a": 1, "b": 2}),
    ("dynamic-unlisted-resource-is-zero", [cluster("gpu", capacity={"cpu": "8", "nvidia.com/gpu": 4}), _c("plain")],
     {"replicaScheduling": DYNAMIC}, 2, {"gpu": 2}),
    ("dynamic-remainder-to-roomiest", [_c("a", "2"), _c("b", "2"), _c("c", "4")], {"replicaScheduling": DYNAMIC}, 3,
     {"a": 1, "c": 2}),
]


@pytest.mark.parametrize(("fleet", "spec", "replicas", "expected"),
                         [pytest.param(f, s, r, e, id=n) for n, f, s, r, e in WEIGHTED])
def test_weighted_division_is_exact(fleet: list[dict[str, Any]], spec: dict[str, Any], replicas: int,
                                    expected: dict[str, int]) -> None:
    resources = {"cpu": "1", "nvidia.com/gpu": 1} if any(c["metadata"]["name"] == "gpu" for c in fleet) else None
    plan = solve(*fleet, policy("p", **spec), workload("web", replicas, policy="p", resources=resources))
    assert plan.status.solver == "Optimal"
    assert where(plan, "web") == expected


def test_division_that_does_not_fit_leaves_the_workload_unplaced() -> None:
    spec = {"replicaScheduling": _static((_names("small"), 1), (_names("big"), 1))}
    plan = solve(_c("small", "2"), _c("big", "64"), policy("p", **spec), workload("web", 8, policy="p"))
    assert where(plan, "web") == {} and reasons(plan, "web") == ["InsufficientCapacity"]
    assert "small 4 (room for 2)" in messages(plan, "web")
    capped = {"replicaScheduling": _static((_names("a", "b"), 1), maxPerCluster=3)}
    plan = solve(_c("a"), _c("b"), policy("p", **capped), workload("web", 8, policy="p"))
    assert where(plan, "web") == {} and "a 4 (room for 3)" in messages(plan, "web")
    plan = solve(_c("a", "2"), _c("b", "1"), policy("p", replicaScheduling=DYNAMIC), workload("web", 4, policy="p"))
    assert where(plan, "web") == {} and "AvailableReplicas" in messages(plan, "web")


def test_division_is_not_redone_around_higher_priorities() -> None:
    # the division uses each cluster's capacity; what a higher priority takes first is not re-divided
    docs = [_c("a", "4"), _c("b", "4"), policy("p", replicaScheduling=_static((_names("a", "b"), 1))),
            policy("vip", clusterAffinity=_names("a")),
            workload("web", 4, policy="p"), workload("first", 3, policy="vip", priority=10)]
    plan = solve(*docs)
    assert where(plan, "first") == {"a": 3}
    assert where(plan, "web") == {} and reasons(plan, "web") == ["OutPrioritized"]


def test_verifier_checks_the_division() -> None:
    bundle = bundle_of(_c("a"), _c("b"), _c("c"),
                       policy("p", replicaScheduling=_static((_names("a"), 2), (_names("b"), 1))),
                       workload("web", 7, policy="p"))
    for wrong in ({"a": 4, "b": 3}, {"a": 5, "c": 2}, {"a": 7}):
        plan = {"placements": [{"workload": "default/web", "clusters": wrong}], "unplaced": []}
        found = verify(bundle, plan)
        assert "WeightedDivision" in codes(found) and "a=5, b=2" in str(found)
    right = {"placements": [{"workload": "default/web", "clusters": {"a": 5, "b": 2}}], "unplaced": []}
    assert not verify(bundle, right)
    short = bundle_of(_c("a", "1"), policy("p", replicaScheduling=DYNAMIC), workload("web", 2, policy="p"))
    over = {"placements": [{"workload": "default/web", "clusters": {"a": 2}}], "unplaced": []}
    assert "WeightedDivision" in codes(verify(short, over))


BAD_WEIGHTS = [
    ("both-rules", {"weightPreference": {"dynamicWeight": "AvailableReplicas", "staticWeightList": [
        {"targetCluster": _names("a"), "weight": 1}]}}, "exactly one of staticWeightList and dynamicWeight"),
    ("no-rule", {"weightPreference": {}}, "exactly one of staticWeightList and dynamicWeight"),
    ("empty-list", {"weightPreference": {"staticWeightList": []}}, "at least one entry"),
    ("zero-weight", _static((_names("a"), 0)), "greater than or equal to 1"),
    ("string-weight", _static((_names("a"), "2")), "expected an integer"),  # type: ignore[arg-type]
    ("unknown-dynamic", {"weightPreference": {"dynamicWeight": "Cheapest"}}, "AvailableReplicas"),
    ("duplicated", {**DYNAMIC, "replicaSchedulingType": "Duplicated"}, "replicaSchedulingType Divided"),
    ("aggregated", {**DYNAMIC, "replicaDivisionPreference": "Aggregated"}, "replicaDivisionPreference Weighted"),
    ("target-typo", {"weightPreference": {"staticWeightList": [{"targetCluster": {"names": ["a"]}, "weight": 1}]}},
     "not a known field"),
]


@pytest.mark.parametrize(("scheduling", "expected"), [pytest.param(s, e, id=n) for n, s, e in BAD_WEIGHTS])
def test_bad_weight_preference_is_an_input_error(scheduling: dict[str, Any], expected: str) -> None:
    with pytest.raises(InputError) as err:
        bundle_of(_c("a"), policy("p", replicaScheduling=scheduling), workload("web", 2, policy="p"))
    assert "PlacementPolicy default/p" in str(err.value) and "spec.replicaScheduling" in str(err.value)
    assert expected in str(err.value)


def test_weights_and_tiers_are_an_input_error() -> None:
    with pytest.raises(InputError, match="clusterAffinities"):
        bundle_of(_c("a"), policy("p", replicaScheduling=DYNAMIC,
                                  clusterAffinities=[{"affinityName": "x", "clusterNames": ["a"]}]))


# --- 2. the division holds in every strategy -------------------------------------------------


def _fleet_with_divisions(n_clusters: int = 12, n_plain: int = 30) -> list[dict[str, Any]]:
    docs: list[dict[str, Any]] = [_c(f"c{i:02d}", str(8 + i), labels=EDGE if i % 2 else CLOUD,
                                     price={"cpu": str(0.01 * (i % 5))}) for i in range(n_clusters)]
    docs.append(policy("static", replicaScheduling=_static(({"labelSelector": {"matchLabels": EDGE}}, 3),
                                                            ({"labelSelector": {"matchLabels": CLOUD}}, 1))))
    docs.append(policy("dynamic", replicaScheduling=DYNAMIC))
    docs += [workload("split", 17, policy="static", cpu="250m"), workload("follow", 23, policy="dynamic", cpu="100m")]
    docs += [workload(f"plain-{i}", 2 + i % 4, cpu="500m") for i in range(n_plain)]
    return docs


def _expected_divisions(docs: list[dict[str, Any]]) -> dict[str, dict[str, int]]:
    """The division each weighted workload must get, by the verifier's own reading of docs/karmada.md."""
    from engine.verification.reading import _Checker
    from engine.verification.workload import _weighted_division

    bundle = bundle_of(*docs)
    ck = _Checker(bundle)
    out = {}
    for w in bundle.workloads:
        spec = ck.spec(w)
        if spec is not None and spec.replica_scheduling.weight_preference is not None:
            out[w.key] = _weighted_division(ck, w, spec.replica_scheduling.weight_preference)
    return out


def test_division_holds_on_the_large_path(monkeypatch: pytest.MonkeyPatch) -> None:
    import engine.solvers.dispatch
    from engine.planner import place

    calls: list[int] = []
    real = engine.solvers.dispatch.solve_large

    def spy(problem, *args, **kw):  # type: ignore[no-untyped-def]
        calls.append(problem.num_pairs)
        return real(problem, *args, **kw)

    monkeypatch.setattr(engine.solvers.dispatch, "LARGE_PAIRS", 10)
    monkeypatch.setattr(engine.solvers.dispatch, "solve_large", spy)
    docs = _fleet_with_divisions()
    plan = place(bundle_of(*docs), time_limit=4.0)
    assert calls and plan.status.solver == "Feasible"
    for key, want in _expected_divisions(docs).items():
        assert want and plan.assignment()[key] == want


def test_division_survives_refine() -> None:
    from engine.build import build_problem
    from engine.solvers.large import solve_large
    from engine.solvers.refine import refine_cost

    docs = _fleet_with_divisions()
    problem = build_problem(bundle_of(*docs))
    want = _expected_divisions(docs)
    y = solve_large(problem, Deadline(2.0)).y

    def division(y_: Any, key: str) -> dict[str, int]:
        w = problem.workload_keys.index(key)
        sl = problem.pairs_of(w)
        return {problem.cluster_names[c]: int(n) for c, n in zip(problem.pair_c[sl], y_[sl], strict=True) if n}

    refined = refine_cost(problem, y, deadline=Deadline(2.0))
    for key in want:
        assert division(y, key) == want[key] and division(refined, key) == want[key]


def test_division_holds_on_the_pinned_path(monkeypatch: pytest.MonkeyPatch) -> None:
    import engine.solvers.dispatch
    from engine.planner import place

    calls: list[bool] = []
    real = engine.solvers.dispatch.solve_pinned

    def spy(problem, *args, **kw):  # type: ignore[no-untyped-def]
        result = real(problem, *args, **kw)
        calls.append(result is not None)
        return result

    monkeypatch.setattr(engine.solvers.dispatch, "solve_pinned", spy)
    docs = [_c("a"), _c("b"), _c("c"),
            policy("p", replicaScheduling=_static((_names("a"), 2), (_names("b"), 1))),
            workload("old", 3, cpu="500m"), workload("web", 7, policy="p")]
    plan = place(bundle_of(*docs), current={"default/old": {"c": 3}}, max_moves=0)
    assert calls == [True] and plan.status.solver == "Optimal"
    assert plan.assignment() == {"default/old": {"c": 3}, "default/web": {"a": 5, "b": 2}}
    # what runs against the division cannot stay without moving: with maxMoves 0 there is no plan
    late = place(bundle_of(*docs), current={"default/old": {"c": 3}, "default/web": {"a": 4, "b": 3}},
                 max_moves=0)
    assert late.status.solver == "Infeasible"
    moved = place(bundle_of(*docs), current={"default/web": {"a": 4, "b": 3}})
    assert moved.assignment()["default/web"] == {"a": 5, "b": 2} and moved.status.objective.moves == 1


WEIGHTED_YAML = """\
apiVersion: placement.berth.dev/v1alpha1
kind: Cluster
metadata: {name: edge-1, labels: {tier: edge}}
spec: {capacity: {cpu: "16"}}
---
apiVersion: placement.berth.dev/v1alpha1
kind: Cluster
metadata: {name: cloud-1, labels: {tier: cloud}}
spec: {capacity: {cpu: "16"}}
---
apiVersion: placement.berth.dev/v1alpha1
kind: PlacementPolicy
metadata: {name: weighted, namespace: shop}
spec:
  resourceSelectors: [{name: web}]
  replicaScheduling:
    replicaSchedulingType: Divided
    replicaDivisionPreference: Weighted
    weightPreference:
      staticWeightList:
        - targetCluster: {labelSelector: {matchLabels: {tier: edge}}}
          weight: 3
        - targetCluster: {clusterNames: [cloud-1]}
          weight: 1
---
apiVersion: placement.berth.dev/v1alpha1
kind: Workload
metadata: {name: web, namespace: shop}
spec: {replicas: 10, resources: {cpu: "1"}}
"""


def test_cli_places_and_verifies_a_static_weight_list(tmp_path: Path) -> None:
    bundle, plan = _place_file(tmp_path, WEIGHTED_YAML)
    assert plan["placements"] == [{"workload": "shop/web", "clusters": {"edge-1": 8, "cloud-1": 2}}]
    plan["placements"][0]["clusters"] = {"edge-1": 7, "cloud-1": 3}
    tampered = tmp_path / "tampered.json"
    tampered.write_text(json.dumps(plan))
    checked = _run("verify", str(bundle), str(tampered))
    assert checked.returncode == 1 and "WeightedDivision" in checked.stdout


@pytest.mark.parametrize(("tolerations", "kept"), [
    pytest.param([TIMED], 2, id="timed: running replicas stay"),
    pytest.param([], 0, id="untolerated NoExecute evicts"),
])
def test_timed_toleration_keeps_running_replicas(tolerations: list[dict[str, Any]], kept: int) -> None:
    docs = [_c("tainted", price={"cpu": "0"}, taints=NOEXEC), _c("other", price={"cpu": "1"}),
            policy("p", tolerations=tolerations), workload("web", 3, policy="p")]
    plan = solve(*docs, current={"default/web": {"tainted": 2, "other": 1}})
    assert where(plan, "web").get("tainted", 0) == kept and sum(where(plan, "web").values()) == 3
