"""Property test: the service's fast paths (the warm arrays of engine.fast; a small bundle) are exact.

Random fleets (clusters, a tenant with a quota, policies with counts, spread, tiers,
affinity and anti-affinity) get a committed placement (the engine's plan for some
workloads, given to the service as the placement that runs); then one or two new
workloads are placed by the service twice, through the fast path and through today's
whole-fleet pinned path. Both answers must be equal in the strict order of spec section 3,
scored by the hand-written oracle of tests/test_property.py over the whole fleet: the same
replicas placed per priority, the same tier sum, the same weighted cost within rounding;
and the fast one must pass the independent verifier together with everything committed.
"""

from __future__ import annotations

import json
import tempfile
from pathlib import Path
from typing import Any

import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from adapters.api import hash_token, load_config
from adapters.api.state import Principal, ServiceState, parse_request_documents
from engine.documents.bundle import Bundle, Origin
from engine.planner import place
from engine.verification import verify
from tests.builders import bundle_of, cluster, policy, tenant, workload
from tests.test_property import score

ADMIN = Principal("ops", True)


@st.composite
def services(draw: st.DrawFn) -> tuple[list[dict[str, Any]], list[list[dict[str, Any]]]]:
    """Fleet documents with committed workloads, and requests (documents) to place next."""
    n_c = draw(st.integers(2, 5))
    docs: list[dict[str, Any]] = []
    for i in range(n_c):
        capacity: dict[str, Any] = {"cpu": str(draw(st.integers(1, 6)))}
        if draw(st.integers(0, 3)) == 0:
            capacity["pods"] = draw(st.integers(1, 4))
        docs.append(cluster(f"c{i}", labels={"tier": draw(st.sampled_from(["a", "b"]))},
                            region=draw(st.sampled_from(["r1", "r2"])), capacity=capacity,
                            price={"cpu": str(draw(st.sampled_from([0.01, 0.02, 0.05])))}))
    if draw(st.booleans()):
        docs.append(tenant("t1", quota={"cpu": str(draw(st.integers(2, 12)))}))
    n_w = draw(st.integers(0, 5))
    n_new = draw(st.integers(1, 2))
    names = [f"w{i}" for i in range(n_w + n_new)]
    ns = draw(st.sampled_from(["default", "t1"]))
    workloads: list[list[dict[str, Any]]] = []
    for i, name in enumerate(names):
        pspec: dict[str, Any] = {}
        if draw(st.integers(0, 3)) == 0:
            pspec["clusterAffinity"] = {"labelSelector": {"matchLabels": {"tier": draw(st.sampled_from(["a", "b"]))}}}
        elif draw(st.integers(0, 4)) == 0:
            pspec["clusterAffinities"] = [{"affinityName": "first", "labelSelector": {"matchLabels": {"tier": "a"}}},
                                          {"affinityName": "second", "labelSelector": {"matchLabels": {"tier": "b"}}}]
        rs: dict[str, Any] = {}
        if draw(st.integers(0, 5)) == 0:
            rs["replicaSchedulingType"] = "Duplicated"
            if draw(st.booleans()):
                pspec["clusters"] = {"min": 1, "max": draw(st.integers(1, 3))}
        elif draw(st.integers(0, 3)) == 0:
            lo = draw(st.integers(1, 2))
            pspec["clusters"] = {"min": lo, "max": draw(st.integers(lo, 3))}
        elif draw(st.integers(0, 3)) == 0:  # the shapes the warm arrays' fast path solves by CP-SAT or by fill
            rs["replicaDivisionPreference"] = "Aggregated"
        if not rs.get("replicaSchedulingType") and draw(st.integers(0, 3)) == 0:
            rs["minPerCluster"] = draw(st.integers(1, 2))
            if draw(st.booleans()):
                rs["maxPerCluster"] = draw(st.integers(rs["minPerCluster"], 3))
        if draw(st.integers(0, 3)) == 0:
            pspec["preferredClusters"] = [{"weight": draw(st.sampled_from([20, 80])),
                                           "labelSelector": {"matchLabels": {"tier": "a"}}}]
        if rs:
            pspec["replicaScheduling"] = rs
        if draw(st.integers(0, 3)) == 0:
            sc: dict[str, Any] = {"spreadByField": "region", "minGroups": draw(st.integers(1, 2))}
            if draw(st.booleans()):
                sc["maxSkew"] = draw(st.integers(0, 1))
            pspec["spreadConstraints"] = [sc]
        earlier = names[:i]
        # affinity only to even-numbered earlier workloads from even ones, anti-affinity otherwise:
        # no pair gets both (a contradiction is an input error)
        near = [n for n in earlier if i % 2 == 0 and int(n[1:]) % 2 == 0]
        apart = [n for n in earlier if i % 2 == 1 or int(n[1:]) % 2 == 1]
        if near and draw(st.integers(0, 3)) == 0:
            pspec["affinity"] = {"workloads": [draw(st.sampled_from(near))]}
        if apart and draw(st.integers(0, 3)) == 0:
            pspec["antiAffinity"] = {"workloads": [draw(st.sampled_from(apart))]}
        extra: dict[str, Any] = {}
        group: list[dict[str, Any]] = []
        if pspec:
            group.append(policy(f"p-{name}", ns, **pspec))
            extra["policy"] = f"p-{name}"
        group.insert(0, workload(name, draw(st.integers(1, 3)), namespace=ns,
                                 cpu=draw(st.sampled_from(["500m", "1", "2"])),
                                 priority=draw(st.sampled_from([0, 5])), **extra))
        workloads.append(group)
    committed_docs = docs + [d for group in workloads[:n_w] for d in group]
    return committed_docs, workloads[n_w:]


