"""Table-driven tests of the independent verifier (spec section 2).

One small hand-written bundle and one valid plan; each case changes the plan
so that it breaks exactly one hard constraint and expects exactly that code.
"""

from __future__ import annotations

import copy
from collections.abc import Callable
from typing import Any

import pytest

from engine.documents.bundle import Bundle
from engine.documents.kinds import LabelSelector, Taint, Toleration
from engine.documents.load import load_documents
from engine.errors import InputError
from engine.plan import Plan
from engine.verification import VIOLATION_CODES, codes, label_selector_matches, tolerates, verify

API = "placement.berth.dev/v1alpha1"


def _cluster(name: str, region: str, zone: str, labels: dict[str, str], capacity: dict[str, Any],
             taints: list[dict[str, str]] | None = None) -> dict[str, Any]:
    return {
        "apiVersion": API, "kind": "Cluster",
        "metadata": {"name": name, "labels": labels},
        "spec": {"region": region, "zone": zone, "capacity": capacity, "taints": taints or []},
    }


def _policy(name: str, ns: str, spec: dict[str, Any]) -> dict[str, Any]:
    return {"apiVersion": API, "kind": "PlacementPolicy",
            "metadata": {"name": name, "namespace": ns}, "spec": spec}


def _workload(name: str, ns: str, replicas: int, resources: dict[str, Any],
              policy: str | None = None) -> dict[str, Any]:
    spec: dict[str, Any] = {"replicas": replicas, "resources": resources}
    if policy:
        spec["policy"] = policy
    return {"apiVersion": API, "kind": "Workload",
            "metadata": {"name": name, "namespace": ns}, "spec": spec}


EDGE_CAP = {"cpu": "8", "memory": "16Gi", "pods": 16}
MAINTENANCE = [{"key": "maintenance", "value": "true", "effect": "NoSchedule"}]
SPOT = [{"key": "spot", "value": "true", "effect": "PreferNoSchedule"}]

DOCS: list[dict[str, Any]] = [
    _cluster("edge-a1", "eu", "eu-1", {"tier": "edge", "rack": "r1", "gen": "3"},
             {**EDGE_CAP, "pods": 13}),
    _cluster("edge-a2", "eu", "eu-2", {"tier": "edge", "rack": "r2"}, EDGE_CAP, MAINTENANCE),
    _cluster("edge-b1", "us", "us-1", {"tier": "edge", "rack": "r1"}, EDGE_CAP, SPOT),
    _cluster("edge-b2", "us", "us-2", {"tier": "edge", "rack": "r2"}, EDGE_CAP),
    _cluster("cloud-c1", "us", "us-3", {"tier": "cloud"},
             {"cpu": "32", "memory": "64Gi", "nvidia.com/gpu": 2}),
    {"apiVersion": API, "kind": "Site", "metadata": {"name": "users"},
     "spec": {"latencyMs": {"edge-a1": 5, "edge-a2": 8, "edge-b1": 40, "edge-b2": 12}}},
    # shop: edge only, 5 cores; ops: no Tenant document, so every cluster and no quota.
    {"apiVersion": API, "kind": "Tenant", "metadata": {"name": "shop"},
     "spec": {"clusterSelector": {"matchLabels": {"tier": "edge"}}, "quota": {"cpu": "5"}}},
    _policy("near", "shop", {
        "latency": {"site": "users", "maxMs": 10},
        "tolerations": [{"key": "maintenance", "operator": "Exists", "effect": "NoSchedule"}]}),
    _policy("spread", "shop", {
        "spreadConstraints": [{"spreadByField": "region", "minGroups": 2, "maxSkew": 1}]}),
    _policy("with-api", "shop", {"affinity": {"workloads": ["api"]}}),
    _policy("bounded", "shop", {
        "replicaScheduling": {"minPerCluster": 2, "maxPerCluster": 3}}),
    _policy("two", "shop", {"clusters": {"min": 2, "max": 2}}),
    _policy("everywhere", "ops", {
        "replicaScheduling": {"replicaSchedulingType": "Duplicated"},
        "tolerations": [{"operator": "Exists"}]}),
    _policy("tiers", "ops", {"clusterAffinities": [
        {"affinityName": "edge-eu", "labelSelector": {"matchLabels": {"tier": "edge"}},
         "fieldSelector": {"matchExpressions": [
             {"key": "region", "operator": "In", "values": ["eu"]}]}},
        {"affinityName": "cloud", "clusterNames": ["cloud-c1"]}]}),
    _policy("apart", "ops", {"antiAffinity": {"workloads": ["lonely-b"]}}),
    _policy("racks", "ops", {
        "spreadConstraints": [{"spreadByLabel": "rack", "minGroups": 2}],
        "tolerations": [{"key": "maintenance", "operator": "Equal", "value": "true"}]}),
    _policy("pin", "ops", {"clusterAffinity": {
        "clusterNames": ["edge-a1", "cloud-c1"], "exclude": ["cloud-c1"],
        "labelSelector": {"matchExpressions": [
            {"key": "gen", "operator": "Gt", "values": ["2"]}]}}}),
    _policy("far", "ops", {"latency": {"site": "users", "maxMs": 100}}),
    _workload("web", "shop", 2, {"cpu": "500m"}, "near"),
    _workload("api", "shop", 4, {"cpu": "500m", "memory": "256Mi"}, "spread"),
    _workload("cache", "shop", 1, {"cpu": "250m"}, "with-api"),
    _workload("front", "shop", 4, {"cpu": "250m"}, "bounded"),
    _workload("duo", "shop", 2, {"cpu": "100m"}, "two"),
    _workload("batch", "shop", 2, {"cpu": "1500m"}),
    _workload("agent", "ops", 1, {"cpu": "100m"}, "everywhere"),
    _workload("tiered", "ops", 2, {"cpu": "100m"}, "tiers"),
    _workload("gpu-job", "ops", 2, {"cpu": "1", "nvidia.com/gpu": 1}),
    _workload("plain", "ops", 3, {"cpu": "1"}),
    _workload("big", "ops", 1, {"cpu": "6"}),
    _workload("lonely-a", "ops", 1, {"cpu": "100m"}, "apart"),
    _workload("lonely-b", "ops", 1, {"cpu": "100m"}),
    _workload("rack-spread", "ops", 3, {"cpu": "100m"}, "racks"),
    _workload("pinned", "ops", 1, {"cpu": "100m"}, "pin"),
    _workload("lat-ops", "ops", 1, {"cpu": "100m"}, "far"),
]

