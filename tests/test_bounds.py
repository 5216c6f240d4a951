"""Honest bounds (spec 5): ``status.bound`` holds over every plan with the same replicas per priority and
tier, whichever workloads those are; a bound at the plan's own workloads is ``boundAtPlacement``."""

from __future__ import annotations

import json

import numpy as np
from hypothesis import HealthCheck, given, settings
from ortools.sat.python import cp_model

from engine.build import build_problem
from engine.documents.bundle import Bundle
from engine.objective import evaluate
from engine.planner import place, plan_from_solution
from engine.problem import Problem
from engine.solvers.bound import bound_over_plans, prove_weighted
from engine.solvers.large import solve_large
from engine.solvers.model import compile_model, set_objective
from engine.solvers.solution import Deadline, LevelResult, Solution
from tests.builders import bundle_of, cluster, workload
from tests.test_property import fleets


def _best_at_levels(problem: Problem, y: np.ndarray) -> float | None:
    """The least weighted cost of any plan with ``y``'s replicas per priority and tier sum (CP-SAT, exact)."""
    compiled = compile_model(problem)
    model = compiled.model
    for level in compiled.levels[:-1]:  # every level above the weighted one, fixed at y's value
        value = int((y[np.searchsorted(compiled.y_index, level.var_index)] * level.coeffs).sum())
        ct = model.proto.constraints.add().linear
        ct.vars.extend(level.var_index.tolist())
        ct.coeffs.extend(level.coeffs.tolist())
        ct.domain.extend([value, value])
    set_objective(model, compiled.levels[-1])
    solver = cp_model.CpSolver()
    solver.parameters.max_time_in_seconds = 30
    solver.parameters.num_workers = 1
    if solver.solve(model) != cp_model.OPTIMAL:
        return None
    best = np.array(solver.response_proto.solution, dtype=np.int64)[compiled.y_index]
    return float(evaluate(problem, best).weighted)


def _dear_choice() -> tuple[Bundle, Problem, np.ndarray]:
    """Room for one of two 2-replica workloads; the plan takes the dear one (memory is priced)."""
    bundle = bundle_of(
        cluster("edge", capacity={"cpu": "2", "memory": "16Gi"}, price={"cpu": "0.1", "memory": "0.5"}),
        workload("dear", 2, resources={"cpu": "1", "memory": "4Gi"}),
        workload("cheap", 2, cpu="1"),
    )
    problem = build_problem(bundle)
    y = np.zeros(problem.num_pairs, dtype=np.int64)
    y[problem.pairs_of(problem.workload_keys.index("default/dear"))] = 2
    return bundle, problem, y


def test_bound_holds_over_every_plan_and_the_placement_bound_is_reported_apart() -> None:
    _, problem, y = _dear_choice()
    levels = [LevelResult("priority:0", 2.0, float("nan"), False, 0.0)]
    proved = prove_weighted(problem, Solution(y, "Feasible", 0.0, levels), deadline=Deadline(30))
    plan = plan_from_solution(problem, proved, input_digest="x")
    status = plan.status
    weighted = status.objective.weighted  # 2 x (0.1 + 4 x 0.5) = 4.2
    best = _best_at_levels(problem, y)  # the cheap workload instead: 2 x 0.1 = 0.2
    assert best is not None and best < weighted - 1
    assert status.bound is not None and status.bound <= best + 1e-6
    # at this choice of workloads nothing cheaper exists: that bound is the plan's own cost, and it
    # is not a bound over every plan (it lies above the cheap plan), so it never appears as ``bound``
    assert status.bound_at_placement is not None and status.bound_at_placement > best
    assert abs(status.bound_at_placement - weighted) < 1e-4 and status.gap_at_placement is not None
    assert status.gap is not None and status.gap > 0.9
    out = json.loads(plan.to_json())["status"]
    assert out["bound"] == status.bound and out["boundAtPlacement"] == status.bound_at_placement
    assert "gapAtPlacement" in out


def test_exact_plan_bound_is_over_every_plan() -> None:
    # the exact path chooses the cheap workload itself; its CP-SAT bound is over all plans at its levels
    bundle, _, _ = _dear_choice()
    plan = place(bundle, time_limit=10)
    assert plan.status.solver == "Optimal"
    assert plan.status.bound is not None and abs(plan.status.bound - plan.status.objective.weighted) < 1e-5
    assert plan.status.objective.weighted < 0.3