def _service(root: Path, docs: list[dict[str, Any]]) -> ServiceState | None:
    """A service whose bundle is ``docs`` and whose running placement is the engine's plan for it."""
    bundle = bundle_of(*docs)
    plan = place(bundle, time_limit=5)
    if plan.status.solver not in ("Optimal", "Feasible"):
        return None
    placed = plan.assignment()
    # what runs: the placed workloads, their policies; anti-affinity to one that is not placed binds nothing
    kept: list[dict[str, Any]] = []
    for d in docs:
        key = f"{d['metadata'].get('namespace')}/{d['metadata']['name']}"
        if d["kind"] == "Workload" and key not in placed:
            continue
        if d["kind"] == "PlacementPolicy":
            owner = key.replace("/p-", "/", 1)
            if owner not in placed:
                continue
            anti = d["spec"].get("antiAffinity")
            if anti:
                d = {**d, "spec": {**d["spec"], "antiAffinity": {"workloads": [
                    n for n in anti["workloads"] if f"{d['metadata']['namespace']}/{n}" in placed]}}}
        kept.append(d)
    (root / "bundle").mkdir()
    (root / "bundle" / "fleet.yaml").write_text(yaml.safe_dump_all(kept), encoding="utf-8")
    (root / "plan.json").write_text(json.dumps({"placements": [{"workload": k, "clusters": v}
                                                                for k, v in placed.items()]}), encoding="utf-8")
    (root / "berth.yaml").write_text(yaml.safe_dump({
        "bundle": ["bundle"], "current": "plan.json",
        "tokens": [{"name": "ops", "sha256": hash_token("x" * 16), "admin": True}],
        "limits": {"timeLimitSeconds": 10}}), encoding="utf-8")
    state = ServiceState(load_config(root / "berth.yaml"))
    state.fast.start(background=False)
    return state


def _whole(state: ServiceState, items: list[Any]) -> Bundle:
    """The committed fleet plus the request, as the service closes it (what the oracle scores)."""
    d = state.snap.defs
    workloads = {**{k: d.workloads[k] for k in state.snap.committed},
                 **{doc.key: doc for doc, _ in items if doc.kind == "Workload"}}
    policies = {**d.policies, **{f"{doc.metadata.namespace}/{doc.metadata.name}": doc for doc, _ in items
                                 if doc.kind == "PlacementPolicy"}}
    origins = {**d.origins, **{(str(doc.kind), f"{doc.metadata.namespace}/{doc.metadata.name}"): Origin(None, -1)
                               for doc, _ in items}}
    return state.working_bundle(workloads, policies, origins)


def test_fast_path_equals_the_whole_fleet_solve() -> None:
    used: list[str] = []  # which fast path answered: "fast" (the warm arrays) or "small" (a small bundle)

    @settings(max_examples=40, deadline=None, suppress_health_check=list(HealthCheck), derandomize=True,
              database=None)
    @given(case=services())
    def check(case: tuple[list[dict[str, Any]], list[list[dict[str, Any]]]]) -> None:
        compare(case, used)

    check()
    assert used.count("fast") >= 8 and len(used) >= 14, f"the fast paths answered only {used}"


def compare(case: tuple[list[dict[str, Any]], list[list[dict[str, Any]]]], used: list[str]) -> None:
    docs, requests = case
    with tempfile.TemporaryDirectory() as tmp:
        state = _service(Path(tmp), docs)
        if state is None:
            return
        request = [d for group in requests for d in group]
        committed = dict(state.snap.committed)
        try:
            items = parse_request_documents(request, kinds=("Workload", "PlacementPolicy"), principal=ADMIN)
        except Exception:  # a request the service refuses (e.g. affinity to a workload that is not placed)
            return
        answers = []
        for fast in (True, False):
            state.fast.checked = fast and state.fast.status == "ready"
            before = {path: state.metrics.fast_path.labels(path, "")._value.get() for path in ("fast", "small")}
            try:
                plan, _, _ = state.place(ADMIN, items, dry_run=True, time_limit=10)
            except Exception as exc:  # the same refusal both ways
                answers.append(type(exc).__name__)
                continue
            if fast:
                used.extend(path for path, n in before.items()
                            if state.metrics.fast_path.labels(path, "")._value.get() > n)
            answers.append(plan)
        if isinstance(answers[0], str) or isinstance(answers[1], str):
            assert answers[0] == answers[1]
            return
        fast_plan, exact_plan = answers
        assert fast_plan.status.solver == exact_plan.status.solver
        whole = _whole(state, items)
        scores = []
        for plan in (fast_plan, exact_plan):
            assignment = {**committed, **plan.assignment()}
            scores.append(score(whole, assignment))
        (placed_f, tier_f, weighted_f), (placed_e, tier_e, weighted_e) = scores
        assert placed_f == placed_e and tier_f == tier_e
        assert abs(weighted_f - weighted_e) <= 1e-6 * max(1.0, abs(weighted_e))
        assignment = {**committed, **fast_plan.assignment()}
        full_plan = {"placements": [{"workload": k, "clusters": v} for k, v in assignment.items()],
                     "unplaced": [{"workload": w.key, "reasons": []} for w in whole.workloads
                                  if w.key not in assignment]}
        assert verify(whole, full_plan) == []