VALID: dict[str, dict[str, int]] = {
    "shop/web": {"edge-a1": 1, "edge-a2": 1},
    "shop/api": {"edge-a1": 2, "edge-b1": 2},
    "shop/cache": {"edge-a1": 1},
    "shop/front": {"edge-a1": 2, "edge-b1": 2},
    "shop/duo": {"edge-a1": 1, "edge-b1": 1},
    "ops/agent": {"edge-a1": 1, "edge-a2": 1, "edge-b1": 1, "edge-b2": 1, "cloud-c1": 1},
    "ops/tiered": {"edge-a1": 1, "cloud-c1": 1},
    "ops/gpu-job": {"cloud-c1": 2},
    "ops/plain": {"cloud-c1": 3},
    "ops/big": {"cloud-c1": 1},
    "ops/lonely-a": {"cloud-c1": 1},
    "ops/lonely-b": {"edge-b1": 1},
    "ops/rack-spread": {"edge-a1": 1, "edge-a2": 1, "edge-b1": 1},
    "ops/pinned": {"edge-a1": 1},
    "ops/lat-ops": {"edge-b1": 1},
}


@pytest.fixture(scope="module")
def bundle() -> Bundle:
    return load_documents(DOCS)


def _plan(assign: dict[str, dict[str, int]], unplaced: list[str] | None = None) -> dict[str, Any]:
    return {
        "placements": [{"workload": k, "clusters": dict(v)} for k, v in assign.items()],
        "unplaced": [{"workload": k, "reasons": []} for k in (unplaced or ["shop/batch"])],
    }


def _with(**changes: dict[str, int]) -> Callable[[], dict[str, Any]]:
    """The valid plan with some workloads' placements replaced (key ``ns__name``)."""

    def build() -> dict[str, Any]:
        assign = copy.deepcopy(VALID)
        for key, row in changes.items():
            assign[key.replace("__", "/").replace("_", "-")] = row
        return _plan(assign)

    return build


def _edit(fn: Callable[[dict[str, Any]], None]) -> Callable[[], dict[str, Any]]:
    def build() -> dict[str, Any]:
        plan = _plan(copy.deepcopy(VALID))
        fn(plan)
        return plan

    return build


def _drop(key: str) -> Callable[[dict[str, Any]], None]:
    def fn(plan: dict[str, Any]) -> None:
        plan["placements"] = [p for p in plan["placements"] if p["workload"] != key]

    return fn


def _unplace_too(plan: dict[str, Any]) -> None:
    plan["unplaced"].append({"workload": "ops/plain", "reasons": []})


