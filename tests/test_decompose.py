"""Placement in parts on Dask (issue 15): one plan, verified whole, never behind the greedy baseline.

A multi-region fleet: most workloads are pinned to their region (so the regions are independent
parts), a few may run anywhere (then the parts share clusters and capacity is split between them).
The parts really run on a Dask cluster: a LocalCluster of 2 worker processes started by the engine's
adapter, or a scheduler this test starts on 127.0.0.1 and names with ``--dask-scheduler``.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from adapters.distributed import dask_solver
from benchmarks.greedy import greedy
from engine import Bundle, Deadline, Solution, build_problem, evaluate, place, plan_from_solution, solve_lp, verify
from engine.decompose import _seams, decompose, partition
from engine.problem import UNLIMITED
from engine.shares import lp_usage
from tests.builders import bundle_of, cluster, policy, tenant, workload

REGIONS = ["north", "south", "east"]
ROOT = Path(__file__).resolve().parents[1]


def _fleet(*, shared: bool) -> list[dict[str, Any]]:
    """3 regions x 4 clusters; per region 8 pinned workloads (priorities 0 and 100); with ``shared``,
    6 more that may run in any region."""
    rng = np.random.default_rng(7)
    docs: list[dict[str, Any]] = []
    for r in REGIONS:
        for i in range(4):
            cores = str(int(rng.choice([4, 6, 8])))
            docs.append(cluster(f"{r}-{i}", region=r, capacity={"cpu": cores, "memory": "64Gi"},
                                price={"cpu": f"{rng.uniform(0.02, 0.05):.3f}"}))
        docs.append(policy(f"in-{r}", clusterAffinity={"fieldSelector": {"matchExpressions": [
            {"key": "region", "operator": "In", "values": [r]}]}}))
        for j in range(8):
            docs.append(workload(f"{r}-app-{j}", int(rng.integers(1, 5)), cpu=str(rng.choice(["500m", "1", "2"])),
                                 policy=f"in-{r}", priority=int(rng.choice([0, 100]))))
    if shared:
        for j in range(6):
            docs.append(workload(f"roaming-{j}", int(rng.integers(2, 6)), cpu="1", priority=50))
    return docs


def _quota_fleet() -> list[dict[str, Any]]:
    """The shared fleet plus a tenant ``team`` with a cpu quota whose workloads are pinned in every
    region (so its quota is shared between parts), and little room left: the shares bind."""
    docs = _fleet(shared=True)
    docs.append(tenant("team", quota={"cpu": "9"}))
    for r in REGIONS:
        docs.append(policy(f"in-{r}", namespace="team", clusterAffinity={"fieldSelector": {"matchExpressions": [
            {"key": "region", "operator": "In", "values": [r]}]}}))
        docs.append(workload(f"{r}-team", 2, namespace="team", cpu="2", policy=f"in-{r}", priority=100))
    return docs


def _placed(plan: Any) -> dict[str, int]:
    return dict(plan.status.objective.placed_by_priority)


def _greedy_placed(bundle: Bundle) -> dict[str, int]:
    problem = build_problem(bundle)
    y = greedy(problem).y
    out: dict[str, int] = {}
    for v in sorted(set(problem.priority.tolist())):
        out[str(v)] = int(y[problem.priority[problem.pair_w] == v].sum())
    return out


def _not_behind(plan: Any, bundle: Bundle) -> None:
    mine, base = _placed(plan), _greedy_placed(bundle)
    for prio, n in base.items():
        assert mine.get(prio, 0) >= n, (prio, mine, base)


def test_regions_are_independent_parts_and_shared_clusters_are_not() -> None:
    alone = build_problem(bundle_of(*_fleet(shared=False)))
    split = decompose(alone, 2)
    assert split.independent and len(split.problems) == 2
    together = build_problem(bundle_of(*_fleet(shared=True)))
    split = decompose(together, 2)
    assert not split.independent and len(split.problems) == 2
    # the parts' capacity shares never add up to more than a cluster has
    total = sum(part.capacity for part in split.problems)
    assert (total <= together.capacity).all()
    keys = sorted(k for part in split.problems for k in part.workload_keys)
    assert keys == sorted(together.workload_keys)  # every workload in exactly one part


def test_lp_shares_give_each_part_what_the_lp_uses_and_never_more_than_the_whole() -> None:
    p = build_problem(bundle_of(*_quota_fleet()))
    part_of, independent = partition(p, 2)
    assert not independent
    lp = solve_lp(p, time_limit=30)
    assert lp.status == "OPTIMAL"
    split = decompose(p, 2, lp_y=lp.y)
    assert split.lp_status == "given" and split.shared.any()
    caps = np.stack([part.capacity for part in split.problems])
    quotas = np.stack([part.quota for part in split.problems])
    limited = p.capacity != UNLIMITED
    assert (caps.sum(axis=0)[limited] <= p.capacity[limited]).all()
    team = p.tenant_names.index("team")
    assert (quotas[:, team] >= 0).all() and quotas[:, team].sum(axis=0)[0] <= p.quota[team][0]
    # every part holds at least what its workloads use in the LP of the whole, on every shared
    # cluster and of the shared quota (the demand split alone gives the roaming part other amounts)
    order = [int(part_of[w[0]]) for w in split.workloads]  # decompose's part k is partition's order[k]
    cap_use, quota_use = lp_usage(p, part_of, 2, lp.y)
    for k, part in enumerate(order):
        held = caps[k][split.shared]
        assert (held >= np.floor(cap_use[part][split.shared] - 1e-6)).all()
        assert (quotas[k, team] >= np.floor(quota_use[part, team] - 1e-6)).all()
    assert (quota_use[:, team, 0] > 0).all()  # both parts hold some of the team's quota in the LP


def test_the_dask_plan_is_verified_whole_and_its_bound_holds_against_the_proved_optimum() -> None:
    bundle = bundle_of(*_quota_fleet())
    with dask_solver(workers=2) as solver:
        plan = place(bundle, time_limit=30, solver=solver)
    assert plan.status.solver == "Feasible"
    assert verify(bundle, plan) == []
    optimum = place(bundle, time_limit=60)
    assert optimum.status.solver == "Optimal"  # CP-SAT proved every level of the whole problem
    # the bound over every plan with the plan's replicas per priority and tier (spec 5): the optimum
    # is one of them when it places the same replicas, so a bound that holds is never above its cost
    assert plan.status.bound is not None
    assert _placed(plan) == _placed(optimum) and plan.status.objective.tier == optimum.status.objective.tier
    assert plan.status.bound <= optimum.status.objective.weighted + 1e-6
    assert plan.status.bound <= plan.status.objective.weighted + 1e-6


def test_the_seams_re_solve_a_leader_with_its_followers() -> None:
    """A leader on a shared cluster is a seam; its follower, on a cluster no other part uses, moves
    with it. Re-solved alone, the leader would leave the follower's cluster for the cheaper shared
    one (its link to the follower dropped from the seam's sub-problem) and the plan fail verification."""
    where = {"fieldSelector": {"matchExpressions": [{"key": "region", "operator": "In", "values": ["north"]}]}}
    docs = [
        cluster("north-0", region="north", capacity={"cpu": "16"}, price={"cpu": "0.01"}),
        cluster("north-1", region="north", capacity={"cpu": "16"}, price={"cpu": "0.09"}),
        cluster("south-0", region="south", capacity={"cpu": "16"}, price={"cpu": "0.02"}),
        cluster("south-1", region="south", capacity={"cpu": "16"}, price={"cpu": "0.02"}),
        policy("in-north", clusterAffinity=where),
        policy("follow", clusterAffinity=where, affinity={"workloads": ["leader"]}),
        policy("in-south", clusterAffinity={"fieldSelector": {"matchExpressions": [
            {"key": "region", "operator": "In", "values": ["south"]}]}}),
        policy("roam", clusterAffinity={"clusterNames": ["north-0", "south-0", "south-1"]}),
        workload("leader", 2, policy="in-north"),
        workload("follower", 1, policy="follow"),
        workload("roaming", 2, policy="roam"),
        workload("local", 2, policy="in-south"),
    ]
    bundle = bundle_of(*docs)
    p = build_problem(bundle)
    split = decompose(p, 2)
    assert not split.independent and split.shared[p.cluster_names.index("north-0")]
    assert not split.shared[p.cluster_names.index("north-1")]
    y = np.zeros(p.num_pairs, dtype=np.int64)
    for w, c, n in (("leader", "north-0", 1), ("leader", "north-1", 1), ("follower", "north-1", 1),
                    ("roaming", "south-0", 2), ("local", "south-1", 2)):
        y[p.pair_index(np.array([p.workload_keys.index(f"default/{w}")]),
                       np.array([p.cluster_names.index(c)]))] = n
    assert verify(bundle, plan_from_solution(p, Solution(y, "Feasible", 0.0, []), input_digest="test")) == []
    merged = _seams(p, split, y, Deadline(20))
    assert verify(bundle, plan_from_solution(p, Solution(merged, "Feasible", 0.0, []), input_digest="test")) == []
    assert evaluate(p, merged).weighted < evaluate(p, y).weighted  # the seams did re-solve: cheaper than before


@pytest.mark.parametrize("shared", [False, True])
def test_local_cluster_places_a_multi_region_fleet(shared: bool) -> None:
    bundle = bundle_of(*_fleet(shared=shared))
    with dask_solver(workers=2) as solver:
        plan = place(bundle, time_limit=20, solver=solver)
    assert plan.status.solver in ("Optimal", "Feasible")
    assert verify(bundle, plan) == []
    _not_behind(plan, bundle)
    whole = place(bundle, time_limit=20)
    if not shared:  # independent parts: the same replicas per priority as one solve of the whole
        assert _placed(plan) == _placed(whole)
        # at this placement the independent parts' bounds add up; never above what the plan pays
        at = plan.status.bound_at_placement
        assert at is not None and at <= plan.status.objective.weighted + 1e-6


def _cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([str(Path(sys.executable).parent / "berth"), *args], capture_output=True, text=True,
                          cwd=ROOT, timeout=300)


def test_place_on_a_remote_scheduler(tmp_path: Path) -> None:
    from dask.distributed import LocalCluster

    bundle = tmp_path / "fleet.json"
    bundle.write_text(json.dumps(_fleet(shared=True)))
    out = tmp_path / "plan.json"
    with LocalCluster(n_workers=2, threads_per_worker=1, processes=False, host="127.0.0.1", protocol="tcp",
                      dashboard_address="127.0.0.1:0") as cluster:
        done = _cli("place", str(bundle), "--dask-scheduler", cluster.scheduler_address, "--time-limit", "20",
                    "--output", str(out), "-q")
        assert done.returncode == 0, done.stderr
        assert "berth-part" in cluster.scheduler.task_prefixes  # the parts ran on this scheduler's workers
    plan = json.loads(out.read_text())
    loaded = bundle_of(*json.loads(bundle.read_text()))
    assert verify(loaded, plan) == []


def test_an_unreachable_scheduler_is_bad_input(tmp_path: Path) -> None:
    bundle = tmp_path / "fleet.json"
    bundle.write_text(json.dumps(_fleet(shared=False)))
    out = tmp_path / "plan.json"
    done = _cli("place", str(bundle), "--dask-scheduler", "tcp://127.0.0.1:9", "--output", str(out))
    assert done.returncode == 2, done.stderr
    assert "cannot reach the Dask scheduler tcp://127.0.0.1:9" in done.stderr
    assert not out.exists()


def _lost_first(parts: Any, seconds: float, hints: Any, prove: bool) -> list[Any]:
    """``RunParts`` whose first part never comes back (a lost worker); the others solved as a worker would."""
    from engine.decompose import solve_part

    return [None, *(solve_part(part, seconds / len(parts), hint, prove=prove)
                    for part, hint in zip(parts[1:], hints[1:], strict=True))]


@pytest.mark.parametrize("shared", [False, True])
def test_a_lost_part_costs_only_its_time_and_its_workloads_are_re_solved(shared: bool) -> None:
    """A part that fails or comes back late (``None``) is not a failed plan: its workloads are re-solved
    on the whole residual (the seams), the plan verifies whole, is never behind greedy, and says in a
    warning what happened."""
    from engine.decompose import solve_decomposed

    bundle = bundle_of(*_fleet(shared=shared))

    def solver(problem: Any, **kwargs: Any) -> Solution:
        return solve_decomposed(problem, run=_lost_first, parts=2, **kwargs)

    plan = place(bundle, time_limit=20, solver=solver)
    assert verify(bundle, plan) == []
    _not_behind(plan, bundle)
    assert _placed(plan) == _placed(place(bundle, time_limit=20))
    # no sum of the parts' bounds (one is missing); the planner's own proof over the whole may give one
    at = plan.status.bound_at_placement
    assert at is None or at <= plan.status.objective.weighted + 1e-6
    assert any("1 of the 2 parts failed or came back late" in w and "re-solved on this machine" in w
               for w in plan.status.warnings), plan.status.warnings


def test_parts_left_without_time_are_solved_whole_here() -> None:
    """``RunParts`` answering ``None`` (moving the parts took their time): the whole problem is solved on
    this machine with what is left, as without parts, and the plan says so."""
    from engine.decompose import solve_decomposed

    bundle = bundle_of(*_fleet(shared=True))

    def solver(problem: Any, **kwargs: Any) -> Solution:
        return solve_decomposed(problem, run=lambda *_: None, parts=2, **kwargs)

    plan = place(bundle, time_limit=20, solver=solver)
    assert verify(bundle, plan) == []
    assert _placed(plan) == _placed(place(bundle, time_limit=20))
    assert any("the whole problem was solved on this machine" in w for w in plan.status.warnings)


def test_the_dask_runner_gives_up_parts_it_cannot_solve_in_time_or_at_all() -> None:
    """On a real LocalCluster: parts that moving leaves next to no time are not solved apart (``None``);
    a part whose task raises on its worker comes back as ``None`` beside the others' results."""
    p = build_problem(bundle_of(*_fleet(shared=False)))
    split = decompose(p, 2)
    assert split.independent and len(split.problems) == 2
    with dask_solver(workers=2) as solver:
        assert solver._run(split.problems, 1e-3, [None, None], True) is None
        broken = np.zeros(3, dtype=np.int64)  # a hint of the wrong length: the part's solve raises on the worker
        results = solver._run(split.problems, 10.0, [broken, None], True)
    assert results is not None and results[0] is None
    assert results[1] is not None and len(results[1].y) == split.problems[1].num_pairs
