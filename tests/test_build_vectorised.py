"""The vectorised build against the per-pair reference, on small random fleets.

``engine.build`` and the policy filters compute eligibility and the per-pair arrays with numpy
over every cluster at once (selectors over a column table of labels, taints through a
(group x distinct taint) matrix). The verifier (``engine.verification``) decides the same things
one (workload, cluster) pair at a time, from the spec text, with no code in common. On random
fleets with every selector operator, field selectors, cluster names, tolerations of every shape,
tiers, preferences, latency and tenants, the two must agree on every pair:

* a pair passes every filter (``reason_row(w) == -1``) exactly when the verifier finds no reason
  it is ineligible, and the first reason recorded is the first failing filter in registry order;
* with replicas running today, a pair exists exactly when the verifier allows a replica there
  (an untolerated ``NoSchedule`` taint keeps running replicas, spec 2.2);
* tier, preference, ``PreferNoSchedule`` and latency of every pair are those of the documents.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from engine.build import build_problem
from engine.documents.bundle import Bundle
from engine.documents.selectors import LabelTable, affinity_mask, selector_mask
from engine.verification import affinity_matches, tolerates
from engine.verification.matching import label_selector_matches
from engine.verification.reading import _Checker
from tests.builders import bundle_of, cluster, policy, site, tenant, workload

KEYS = ["tier", "zone-size", "gpu"]
VALUES = ["a", "b", "3", "12", "x"]
#: the verifier's reason code for what each filter plugin excludes
VERIFIER_CODE = {"Tenancy": "TenantSelector", "ClusterAffinity": "ClusterAffinity", "Taints": "Untolerated",
                 "Latency": "Latency"}


@st.composite
def requirements(draw: st.DrawFn, keys: list[str]) -> dict[str, Any]:
    op = draw(st.sampled_from(["In", "NotIn", "Exists", "DoesNotExist", "Gt", "Lt"]))
    req: dict[str, Any] = {"key": draw(st.sampled_from(keys)), "operator": op}
    if op in ("In", "NotIn"):
        req["values"] = draw(st.lists(st.sampled_from(VALUES), min_size=1, max_size=3, unique=True))
    elif op in ("Gt", "Lt"):
        req["values"] = [str(draw(st.integers(0, 15)))]
    return req


@st.composite
def affinities(draw: st.DrawFn, names: list[str]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    if draw(st.integers(0, 3)) == 0:
        out["clusterNames"] = draw(st.lists(st.sampled_from([*names, "gone"]), max_size=3, unique=True))
    if draw(st.integers(0, 3)) == 0:
        out["exclude"] = draw(st.lists(st.sampled_from(names), max_size=2, unique=True))
    if draw(st.booleans()):
        sel: dict[str, Any] = {}
        if draw(st.booleans()):
            sel["matchLabels"] = {draw(st.sampled_from(KEYS)): draw(st.sampled_from(VALUES))}
        sel["matchExpressions"] = draw(st.lists(requirements(KEYS), max_size=2))
        out["labelSelector"] = sel
    if draw(st.integers(0, 2)) == 0:
        out["fieldSelector"] = {"matchExpressions": [{
            "key": draw(st.sampled_from(["region", "zone", "provider"])),
            "operator": draw(st.sampled_from(["In", "NotIn"])),
            "values": draw(st.lists(st.sampled_from(["r1", "r2", "z1", "aws"]), min_size=1, max_size=2, unique=True)),
        }]}
    return out


@st.composite
def tolerations(draw: st.DrawFn) -> dict[str, Any]:
    effect = draw(st.sampled_from(["", "NoSchedule", "PreferNoSchedule", "NoExecute"]))
    if draw(st.integers(0, 4)) == 0:
        tol: dict[str, Any] = {"operator": "Exists"}  # empty key: every key
    elif draw(st.booleans()):
        tol = {"key": draw(st.sampled_from(["gpu", "spot", "maint"])), "operator": "Exists"}
    else:
        tol = {"key": draw(st.sampled_from(["gpu", "spot", "maint"])), "value": draw(st.sampled_from(["y", "n"]))}
    if effect:
        tol["effect"] = effect
    if effect == "NoExecute" and draw(st.booleans()):
        tol["tolerationSeconds"] = draw(st.integers(0, 600))
    return tol


@st.composite
def fleets(draw: st.DrawFn) -> tuple[Bundle, dict[str, dict[str, int]]]:
    n_c = draw(st.integers(1, 7))
    names = [f"c{i}" for i in range(n_c)]
    docs: list[dict[str, Any]] = []
    for name in names:
        labels = {k: draw(st.sampled_from(VALUES)) for k in KEYS if draw(st.booleans())}
        taints = [{"key": draw(st.sampled_from(["gpu", "spot", "maint"])), "value": draw(st.sampled_from(["y", "n"])),
                   "effect": draw(st.sampled_from(["NoSchedule", "PreferNoSchedule", "NoExecute"]))}
                  for _ in range(draw(st.integers(0, 2)))]
        spec: dict[str, Any] = {"capacity": {"cpu": "64"}, "taints": taints}
        for field, values in (("region", ["r1", "r2"]), ("zone", ["z1", "z2"]), ("provider", ["aws", "gcp"])):
            if draw(st.booleans()):
                spec[field] = draw(st.sampled_from(values))
        docs.append(cluster(name, labels=labels, **spec))
    docs.append(site("users", {n: draw(st.sampled_from([1, 5, 20])) for n in names if draw(st.integers(0, 3))}))
    if draw(st.booleans()):
        docs.append(tenant("t1", clusterSelector=draw(affinities(names))))
    n_w = draw(st.integers(1, 5))
    current: dict[str, dict[str, int]] = {}
    for i in range(n_w):
        ns = draw(st.sampled_from(["default", "t1"]))
        spec = {}
        if draw(st.booleans()):
            spec["clusterAffinities"] = [{"affinityName": f"tier{t}", **draw(affinities(names))}
                                         for t in range(draw(st.integers(1, 3)))]
        elif draw(st.booleans()):
            spec["clusterAffinity"] = draw(affinities(names))
        spec["tolerations"] = draw(st.lists(tolerations(), max_size=3))
        spec["preferredClusters"] = [{"weight": draw(st.integers(1, 100)), **draw(affinities(names))}
                                     for _ in range(draw(st.integers(0, 2)))]
        if draw(st.integers(0, 2)) == 0:
            spec["latency"] = {"site": "users", **({"maxMs": draw(st.sampled_from([2, 10]))}
                                                   if draw(st.booleans()) else {})}
        docs.append(policy(f"p{i}", namespace=ns, **spec))
        docs.append(workload(f"w{i}", draw(st.integers(1, 3)), namespace=ns, policy=f"p{i}"))
        running = {n: 1 for n in names if draw(st.integers(0, 3)) == 0}
        if running:
            current[f"{ns}/w{i}"] = running
    return bundle_of(*docs), current


def _first_tier(spec: Any, c: Any) -> int:
    if spec.cluster_affinities:
        return next(t for t, tier in enumerate(spec.cluster_affinities) if affinity_matches(tier, c))
    return 0


def _prefer_no_schedule(spec: Any, c: Any) -> bool:
    """An untolerated PreferNoSchedule taint (Kubernetes: only a toleration without seconds tolerates)."""
    return any(t.effect == "PreferNoSchedule" and not any(tolerates(x, t) for x in spec.tolerations)
               for t in c.spec.taints)


@settings(max_examples=250, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(fleets())
def test_every_pair_agrees_with_the_verifier(case: tuple[Bundle, dict[str, dict[str, int]]]) -> None:
    bundle, current = case
    problem = build_problem(bundle)
    kept = build_problem(bundle, current=current)
    ck = _Checker(bundle)
    for w, wl in enumerate(bundle.workloads):
        spec = ck.spec(wl)
        for c, cl in enumerate(bundle.clusters):
            reasons = [code for code, _ in ck.ineligible(wl, cl, placed=1)]
            first = int(problem.reason_row(w)[c])
            assert (first == -1) == (not reasons), (wl.key, cl.metadata.name, reasons)
            if reasons:
                failing = [name for name in problem.reason_codes if VERIFIER_CODE.get(name) in reasons]
                assert problem.reason_codes[first] == failing[0]
            at = int(problem.pair_index(np.array([w]), np.array([c]))[0])
            assert (at >= 0) == (not reasons)
            if at >= 0:
                assert spec is not None
                assert problem.pair_tier[at] == _first_tier(spec, cl)
                want = sum(t.weight / 100.0 for t in spec.preferred_clusters if affinity_matches(t, cl))
                assert abs(problem.pair_preference[at] - want) < 1e-9
                assert bool(problem.pair_prefer_no_schedule[at]) == _prefer_no_schedule(spec, cl)
                ms = bundle.sites[0].spec.latency_ms.get(cl.metadata.name) if spec.latency else None
                assert problem.pair_latency[at] == (ms or 0.0)
            # replicas running today may stay where only NoSchedule now forbids new ones
            ck.current = current
            allowed_here = not ck.ineligible(wl, cl, placed=1)
            ck.current = {}
            at_kept = int(kept.pair_index(np.array([w]), np.array([c]))[0])
            assert (at_kept >= 0) == allowed_here, (wl.key, cl.metadata.name, current.get(wl.key))


@settings(max_examples=300, deadline=None)
@given(st.data())
def test_label_table_selectors_match_one_cluster_at_a_time(data: st.DataObject) -> None:
    names = [f"c{i}" for i in range(data.draw(st.integers(1, 8)))]
    labels = [{k: data.draw(st.sampled_from(VALUES)) for k in KEYS if data.draw(st.booleans())} for _ in names]
    bundle = bundle_of(*[cluster(n, labels=lab) for n, lab in zip(names, labels, strict=True)],
                       policy("p", clusterAffinity=data.draw(affinities(names))))
    affinity = bundle.policies[0].spec.cluster_affinity
    assert affinity is not None
    effective = [c.effective_labels() for c in bundle.clusters]
    table = LabelTable(effective, names)
    want = [affinity_matches(affinity, c) for c in bundle.clusters]
    assert affinity_mask(affinity, names, table).tolist() == want
    assert affinity_mask(affinity, names, effective).tolist() == want  # a plain list of label maps too
    if affinity.label_selector is not None:
        assert selector_mask(affinity.label_selector, table).tolist() == [
            label_selector_matches(affinity.label_selector, lab) for lab in effective]