def _add_ghost(plan: dict[str, Any]) -> None:
    plan["placements"].append({"workload": "shop/ghost", "clusters": {"edge-a1": 1}})


def _split_entry(plan: dict[str, Any]) -> None:
    for p in plan["placements"]:
        if p["workload"] == "ops/plain":
            p["clusters"] = {"cloud-c1": 2}
    plan["placements"].append({"workload": "ops/plain", "clusters": {"edge-b2": 1}})


def _kept_but_unplaced(plan: dict[str, Any]) -> None:
    plan["placements"] = [p for p in plan["placements"] if p["workload"] != "ops/plain"]
    plan["unplaced"].append({"workload": "ops/plain", "reasons": []})
    plan["notApplied"] = [{"workload": "ops/plain", "reasons": [], "keptReplicas": 3, "wantedReplicas": 5}]


def _place_batch(plan: dict[str, Any]) -> None:
    plan["unplaced"] = []
    plan["placements"].append({"workload": "shop/batch", "clusters": {"edge-b2": 2}})


CASES: list[tuple[str, Callable[[], dict[str, Any]], str, str]] = [
    # (id, plan builder, expected code, a fragment the message must contain)
    ("unknown-workload", _edit(_add_ghost), "UnknownWorkload", "shop/ghost"),
    ("unknown-cluster", _with(ops__plain={"cloud-c1": 2, "nowhere": 1}), "UnknownCluster",
     "nowhere"),
    ("duplicate-entry", _edit(_split_entry), "DuplicateEntry", "more than one"),
    ("placed-and-unplaced", _edit(_unplace_too), "PlacedAndUnplaced", "both"),
    ("missing-workload", _edit(_drop("ops/plain")), "MissingWorkload", "neither"),
    ("zero-replicas", _with(ops__plain={"cloud-c1": 3, "edge-b2": 0}), "InvalidReplicas", "0"),
    ("negative-replicas", _with(ops__plain={"cloud-c1": 3, "edge-b2": -1}), "InvalidReplicas",
     "-1"),
    ("divided-short", _with(ops__plain={"cloud-c1": 2}), "AllOrNothing", "replicas is 3"),
    ("divided-over", _with(ops__plain={"cloud-c1": 4}), "AllOrNothing", "4 replica(s)"),
    ("duplicated-copy-short",
     _with(ops__agent={"edge-a1": 2, "edge-a2": 1, "edge-b1": 1, "edge-b2": 1, "cloud-c1": 1}),
     "AllOrNothing", "needs 1"),
    ("cluster-excluded", _with(ops__pinned={"cloud-c1": 1}), "ClusterAffinity", "cloud-c1"),
    ("cluster-not-named", _with(ops__pinned={"edge-b2": 1}), "ClusterAffinity", "edge-b2"),
    ("in-no-tier", _with(ops__tiered={"edge-a1": 1, "edge-b1": 1}), "ClusterAffinity",
     "edge-eu, cloud"),
    ("tenant-selector", _with(shop__duo={"edge-a1": 1, "cloud-c1": 1}), "TenantSelector",
     "shop"),
    ("untolerated-noschedule", _with(ops__plain={"edge-a2": 3}), "Untolerated", "maintenance"),
    ("latency-too-far", _with(shop__web={"edge-a1": 1, "edge-b1": 1}), "Latency", "40 ms"),
    ("latency-unreachable", _with(ops__lat_ops={"cloud-c1": 1}), "Latency", "unreachable"),
    ("capacity-cpu", _with(ops__big={"edge-a1": 1}), "Capacity", "cpu"),
    ("capacity-unlisted-gpu", _with(ops__gpu_job={"edge-a1": 2}), "Capacity", "nvidia.com/gpu"),
    ("capacity-pods", _with(ops__plain={"edge-a1": 3}), "Capacity", "pods"),
    ("quota", _edit(_place_batch), "Quota", "tenant shop: cpu"),
    ("per-cluster-min", _with(shop__front={"edge-a1": 3, "edge-b1": 1}), "PerClusterBounds",
     "[2, 3]"),
    ("per-cluster-max", _with(shop__front={"edge-a1": 4}), "PerClusterBounds", "4 replica"),
    ("cluster-count-low", _with(shop__duo={"edge-a1": 2}), "ClusterCount", "1 cluster(s)"),
    ("broadcast-missing",
     _with(ops__agent={"edge-a1": 1, "edge-a2": 1, "edge-b1": 1, "edge-b2": 1}),
     "Broadcast", "cloud-c1"),
    ("spread-one-region", _with(shop__api={"edge-a1": 4}), "SpreadGroups", "1 region"),
    ("spread-skew", _with(shop__api={"edge-a1": 3, "edge-b1": 1}), "SpreadSkew", "skew is 2"),
    ("spread-unlabelled", _with(ops__rack_spread={"edge-a1": 1, "edge-a2": 1, "cloud-c1": 1}),
     "SpreadUnlabelled", "rack"),
    ("affinity", _with(shop__cache={"edge-b2": 1}), "Affinity", "shop/api"),
    ("anti-affinity", _with(ops__lonely_b={"cloud-c1": 1}), "AntiAffinity", "cloud-c1"),
    ("not-applied-not-kept", _edit(_kept_but_unplaced), "NotApplied", "not placed"),
]


