"""Every strategy of the engine, run on one bundle and turned into a verified plan.

The policy case table (``tests/test_policies.py``) runs through each of them, so a concern
cannot be right in one strategy and wrong in another:

* ``exact``: the product's ``place()``; on these tiny bundles that is the CP-SAT path.
* ``large``: construction, repair and refinement (``solve_large``), forced on a small bundle.
* ``pinned-empty`` / ``pinned-part``: the pinned path (``maxMoves: 0``), solving around what is
  committed: nothing, or the exact plan's placement of one workload (the others are new).
* ``fast-empty`` / ``fast-part``: the service's fast path (``engine.fast`` on the warm arrays of
  ``engine.warm``), with nothing or the same workload committed; where it does not apply, the
  pinned path, as the service falls back.

Each plan passes the independent verifier (``engine.verification``) with no violation, whatever the
strategy: that is the one thing every strategy guarantees.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from engine.build import build_problem
from engine.documents.bundle import Bundle
from engine.documents.policy import PlacementPolicy
from engine.fast import FastPlacer, fast_reason
from engine.plan import Plan
from engine.planner import place, plan_from_solution
from engine.problem import Problem
from engine.solvers.dispatch import solve_problem
from engine.solvers.large import solve_large
from engine.solvers.pinned import solve_around, solve_pinned
from engine.solvers.solution import Deadline, LevelResult, Solution
from engine.verification import verify
from engine.warm import WarmFleet

__all__ = ["STRATEGIES", "Strategy", "committed_part"]

Strategy = Callable[[Bundle], Plan]


def _verified(bundle: Bundle, problem: Problem, solution: Solution,
              current: dict[str, dict[str, int]] | None = None) -> Plan:
    plan = plan_from_solution(problem, solution, input_digest=bundle.digest(), current=current)
    violations = verify(bundle, plan, current=current, max_moves=problem.max_moves)
    assert not violations, [str(v) for v in violations]
    return plan


def committed_part(bundle: Bundle) -> dict[str, dict[str, int]]:
    """The exact plan's placement of one workload, as what is committed: the first placed one
    that follows nobody by affinity (a committed follower of a new workload cannot be pinned)."""
    plan = place(bundle, time_limit=10.0)
    followers = set()
    for w in bundle.workloads:
        spec = bundle.policy_selector().policy_for(w)
        if spec is not None and spec.spec.affinity and spec.spec.affinity.workloads:
            followers.add(w.key)
    for pl in plan.placements:
        if pl.workload not in followers:
            return {pl.workload: dict(pl.clusters)}
    return {}


def _committed_y(problem: Problem, current: dict[str, dict[str, int]]) -> np.ndarray:
    y = np.zeros(problem.num_pairs, dtype=np.int64)
    if len(problem.current_w):
        idx = problem.pair_index(problem.current_w, problem.current_c)
        assert (idx >= 0).all(), "the committed placement must be on eligible pairs"
        y[idx] = problem.current_n
    return y


def exact(bundle: Bundle) -> Plan:
    plan = place(bundle, time_limit=10.0)
    assert plan.status.solver == "Optimal"
    return plan


def large(bundle: Bundle) -> Plan:
    problem = build_problem(bundle)
    return _verified(bundle, problem, solve_large(problem, Deadline(2.0)))


def pinned_empty(bundle: Bundle) -> Plan:
    problem = build_problem(bundle)
    return _verified(bundle, problem, solve_around(problem, np.zeros(problem.num_pairs, np.int64), Deadline(5.0),
                                                          solve=solve_problem))


def pinned_part(bundle: Bundle) -> Plan:
    current = committed_part(bundle)
    return _pinned(bundle, build_problem(bundle, current=current, max_moves=0), current)


def _pinned(bundle: Bundle, problem: Problem, current: dict[str, dict[str, int]]) -> Plan:
    if not current:
        return _verified(bundle, problem, solve_around(problem, np.zeros(problem.num_pairs, np.int64),
                                                       Deadline(5.0), solve=solve_problem))
    solution = solve_pinned(problem, Deadline(5.0), solve=solve_problem, frozen=True)
    assert solution is not None, "a valid committed placement must pin"
    return _verified(bundle, problem, solution, current)


def _fast(bundle: Bundle, current: dict[str, dict[str, int]]) -> Plan:
    """The service's fast path (engine.fast on the warm arrays) for the workloads not in ``current``;
    where it does not apply (links, resourceSelectors, unplaced...), the pinned path, as the service does."""
    fleet = Bundle(clusters=bundle.clusters, sites=bundle.sites, tenants=bundle.tenants, objective=bundle.objective)
    selector = bundle.policy_selector()
    chosen = {w.key: selector.policy_for(w) for w in bundle.workloads}
    policies = {f"{p.metadata.namespace}/{p.metadata.name}": p for p in bundle.policies}
    warm = WarmFleet.build(fleet, current, {w.key: w for w in bundle.workloads}, policies)
    new = [w for w in bundle.workloads if w.key not in current]
    named = all(chosen[w.key] is None or (isinstance(chosen[w.key], PlacementPolicy)
                                          and chosen[w.key].metadata.name == w.spec.policy) for w in new)
    pols = [chosen[w.key] if named else None for w in new]
    answer = None
    if new and named and warm.fits() and all(fast_reason(w, p, warm) is None for w, p in zip(new, pols, strict=True)):
        answer = FastPlacer(warm).place(new, pols, deadline=Deadline(5.0))
    problem = build_problem(bundle, current=current or None, max_moves=0 if current else None)
    if answer is None:
        return _pinned(bundle, problem, current)
    assignment = {**current, **answer[0].assignment()}
    index = {k: i for i, k in enumerate(problem.workload_keys)}
    w = np.array([index[k] for k, spread in assignment.items() for _ in spread], dtype=np.int64)
    c = np.array([problem.cluster_names.index(cl) for spread in assignment.values() for cl in spread], dtype=np.int64)
    n = np.array([v for spread in assignment.values() for v in spread.values()], dtype=np.int64)
    y = np.zeros(problem.num_pairs, dtype=np.int64)
    at = problem.pair_index(w, c)
    assert (at >= 0).all(), "the fast path placed replicas on a pair the builder does not know"
    y[at] = n
    level = LevelResult("placed", float(y.sum()), float("nan"), False, 0.0)
    return _verified(bundle, problem, Solution(y, "Feasible", 0.0, [level]), current or None)


def fast_empty(bundle: Bundle) -> Plan:
    return _fast(bundle, {})


def fast_part(bundle: Bundle) -> Plan:
    return _fast(bundle, committed_part(bundle))


STRATEGIES: dict[str, Strategy] = {
    "exact": exact,
    "large": large,
    "pinned-empty": pinned_empty,
    "pinned-part": pinned_part,
    "fast-empty": fast_empty,
    "fast-part": fast_part,
}
