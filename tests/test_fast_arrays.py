"""The warm arrays and the fast path's solver (engine.warm, engine.fast, engine.solvers.incremental).

The service-level property test (tests/test_fast_path_property.py) compares whole answers; these
check the parts: the fill that answers plain Divided workloads is the exact CP-SAT optimum, the
arrays follow every change in place, and the compiled policy groups follow the fleet.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from engine.documents.bundle import Bundle
from engine.fast import FastPlacer, fast_reason
from engine.objective import evaluate
from engine.problem import UNLIMITED
from engine.solvers.dispatch import solve_new
from engine.solvers.exact import solve_exact
from engine.solvers.incremental import closed_form
from engine.solvers.solution import Deadline
from engine.warm import WarmFleet
from tests.builders import bundle_of, cluster, policy, site, tenant, workload


def _fleet(docs: list[dict[str, Any]]) -> tuple[Bundle, Bundle]:
    """(the fleet alone, everything) of ``docs``."""
    whole = bundle_of(*docs)
    return Bundle(clusters=whole.clusters, sites=whole.sites, tenants=whole.tenants, objective=whole.objective), whole


@st.composite
def plain_requests(draw: st.DrawFn) -> list[dict[str, Any]]:
    """Clusters with tiers, prices, latency, preferences and taints; one committed and one new Divided workload."""
    n_c = draw(st.integers(2, 7))
    docs: list[dict[str, Any]] = []
    latency = {}
    for i in range(n_c):
        spec: dict[str, Any] = {"capacity": {"cpu": str(draw(st.integers(1, 6))), "memory": "64Gi"},
                                "price": {"cpu": str(draw(st.sampled_from([0.01, 0.02, 0.03, 0.05])))}}
        if draw(st.integers(0, 3)) == 0:
            spec["capacity"]["pods"] = draw(st.integers(1, 4))
        if draw(st.integers(0, 4)) == 0:
            spec["taints"] = [{"key": "spot", "effect": "PreferNoSchedule"}]
        docs.append(cluster(f"c{i}", labels={"tier": draw(st.sampled_from(["a", "b"]))}, **spec))
        latency[f"c{i}"] = draw(st.sampled_from([1.0, 5.0, 20.0]))
    docs.append(site("users", latency))
    if draw(st.booleans()):
        docs.append(tenant("t1", quota={"cpu": str(draw(st.integers(2, 14)))}))
    pspec: dict[str, Any] = {}
    if draw(st.booleans()):
        pspec["clusterAffinities"] = [{"affinityName": "first", "labelSelector": {"matchLabels": {"tier": "a"}}},
                                      {"affinityName": "second", "labelSelector": {"matchLabels": {"tier": "b"}}}]
    if draw(st.booleans()):
        pspec["preferredClusters"] = [{"weight": 60, "labelSelector": {"matchLabels": {"tier": "b"}}}]
    if draw(st.booleans()):
        pspec["latency"] = {"site": "users"}
    if draw(st.booleans()):
        pspec["replicaScheduling"] = {"maxPerCluster": draw(st.integers(1, 3))}
    docs.append(policy("p", "t1", **pspec))
    docs.append(workload("old", draw(st.integers(1, 4)), namespace="t1", cpu="1"))
    docs.append(workload("new", draw(st.integers(1, 6)), namespace="t1", cpu=draw(st.sampled_from(["500m", "1"])),
                         policy="p"))
    return docs


@settings(max_examples=60, deadline=None, suppress_health_check=list(HealthCheck), derandomize=True, database=None)
@given(docs=plain_requests(), spread_at=st.integers(0, 6))
def test_the_fill_is_the_cp_sat_optimum(docs: list[dict[str, Any]], spread_at: int) -> None:
    """One Divided workload beside a committed one: the fill and the exact CP-SAT solve agree level by level."""
    fleet, whole = _fleet(docs)
    old = next(w for w in whole.workloads if w.metadata.name == "old")
    new = next(w for w in whole.workloads if w.metadata.name == "new")
    names = [c.metadata.name for c in fleet.clusters]
    committed = {old.key: {names[spread_at % len(names)]: old.spec.replicas}}
    warm = WarmFleet.build(fleet, committed, {old.key: old}, {})
    assume(warm.fits())  # the service takes the pinned path when what is committed does not fit
    problem = FastPlacer(warm).problem([new], [whole.policies[0]])
    assert closed_form(problem)
    fill, exact = solve_new(problem, Deadline(5.0)), solve_exact(problem, Deadline(5.0), workers=1)
    assert exact.status == "Optimal"
    a, b = evaluate(problem, fill.y), evaluate(problem, exact.y)
    assert a.placed_by_priority == b.placed_by_priority and a.tier == b.tier
    assert abs(a.weighted - b.weighted) <= 1e-6 * max(1.0, abs(b.weighted))


def test_shapes_that_are_not_linear_go_to_cp_sat() -> None:
    docs = [cluster("a"), cluster("b"), policy("agg", replicaScheduling={"replicaDivisionPreference": "Aggregated"}),
            policy("two", clusters={"min": 2}),
            policy("dup", replicaScheduling={"replicaSchedulingType": "Duplicated"}),
            workload("x", 2, policy="agg"), workload("y", 2, policy="two"), workload("z", 1, policy="dup")]
    fleet, whole = _fleet(docs)
    placer = FastPlacer(WarmFleet.build(fleet, {}, {}, {}))
    by_name = {p.metadata.name: p for p in whole.policies}
    for w, name in zip(whole.workloads, ("agg", "two", "dup"), strict=True):
        assert not closed_form(placer.problem([w], [by_name[name]]))
    plan, _ = placer.place(whole.workloads, [by_name[n] for n in ("agg", "two", "dup")], deadline=Deadline(5.0))
    got = plan.assignment()
    assert list(got["default/x"].values()) == [2]  # Aggregated: the fewest clusters
    assert got["default/y"] == {"a": 1, "b": 1} and got["default/z"] == {"a": 1, "b": 1}


def test_the_arrays_follow_accept_delete_and_refresh() -> None:
    docs = [cluster("a", capacity={"cpu": "4", "pods": 10}), cluster("b", capacity={"cpu": "2"}),
            tenant("t1", quota={"cpu": "5"}), workload("w", 3, namespace="t1", cpu="1")]
    fleet, whole = _fleet(docs)
    w = whole.workloads[0]
    warm = WarmFleet(fleet)
    everything = np.arange(2)
    assert warm.residual(everything, ["cpu", "pods"]).tolist() == [[4000, 10], [2000, UNLIMITED]]
    warm.add(w.key, {"a": 2, "b": 1}, w, None)
    assert warm.residual(everything, ["cpu", "pods"]).tolist() == [[2000, 8], [1000, UNLIMITED]]
    assert warm.tenant_residual(fleet.tenants[0], ["cpu"]) == {"cpu": 2000} and warm.fits()
    warm.add(w.key, {"a": 3}, w, None)  # an update replaces what it had
    assert warm.residual(everything, ["cpu"]).tolist() == [[1000], [2000]]
    smaller = bundle_of(cluster("a", capacity={"cpu": "2", "pods": 10}), cluster("b", capacity={"cpu": "2"}))
    warm.set_fleet(Bundle(clusters=smaller.clusters, tenants=fleet.tenants))  # live capacity shrank
    assert warm.residual(everything, ["cpu"]).tolist() == [[-1000], [2000]] and not warm.fits()
    warm.remove(w.key)
    assert warm.residual(everything, ["cpu"]).tolist() == [[2000], [2000]] and warm.fits()
    warm.add(w.key, {"b": 1}, w, None)
    gone = bundle_of(cluster("a", capacity={"cpu": "4"}))
    warm.set_fleet(Bundle(clusters=gone.clusters))  # b left the fleet while it holds a replica
    assert warm.residual(np.arange(1), ["cpu"]).tolist() == [[4000]] and not warm.fits()


def test_policy_groups_are_compiled_once_per_fleet() -> None:
    docs = [cluster("a", labels={"tier": "edge"}), cluster("b"), policy("edge", clusterAffinity={
        "labelSelector": {"matchLabels": {"tier": "edge"}}}), workload("w", 1, policy="edge")]
    fleet, whole = _fleet(docs)
    warm = WarmFleet(fleet)
    placer = FastPlacer(warm)
    first = placer.template("default", whole.policies[0])
    assert placer.template("default", whole.policies[0]) is first and first.clusters.tolist() == [0]
    relabelled = bundle_of(cluster("a"), cluster("b", labels={"tier": "edge"}))
    warm.set_fleet(Bundle(clusters=relabelled.clusters))
    again = placer.template("default", whole.policies[0])
    assert again is not first and again.clusters.tolist() == [1]
    plan, _ = placer.place(whole.workloads, whole.policies, deadline=Deadline(5.0))
    assert plan.assignment() == {"default/w": {"b": 1}}


def test_links_keep_a_workload_off_the_arrays() -> None:
    docs = [cluster("a"), policy("near", affinity={"workloads": ["db"]}), workload("db", 1),
            workload("app", 1, policy="near"), workload("solo", 1)]
    fleet, whole = _fleet(docs)
    db, app, solo = whole.workloads
    warm = WarmFleet.build(fleet, {db.key: {"a": 1}}, {db.key: db}, {})
    assert fast_reason(app, whole.policies[0], warm) == "linked to other workloads"
    assert fast_reason(solo, None, warm) is None
    warm.add(solo.key, {"a": 1}, solo, None)
    named = WarmFleet.build(fleet, {app.key: {"a": 1}}, {app.key: app}, {"default/near": whole.policies[0]})
    assert fast_reason(db, None, named) == "named by a committed workload"


def test_a_commit_between_solve_and_answer_sends_the_request_to_the_pinned_path(
        monkeypatch: pytest.MonkeyPatch) -> None:
    """A dry run solved beside a commit that takes the room: the answer is checked against the residual as it
    is when answered, so it is not served (the pinned paths decide), and never over capacity."""
    import engine.fast

    docs = [cluster("a", capacity={"cpu": "2"}), workload("mine", 2, cpu="1"), workload("theirs", 2, cpu="1")]
    fleet, whole = _fleet(docs)
    mine, theirs = whole.workloads
    warm = WarmFleet(fleet)
    placer = FastPlacer(warm)
    real = engine.fast.solve_new

    def racing(problem: Any, deadline: Deadline) -> Any:
        solution = real(problem, deadline)
        warm.add(theirs.key, {"a": 2}, theirs, None)  # committed meanwhile
        return solution

    monkeypatch.setattr(engine.fast, "solve_new", racing)
    assert placer.place([mine], [None], deadline=Deadline(5.0)) is None
    monkeypatch.setattr(engine.fast, "solve_new", real)
    warm.remove(theirs.key)
    plan, _ = placer.place([mine], [None], deadline=Deadline(5.0))
    assert plan.assignment() == {"default/mine": {"a": 2}}
