"""The exact strategy: CP-SAT, in the strict order of spec section 3, within a deadline.

Levels are solved one after the other on one model: each level's optimum (or
the best value found when time runs out) is fixed as a constraint before the
next, and every solution is passed on as a complete hint, so the final plan
is always valid and each level is exact whenever the solver proves it.
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING

import numpy as np

from engine.lazy import lazy_module
from engine.objective import better, evaluate
from engine.problem import BIG, Problem
from engine.solvers.model import CompiledModel, Level, compile_model, set_objective
from engine.solvers.progress import Progress, ProgressCallback, solution_reporter
from engine.solvers.solution import Deadline, LevelResult, Solution

if TYPE_CHECKING:
    from ortools.sat.python import cp_model
else:
    cp_model = lazy_module("ortools.sat.python.cp_model")

__all__ = ["solve_exact"]


def _fix(model: cp_model.CpModel, level: Level, value: int) -> None:
    """Keep ``level`` at least as good as ``value`` from now on."""
    ct = model.proto.constraints.add().linear
    ct.vars.extend(level.var_index.tolist())
    ct.coeffs.extend(level.coeffs.tolist())
    if level.sense == "max":
        ct.domain.extend([value, BIG])
    else:
        ct.domain.extend([-BIG, value])


def _hint(model: cp_model.CpModel, values: np.ndarray) -> None:
    model.clear_hints()  # type: ignore[no-untyped-call]  # ortools leaves CpModel.clear_hints unannotated
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


def solve_exact(
    problem: Problem,
    deadline: Deadline,
    *,
    workers: int | None = None,
    hint_y: np.ndarray | None = None,
    floor: Solution | None = None,
    on_progress: ProgressCallback | None = None,
) -> Solution:
    """Solve ``problem`` level by level by ``deadline``.

    Args:
        problem: the normalised problem.
        deadline: when the whole solve (model building included) must end.
        workers: CP-SAT workers; default 8 for large models, 1 for tiny ones.
        hint_y: replicas per pair to start from (for example the current placement).
        floor: a valid plan made before (the construction's): never return a worse one.
        on_progress: called at each level and each better solution (:mod:`engine.solvers.progress`).
    """
    deadline = deadline.at_least(0.05)
    compiled = compile_model(problem)
    model = compiled.model
    n_vars = len(model.proto.variables)
    if workers is None:
        workers = 1 if n_vars < 300 else 8

    best = _initial_solution(compiled)
    if hint_y is not None:
        model.clear_hints()  # type: ignore[no-untyped-call]  # ortools leaves CpModel.clear_hints unannotated
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
                results.append(LevelResult(part.name, value / part.scale, (value - part.slack) / part.scale, True, 0.0))
                _fix(model, part, value)
            continue
        remaining = deadline.remaining()
        # a level may use what is left but a reserve of 10% per level still to come: the
        # priority levels usually prove fast and hand their time on; a hard one gets most of it
        share = remaining * max(1.0 - 0.1 * (len(stages) - 1 - k), 0.3)
        set_objective(model, stage)
        solver = cp_model.CpSolver()
        solver.parameters.max_time_in_seconds = max(share, 0.01)
        solver.parameters.num_workers = workers
        solver.parameters.random_seed = 7
        if on_progress is not None:
            placed = None if best is None else int(best[compiled.y_index].sum())
            on_progress(Progress(stage.name, deadline.elapsed(), placed))
        status = solver.solve(model, solution_reporter(on_progress, stage.name, compiled.y_index, deadline.start))
        seconds = time.monotonic() - t0
        if status in (cp_model.OPTIMAL, cp_model.FEASIBLE):
            best = np.array(solver.response_proto.solution, dtype=np.int64)
            proved = status == cp_model.OPTIMAL
            bound = solver.best_objective_bound  # already in the stage's own sense
        elif status == cp_model.INFEASIBLE:
            return Solution(np.zeros(problem.num_pairs, np.int64), "Infeasible",
                            deadline.elapsed(), results)
        elif best is not None:
            proved = False
            bound = float("nan")
        else:
            if floor is not None:
                return Solution(floor.y, "Feasible", deadline.elapsed(), floor.levels)
            return Solution(np.zeros(problem.num_pairs, np.int64), "Unknown",
                            deadline.elapsed(), results)
        all_proved &= proved
        for part in parts:
            value = _level_value(part, best)
            part_bound = bound if len(parts) == 1 else (value if proved else float("nan"))
            # the weighted level's bound is over every plan at least as good at the levels above (each
            # fixed as a constraint before it), less what rounding its coefficients may hide
            results.append(
                LevelResult(part.name, value / part.scale, (part_bound - part.slack) / part.scale, proved,
                            seconds / len(parts))
            )
            _fix(model, part, value)
        _hint(model, best)

    assert best is not None
    y = best[compiled.y_index]
    if floor is not None and not all_proved and better(problem, floor.y, y):
        # the time limit stopped CP-SAT short of the construction's plan: keep the better one, and
        # the proofs of the levels where the two agree (their bounds hold for the floor too)
        return Solution(floor.y, "Feasible", deadline.elapsed(), _merge_levels(problem, floor.y, results))
    return Solution(y, "Optimal" if all_proved else "Feasible", deadline.elapsed(), results)


def _merge_levels(problem: Problem, y: np.ndarray, results: list[LevelResult]) -> list[LevelResult]:
    """Level results for replicas ``y``: CP-SAT's proof where ``y`` has the same value, else none."""
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
