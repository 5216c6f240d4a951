"""Property test of spec section 4 (2026-12-01): random fleets with a current placement and random edits.

Every plan verifies, and nothing that runs is removed except where section 4 allows it: a
running workload ends unplaced only when a cluster it runs on left the fleet, carries an
untolerated ``NoExecute`` taint, or its current replicas no longer fit (alone, next to the
placements of strictly higher priority) a cluster's capacity or its tenant's quota. A
workload kept under ``notApplied`` runs exactly where it ran. The allowance is written here
from the spec text, with arithmetic only.
"""

from __future__ import annotations

from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from engine.planner import place
from engine.verification import verify
from tests.builders import bundle_of, cluster, tenant, workload


@st.composite
def scenarios(draw: st.DrawFn) -> dict[str, Any]:
    """A fleet, what runs on it today (an earlier plan), the edited fleet and a moves budget."""
    n_c = draw(st.integers(2, 4))
    names = [f"c{i}" for i in range(n_c)]
    caps = {n: draw(st.integers(2, 6)) for n in names}
    n_w = draw(st.integers(1, 4))
    wls = [{"name": f"w{i}", "replicas": draw(st.integers(1, 4)), "priority": draw(st.sampled_from([0, 0, 10])),
            "ns": draw(st.sampled_from(["default", "shop"]))} for i in range(n_w)]
    quota = draw(st.integers(3, 12))
    # the edits
    new_caps = {n: max(0, c + draw(st.integers(-2, 2))) for n, c in caps.items()}
    taints = {n: draw(st.sampled_from([None, None, "NoSchedule", "NoExecute"])) for n in names}
    gone = {n for n in names[1:] if draw(st.integers(0, 4)) == 0}
    scale = [max(1, w["replicas"] + draw(st.integers(-2, 3))) for w in wls]
    new_quota = max(1, quota + draw(st.integers(-4, 2)))
    max_moves = draw(st.sampled_from([None, 0, 1, 3]))
    return {"names": names, "caps": caps, "wls": wls, "quota": quota, "new_caps": new_caps, "taints": taints,
            "gone": gone, "scale": scale, "new_quota": new_quota, "max_moves": max_moves}


def _docs(s: dict[str, Any], *, edited: bool) -> list[dict[str, Any]]:
    docs: list[dict[str, Any]] = []
    for n in s["names"]:
        if edited and n in s["gone"]:
            continue
        taint = s["taints"][n] if edited else None
        docs.append(cluster(n, capacity={"cpu": str(s["new_caps"][n] if edited else s["caps"][n])},
                            taints=[{"key": "k", "value": "v", "effect": taint}] if taint else []))
    docs.append(tenant("shop", quota={"cpu": str(s["new_quota"] if edited else s["quota"])}))
    for i, w in enumerate(s["wls"]):
        replicas = s["scale"][i] if edited else w["replicas"]
        docs.append(workload(w["name"], replicas, namespace=w["ns"], priority=w["priority"]))
    return docs


def _removal_allowed(s: dict[str, Any], plan: Any, key: str, runs: dict[str, int]) -> bool:
    """Spec 4: may ``key``'s running replicas be removed? (cluster gone, NoExecute, no longer fits)"""
    w = next(x for x in s["wls"] if f"{x['ns']}/{x['name']}" == key)
    if any(c in s["gone"] or s["taints"][c] == "NoExecute" for c in runs):
        return True
    # what the plan gives workloads of at least its priority (a running one may be one of them)
    higher = {f"{x['ns']}/{x['name']}": x for x in s["wls"] if x["priority"] >= w["priority"] and x is not w}
    placed = plan.assignment()
    for c, n in runs.items():
        used = sum(placed.get(k, {}).get(c, 0) for k in higher)  # 1 cpu per replica
        if used + n > s["new_caps"][c]:
            return True
    if w["ns"] == "shop":
        used = sum(sum(placed.get(k, {}).values()) for k, x in higher.items() if x["ns"] == "shop")
        if used + sum(runs.values()) > s["new_quota"]:
            return True
    return False


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(scenarios())
def test_random_edits_never_lose_what_runs(s: dict[str, Any]) -> None:
    before = place(bundle_of(*_docs(s, edited=False)), time_limit=2.0)
    current = before.assignment()
    edited = bundle_of(*_docs(s, edited=True))
    plan = place(edited, current=current, max_moves=s["max_moves"], time_limit=2.0)
    if plan.status.solver == "Infeasible":
        return  # nothing is written (the CLI's part); what runs stays as it is
    assert verify(edited, plan, current=current, max_moves=s["max_moves"]) == []
    placed = plan.assignment()
    for n in plan.not_applied:
        assert placed[n.workload] == current[n.workload], n
        assert n.reasons[0].code == "ChangeNotApplied"
    for key, runs in current.items():
        if key not in placed:
            assert _removal_allowed(s, plan, key, runs), (key, runs, plan.unplaced)