def test_valid_plan_has_no_violations(bundle: Bundle) -> None:
    assert verify(bundle, _plan(VALID)) == []


def test_valid_plan_as_plan_model(bundle: Bundle) -> None:
    plan = Plan.model_validate(
        {
            "metadata": {"inputDigest": bundle.digest(), "createdAt": "2026-01-01T00:00:00Z"},
            "status": {"solver": "Optimal", "solveSeconds": 0.1, "objective": {}},
            **_plan(VALID),
        }
    )
    assert verify(bundle, plan) == []
    plan.placements[0].clusters["edge-b1"] = 1
    assert codes(verify(bundle, plan)) >= {"AllOrNothing"}


@pytest.mark.parametrize(
    ("build", "code", "fragment"),
    [pytest.param(b, c, f, id=i) for i, b, c, f in CASES],
)
def test_each_constraint(
    bundle: Bundle, build: Callable[[], dict[str, Any]], code: str, fragment: str
) -> None:
    found = verify(bundle, build())
    assert codes(found) == {code}, "\n".join(map(str, found))
    assert any(fragment in v.message or fragment == v.workload for v in found), found
    assert code in VIOLATION_CODES


def test_cases_cover_every_code() -> None:
    # WeightedDivision has its own table in tests/test_karmada.py (test_verifier_checks_the_division)
    covered = {c for _, _, c, _ in CASES} | {"MovesBudget", "WeightedDivision"}
    assert covered == set(VIOLATION_CODES)


# --- moves budget ---------------------------------------------------------------------

MOVED = {**VALID, "ops/plain": {"edge-b2": 3}}


@pytest.mark.parametrize(
    ("max_moves", "objective_max", "expected"),
    [
        pytest.param(2, None, {"MovesBudget"}, id="over-budget"),
        pytest.param(3, None, set(), id="at-budget"),
        pytest.param(None, None, set(), id="no-budget"),
        pytest.param(None, 1, {"MovesBudget"}, id="objective-budget"),
        pytest.param(5, 1, set(), id="argument-overrides-objective"),
    ],
)
def test_moves_budget(max_moves: int | None, objective_max: int | None, expected: set[str]) -> None:
    docs = list(DOCS)
    if objective_max is not None:
        docs.append({"apiVersion": API, "kind": "Objective", "metadata": {"name": "default"},
                     "spec": {"maxMoves": objective_max}})
    b = load_documents(docs)
    found = verify(b, _plan(MOVED), current=VALID, max_moves=max_moves)
    assert codes(found) == expected, found
    if expected:
        assert "3 replica(s) removed" in found[0].message


def test_moves_count_unplaced_and_ignore_removed_workloads(bundle: Bundle) -> None:
    plan = _plan({k: v for k, v in VALID.items() if k != "ops/plain"},
                 unplaced=["shop/batch", "ops/plain"])
    current = {**VALID, "ops/retired": {"edge-a1": 9}}
    assert codes(verify(bundle, plan, current=current, max_moves=2)) == {"MovesBudget"}
    assert verify(bundle, plan, current=current, max_moves=3) == []


# --- matching helpers, Kubernetes semantics ----------------------------------------------

LABELS = {"tier": "edge", "gen": "3", "name": "x"}


