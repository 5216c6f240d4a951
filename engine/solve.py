"""Solve a problem in the strict order of spec section 3, within a time limit.

Levels are solved one after the other on one model: each level's optimum (or
the best value found when time runs out) is fixed as a constraint before the
next, and every solution is passed on as a complete hint, so the final plan
is always valid and each level is exact whenever the solver proves it.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field

import numpy as np
from ortools.sat.python import cp_model

from engine.large import solve_large
from engine.model import CompiledModel, Level, compile_model
from engine.problem import Problem
from engine.progress import Progress, ProgressCallback, solution_reporter

__all__ = ["LevelResult", "Solution", "prove_weighted", "solve_problem"]

_INT_MAX = 2**62
#: above this many eligible pairs, :mod:`engine.large` builds the plan (CP-SAT model too big)
LARGE_PAIRS = 20_000
#: from this many pairs on, CP-SAT starts from the construction's plan (and never returns less)
FLOOR_PAIRS = 300


@dataclass
class LevelResult:
    name: str
    value: float
    bound: float
    proved: bool
    seconds: float


@dataclass
class Solution:
    """Replicas per pair and how the solve went."""

    y: np.ndarray
    status: str  # Optimal | Feasible | Infeasible
    seconds: float
    levels: list[LevelResult] = field(default_factory=list)

    @property
    def weighted_bound(self) -> float | None:
        last = self.levels[-1] if self.levels else None
        return last.bound if last and last.name == "weighted" else None


def _set_objective(model: cp_model.CpModel, level: Level) -> None:
    model.clear_objective()
    obj = model.proto.objective
    obj.vars.extend(level.var_index.tolist())
    if level.sense == "max":
        obj.coeffs.extend((-level.coeffs).tolist())
        obj.scaling_factor = -1.0
    else:
        obj.coeffs.extend(level.coeffs.tolist())
        obj.scaling_factor = 1.0


def _fix(model: cp_model.CpModel, level: Level, value: int) -> None:
    """Keep ``level`` at least as good as ``value`` from now on."""
    ct = model.proto.constraints.add().linear
    ct.vars.extend(level.var_index.tolist())
    ct.coeffs.extend(level.coeffs.tolist())
    if level.sense == "max":
        ct.domain.extend([value, _INT_MAX])
    else:
        ct.domain.extend([-_INT_MAX, value])


def _hint(model: cp_model.CpModel, values: np.ndarray) -> None:
    model.clear_hints()
    hint = model.proto.solution_hint
    hint.vars.extend(range(len(values)))
    hint.values.extend(values.tolist())


def _level_value(level: Level, solution: np.ndarray) -> int:
    return int((solution[level.var_index] * level.coeffs).sum())


def _initial_solution(compiled: CompiledModel) -> np.ndarray | None:
    """The all-zero plan (nothing placed) when it is feasible, else ``None``.

    It is feasible unless a moves budget forbids removing what runs today.
    """
    p = compiled.ctx.problem
    if p.max_moves is not None and p.has_current:
        return None
    return np.zeros(len(compiled.model.proto.variables), dtype=np.int64)


def _already_optimal(stage: Level, solution: np.ndarray) -> bool:
    """A stage is optimal without solving when the solution meets a trivial bound."""
    if not len(stage.var_index):
        return True
    value = _level_value(stage, solution)
    if stage.sense == "max":
        return stage.upper is not None and value >= stage.upper
    # a minimisation with non-negative coefficients cannot go below 0
    return value == 0 and bool((stage.coeffs >= 0).all())


def solve_problem(
    problem: Problem,
    *,
    time_limit: float = 10.0,
    workers: int | None = None,
    hint_y: np.ndarray | None = None,
    freeze_current: bool = False,
    on_progress: ProgressCallback | None = None,
) -> Solution:
    """Solve ``problem`` level by level within ``time_limit`` seconds.

    Args:
        problem: the normalised problem.
        time_limit: wall seconds for the whole solve (model building included).
        workers: CP-SAT workers; default 8 for large models, 1 for tiny ones.
        hint_y: replicas per pair to start from (for example the current placement).
        freeze_current: with ``maxMoves: 0``, keep the current placement exactly as it is, even
            where section 3 would add to it (a Duplicated workload below its most copies).
        on_progress: called at each level and each better solution (:mod:`engine.progress`).
    """
    if problem.max_moves == 0 and len(problem.current_n):
        # nothing may move: what runs today is a constant, solve only the new workloads around it
        from engine.pinned import solve_pinned

        pinned = solve_pinned(problem, time_limit=time_limit, frozen=freeze_current)
        if pinned is not None:
            return pinned
    if problem.num_pairs > LARGE_PAIRS and not (problem.max_moves is not None and problem.has_current):
        # too big for one CP-SAT model in the limit: construct by priority (engine.large)
        return solve_large(problem, time_limit=time_limit, hint_y=hint_y)
    start = time.monotonic()
    deadline = start + max(time_limit, 0.05)
    # a fast valid plan first (construction + exact repairs): the hint, and the floor of the result
    floor: Solution | None = None
    if problem.num_pairs >= FLOOR_PAIRS and not (problem.max_moves is not None and problem.has_current):
        floor = solve_large(problem, time_limit=min(0.08 * time_limit, 1.5), hint_y=hint_y)
        if hint_y is None:
            hint_y = floor.y
    compiled = compile_model(problem)
    model = compiled.model
    n_vars = len(model.proto.variables)
    if workers is None:
        workers = 1 if n_vars < 300 else 8

    best = _initial_solution(compiled)
    if hint_y is not None:
        model.clear_hints()
        for i, v in zip(compiled.y_index.tolist(), hint_y.tolist(), strict=True):
            model.proto.solution_hint.vars.append(i)
            model.proto.solution_hint.values.append(int(v))
    elif best is not None:
        _hint(model, best)

    results: list[LevelResult] = []
    levels = [lv for lv in compiled.levels if len(lv.var_index) or lv.name == "weighted"]
    # each level alone: merging them into one big-M objective measured slower
    stages = [(lv, [lv]) for lv in levels]
    all_proved = True
    for k, (stage, parts) in enumerate(stages):
        t0 = time.monotonic()
        if best is not None and _already_optimal(stage, best):
            # e.g. everything of this priority is already placed: optimal without a solve
            for part in parts:
                value = _level_value(part, best)
                results.append(LevelResult(part.name, value / part.scale, value / part.scale, True, 0.0))
                _fix(model, part, value)
            continue
        remaining = deadline - time.monotonic()
        # a level may use what is left but a reserve of 10% per level still to come: the
        # priority levels usually prove fast and hand their time on; a hard one gets most of it
        share = remaining * max(1.0 - 0.1 * (len(stages) - 1 - k), 0.3)
        _set_objective(model, stage)
        solver = cp_model.CpSolver()
        solver.parameters.max_time_in_seconds = max(share, 0.01)
        solver.parameters.num_workers = workers
        solver.parameters.random_seed = 7
        if on_progress is not None:
            placed = None if best is None else int(best[compiled.y_index].sum())
            on_progress(Progress(stage.name, time.monotonic() - start, placed))
        status = solver.solve(model, solution_reporter(on_progress, stage.name, compiled.y_index, start))
        seconds = time.monotonic() - t0
        if status in (cp_model.OPTIMAL, cp_model.FEASIBLE):
            best = np.array(solver.response_proto.solution, dtype=np.int64)
            proved = status == cp_model.OPTIMAL
            bound = solver.best_objective_bound  # already in the stage's own sense
        elif status == cp_model.INFEASIBLE:
            return Solution(np.zeros(problem.num_pairs, np.int64), "Infeasible",
                            time.monotonic() - start, results)
        elif best is not None:
            proved = False
            bound = float("nan")
        else:
            if floor is not None:
                return Solution(floor.y, "Feasible", time.monotonic() - start, floor.levels)
            return Solution(np.zeros(problem.num_pairs, np.int64), "Unknown",
                            time.monotonic() - start, results)
        all_proved &= proved
        for part in parts:
            value = _level_value(part, best)
            part_bound = bound if len(parts) == 1 else (value if proved else float("nan"))
            results.append(
                LevelResult(part.name, value / part.scale, part_bound / part.scale, proved,
                            seconds / len(parts))
            )
            _fix(model, part, value)
        _hint(model, best)

    assert best is not None
    y = best[compiled.y_index]
    if floor is not None and not all_proved and _better(problem, floor.y, y):
        # the time limit stopped CP-SAT short of the construction's plan: keep the better one, and
        # the proofs of the levels where the two agree (their bounds hold for the floor too)
        return Solution(floor.y, "Feasible", time.monotonic() - start, _merge_levels(problem, floor.y, results))
    return Solution(y, "Optimal" if all_proved else "Feasible", time.monotonic() - start, results)


def _merge_levels(problem: Problem, y: np.ndarray, results: list[LevelResult]) -> list[LevelResult]:
    """Level results for replicas ``y``: CP-SAT's proof where ``y`` has the same value, else none."""
    from engine.planner import evaluate

    values = evaluate(problem, y)
    mine = {f"priority:{k}": float(v) for k, v in values.placed_by_priority.items()}
    mine["tier"] = float(values.tier)
    out: list[LevelResult] = []
    same_so_far = True
    for r in results:
        if r.name == "weighted":
            # the bound holds while every level above it has the same value
            bound = r.bound if same_so_far else float("nan")
            weighted = float(values.weighted) - problem.weights.moves * problem.fixed_moves
            out.append(LevelResult(r.name, weighted, bound, False, r.seconds))
            continue
        same = mine.get(r.name) == r.value
        same_so_far &= same
        out.append(LevelResult(r.name, mine.get(r.name, r.value), r.bound if same else float("nan"),
                               r.proved and same, r.seconds))
    return out