def test_large_path_bound_is_below_the_placement_bound() -> None:
    from benchmarks.generate import Instance
    from engine.documents.load import load_documents
    from engine.solvers.dispatch import LARGE_PAIRS

    bundle = load_documents(Instance("big", "edge", 500, 80, 0.9, seed=5).documents())
    problem = build_problem(bundle)
    assert problem.num_pairs > LARGE_PAIRS
    solution = solve_large(problem, Deadline(4))
    proved = prove_weighted(problem, solution, deadline=Deadline(60))
    plan = plan_from_solution(problem, proved, input_digest="x")
    s = plan.status
    assert s.bound is not None and s.bound_at_placement is not None
    assert s.bound <= s.bound_at_placement + 1e-6 <= s.objective.weighted + 2e-6
    # the bound over every plan does not depend on which workloads this plan chose: another plan with
    # the same replicas per priority and tier gets the same bound (the LP fixes only those sums)
    again = bound_over_plans(problem, solution.y, deadline=Deadline(60))
    assert again is not None and abs(again - s.bound) < 1e-3 * max(1.0, abs(s.bound))


def test_a_bound_without_time_for_an_lp_round_still_holds() -> None:
    # no time for the LP: the bound without capacity rows (the cheapest replicas anywhere) is reported
    _, problem, y = _dear_choice()
    bound = bound_over_plans(problem, y, deadline=Deadline(0.0))
    best = _best_at_levels(problem, y)
    assert bound is not None and best is not None
    assert 0.2 - 1e-4 <= bound <= best + 1e-6  # the two cheap replicas: 2 x 0.1


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(fleets(max_clusters=5, max_workloads=6, max_replicas=4))
def test_bound_over_plans_never_exceeds_the_best_plan_at_those_levels(bundle: Bundle) -> None:
    problem = build_problem(bundle)
    # two different plans: the construction's and CP-SAT's; each bound must hold for every plan at its levels
    for y in (solve_large(problem, Deadline(2)).y, place(bundle, time_limit=5, verify=False)):
        if not isinstance(y, np.ndarray):
            plan = y
            if plan.status.bound is not None:
                best = _best_at_levels(problem, _replicas(problem, plan))
                assert best is None or plan.status.bound <= best + 1e-5
            continue
        if not y.any():
            continue
        bound = bound_over_plans(problem, y, deadline=Deadline(30))
        best = _best_at_levels(problem, y)
        assert bound is not None
        if best is not None:
            assert bound <= best + 1e-5


@settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(fleets(max_clusters=4, max_workloads=5, max_replicas=4))
def test_bound_over_plans_counts_moves_no_higher_than_they_are(bundle: Bundle) -> None:
    # what runs today: the construction's plan, and one replica more of its first workload on a cluster
    # that left the fleet (removed for sure; with it the workload runs more than it asks: a scale-down)
    first = build_problem(bundle)
    start = solve_large(first, Deadline(2)).y
    current: dict[str, dict[str, int]] = {}
    for j in np.nonzero(start)[0].tolist():
        key = first.workload_keys[int(first.pair_w[j])]
        current.setdefault(key, {})[first.cluster_names[int(first.pair_c[j])]] = int(start[j])
    if current:
        current[next(iter(current))]["gone-cluster"] = 1
    problem = build_problem(bundle, current=current)
    for y in (solve_large(problem, Deadline(2), hint_y=None).y, np.zeros(problem.num_pairs, dtype=np.int64)):
        bound = bound_over_plans(problem, y, deadline=Deadline(30))
        best = _best_at_levels(problem, y)
        assert bound is not None
        if best is not None:
            assert bound <= best + 1e-5


def _replicas(problem: Problem, plan) -> np.ndarray:  # type: ignore[no-untyped-def]
    y = np.zeros(problem.num_pairs, dtype=np.int64)
    for pl in plan.placements:
        w = problem.workload_keys.index(pl.workload)
        for name, n in pl.clusters.items():
            y[problem.pair_index(np.array([w]), np.array([problem.cluster_names.index(name)]))[0]] = n
    return y