@pytest.mark.parametrize(
    ("selector", "matches"),
    [
        pytest.param({}, True, id="empty-matches-all"),
        pytest.param({"matchLabels": {"tier": "edge"}}, True, id="match-labels"),
        pytest.param({"matchLabels": {"tier": "cloud"}}, False, id="match-labels-differs"),
        pytest.param({"matchExpressions": [{"key": "tier", "operator": "In",
                                            "values": ["cloud", "edge"]}]}, True, id="in"),
        pytest.param({"matchExpressions": [{"key": "zone", "operator": "In",
                                            "values": ["a"]}]}, False, id="in-missing-key"),
        pytest.param({"matchExpressions": [{"key": "tier", "operator": "NotIn",
                                            "values": ["edge"]}]}, False, id="notin"),
        pytest.param({"matchExpressions": [{"key": "zone", "operator": "NotIn",
                                            "values": ["a"]}]}, True, id="notin-missing-key"),
        pytest.param({"matchExpressions": [{"key": "gen", "operator": "Exists"}]}, True,
                     id="exists"),
        pytest.param({"matchExpressions": [{"key": "gen", "operator": "DoesNotExist"}]}, False,
                     id="does-not-exist"),
        pytest.param({"matchExpressions": [{"key": "gen", "operator": "Gt", "values": ["2"]}]},
                     True, id="gt"),
        pytest.param({"matchExpressions": [{"key": "gen", "operator": "Gt", "values": ["3"]}]},
                     False, id="gt-equal"),
        pytest.param({"matchExpressions": [{"key": "gen", "operator": "Lt", "values": ["4"]}]},
                     True, id="lt"),
        pytest.param({"matchExpressions": [{"key": "name", "operator": "Lt", "values": ["4"]}]},
                     False, id="lt-not-integer"),
        pytest.param({"matchExpressions": [{"key": "nope", "operator": "Gt", "values": ["0"]}]},
                     False, id="gt-missing-key"),
        pytest.param({"matchLabels": {"tier": "edge"}, "matchExpressions": [
            {"key": "gen", "operator": "DoesNotExist"}]}, False, id="and-of-all"),
    ],
)
def test_label_selector(selector: dict[str, Any], matches: bool) -> None:
    assert label_selector_matches(LabelSelector.model_validate(selector), LABELS) is matches


@pytest.mark.parametrize(
    ("toleration", "taint", "ok"),
    [
        pytest.param({"operator": "Exists"}, {"key": "a", "effect": "NoSchedule"}, True,
                     id="empty-key-exists-tolerates-all"),
        pytest.param({"key": "a", "operator": "Exists"}, {"key": "a", "value": "v",
                                                          "effect": "NoExecute"}, True,
                     id="exists-any-value-any-effect"),
        pytest.param({"key": "a", "value": "v"}, {"key": "a", "value": "v",
                                                  "effect": "NoSchedule"}, True, id="equal"),
        pytest.param({"key": "a", "value": "w"}, {"key": "a", "value": "v",
                                                  "effect": "NoSchedule"}, False,
                     id="equal-other-value"),
        pytest.param({"key": "b", "operator": "Exists"}, {"key": "a", "effect": "NoSchedule"},
                     False, id="other-key"),
        pytest.param({"key": "a", "operator": "Exists", "effect": "NoExecute"},
                     {"key": "a", "effect": "NoSchedule"}, False, id="other-effect"),
    ],
)
def test_tolerates(toleration: dict[str, Any], taint: dict[str, Any], ok: bool) -> None:
    assert tolerates(Toleration.model_validate(toleration), Taint.model_validate(taint)) is ok


def test_prefer_no_schedule_never_excludes(bundle: Bundle) -> None:
    # edge-b1 has spot:PreferNoSchedule; plain tolerates nothing.
    assert verify(bundle, _with(ops__plain={"edge-b1": 3})()) == []


def test_quota_counts_duplicated_copies() -> None:
    docs = [d for d in DOCS if d["kind"] != "Tenant"]
    docs.append({"apiVersion": API, "kind": "Tenant", "metadata": {"name": "ops"},
                 "spec": {"quota": {"cpu": "499m", "pods": 100}}})
    b = load_documents(docs)
    plan = {
        "placements": [
            {"workload": "ops/agent",
             "clusters": {"edge-a1": 1, "edge-a2": 1, "edge-b1": 1, "edge-b2": 1, "cloud-c1": 1}}
        ],
        "unplaced": [{"workload": w["metadata"]["namespace"] + "/" + w["metadata"]["name"]}
                     for w in docs if w["kind"] == "Workload"
                     and w["metadata"]["name"] != "agent"],
    }
    found = verify(b, plan)
    assert codes(found) == {"Quota"}
    assert "cpu 0.5 cores (500m) placed > quota 0.499 cores (499m)" in found[0].message


def test_malformed_plan_is_an_input_error(bundle: Bundle) -> None:
    with pytest.raises(InputError):
        verify(bundle, {"placements": [{"clusters": {}}]})