def _better(problem: Problem, a: np.ndarray, b: np.ndarray) -> bool:
    """Whether replicas ``a`` beat ``b`` in the order of spec section 3."""
    from engine.planner import evaluate

    va, vb = evaluate(problem, a), evaluate(problem, b)
    ka = (tuple(va.placed_by_priority.values()), -va.tier, -va.weighted)
    kb = (tuple(vb.placed_by_priority.values()), -vb.tier, -vb.weighted)
    return ka > kb


#: above this many pairs one column-generation round takes longer than :func:`bound_seconds` allows
#: (10,000 x 1,000: 6.3M pairs, no round in 5 s, and 10 s more end to end for nothing)
PROVE_PAIRS = 2_000_000


def bound_seconds(time_limit: float) -> float:
    """Time :func:`prove_weighted` gets after a solve of ``time_limit`` seconds: 30% of it, at most 5 s."""
    return min(0.3 * time_limit, 5.0)


def prove_weighted(problem: Problem, solution: Solution, *, time_limit: float) -> Solution:
    """Add a proved lower bound on the weighted level to a plan that has none (the large path).

    The construction path proves nothing by itself; this is
    :func:`engine.refine.cost_bound_at`: the LP minimum of the weighted cost over
    plans placing the same workloads (the "LP minimum at that placement"; capacity
    and quota kept, counts and spread relaxed to valid cuts). Column generation
    converges in about 13 s at 2,000 x 300; within ``time_limit`` the bound is the
    best Lagrangian bound of the rounds so far, valid at any round but looser (2.3%
    after 4 s where the converged gap is 1.3%). The solution is returned unchanged
    when it already has a weighted level, places nothing, or no round finished.
    """
    from engine.planner import evaluate
    from engine.refine import cost_bound_at

    if solution.status != "Feasible" or any(lv.name == "weighted" for lv in solution.levels):
        return solution
    if not solution.y.any() or problem.num_pairs > PROVE_PAIRS:
        return solution
    t0 = time.monotonic()
    bound = cost_bound_at(problem, solution.y, time_limit=time_limit)
    if bound is None or not np.isfinite(bound):
        return solution
    # the level's value and bound leave out the constant moves, as the CP-SAT path's do
    weighted = float(evaluate(problem, solution.y).weighted) - problem.weights.moves * problem.fixed_moves
    level = LevelResult("weighted", weighted, min(bound, weighted), False, time.monotonic() - t0)
    return Solution(solution.y, solution.status, solution.seconds, [*solution.levels, level])
