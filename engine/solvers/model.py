"""Compile a :class:`~engine.problem.Problem` into a CP-SAT model.

The model reads like the OR-Tools samples, in a fixed order: variables, the
core link (all or nothing), the plugins' constraints, then the objective
levels of spec section 3 as linear expressions that :mod:`engine.solvers.exact`
optimises one after the other.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

from engine.lazy import lazy_module
from engine.objective import most_copies
from engine.problem import Problem
from policies import registry as concerns
from policies import replica_shape
from policies.base import ModelContext
from policies.registry import PLUGINS

if TYPE_CHECKING:
    from ortools.sat.python import cp_model
else:
    cp_model = lazy_module("ortools.sat.python.cp_model")

__all__ = ["CompiledModel", "Level", "compile_model", "objective_scale"]

#: sign of each weighted-objective term (preferences are rewards)
TERM_SIGN = {"preference": -1.0}
#: weight attribute of ObjectiveWeights for each term name
TERM_WEIGHT = {
    "cost": "cost",
    "latency": "latency",
    "moves": "moves",
    "clusters": "clusters",
    "preference": "preference",
    "preferNoSchedule": "prefer_no_schedule",
}


@dataclass
class Level:
    """One lexicographic level: ``sense`` is ``max`` or ``min``; ``scale`` maps back to natural units."""

    name: str
    var_index: np.ndarray
    coeffs: np.ndarray
    sense: str
    scale: float = 1.0
    upper: int | None = None  # a proven optimum when sense == "max" (everything placed)
    #: how far rounding the coefficients to integers can lower the true level below the integer one
    #: (in the level's integer units): a bound of the integer model minus this holds for the true level
    slack: float = 0.0


@dataclass
class CompiledModel:
    model: cp_model.CpModel
    ctx: ModelContext
    y_index: np.ndarray  # proto index of y[p]
    levels: list[Level]


def needs_used(problem: Problem) -> np.ndarray:
    """Workloads whose pairs need a Boolean "used" variable: those some concern does not let split freely
    (:func:`policies.registry.rigid`: bounds, counts, spread, co-location, Duplicated, Aggregated).

    Plain Divided workloads need only their integer replica variables, which keeps big models small.
    """
    return concerns.rigid(problem)


def objective_scale(coeffs: np.ndarray, others: list[float]) -> float:
    """Integer scale for the weighted objective: 1e6 per natural unit, less if huge."""
    biggest = max([float(np.abs(coeffs).max()) if len(coeffs) else 0.0, *others, 1e-12])
    scale = 1e6
    while biggest * scale > 1e10 and scale > 1:
        scale /= 10
    return scale


def compile_model(problem: Problem) -> CompiledModel:
    """Build the CP-SAT model and its objective levels for ``problem``."""
    p = problem
    model = cp_model.CpModel()

    # y[p] = replicas of workload w_p on cluster c_p (eligible pairs only)
    y = [model.new_int_var(0, int(ub), "") for ub in p.pair_ub.tolist()]
    y_index = np.array([v.index for v in y], dtype=np.int64)

    # used[p] = y[p] > 0, only where some constraint needs it
    need = needs_used(p)
    used: list[cp_model.IntVar | None] = [None] * p.num_pairs
    for i in np.nonzero(need[p.pair_w])[0].tolist():
        used[i] = model.new_bool_var("")

    # placed[w] = the workload gets all its replicas
    placed = [model.new_bool_var("") for _ in range(p.num_workloads)]
    starts = np.searchsorted(p.pair_w, np.arange(p.num_workloads + 1))
    split = replica_shape.divided(p)
    for w in range(p.num_workloads):
        lo, hi = int(starts[w]), int(starts[w + 1])
        if lo == hi:
            model.add(placed[w] == 0)
        elif split[w]:
            # all or nothing: sum_c y[w, c] = replicas * placed[w]
            model.add(
                cp_model.LinearExpr.sum(y[lo:hi]) == int(p.replicas[w]) * placed[w]
            )

    ctx = ModelContext(model=model, problem=p, y=y, used=used, placed=placed)
    for plugin in PLUGINS:
        plugin.constrain(ctx)
    for plugin in PLUGINS:
        plugin.score(ctx)

    levels: list[Level] = []
    # level 1..k: replicas placed at each priority, highest first (maximise)
    pair_priority = p.priority[p.pair_w]
    for value in sorted(set(p.priority.tolist()), reverse=True):
        sel = np.nonzero(pair_priority == value)[0]
        upper = _level_upper(p, value)
        levels.append(
            Level(f"priority:{value}", y_index[sel], np.ones(len(sel), dtype=np.int64), "max",
                  upper=upper)
        )
    # tiers: sum y * tierIndex (minimise)
    tiered = np.nonzero(p.pair_tier > 0)[0]
    levels.append(Level("tier", y_index[tiered], p.pair_tier[tiered].astype(np.int64), "min"))
    # weighted cost, integer-scaled once here
    levels.append(_weighted_level(ctx, y_index))
    return CompiledModel(model=model, ctx=ctx, y_index=y_index, levels=levels)


def _level_upper(p: Problem, value: int) -> int:
    """Most replicas that priority ``value`` could ever place (every workload in full, every copy)."""
    pairs = np.bincount(p.pair_w, minlength=p.num_workloads)
    mine = (p.priority == value) & (pairs > 0)
    return int((p.replicas[mine] * most_copies(p)[mine]).sum())


def _weighted_level(ctx: ModelContext, y_index: np.ndarray) -> Level:
    p = ctx.problem
    weights = p.weights
    per_pair = np.zeros(p.num_pairs, dtype=float)
    for name, values in ctx.pair_terms.items():
        per_pair += TERM_SIGN.get(name, 1.0) * getattr(weights, TERM_WEIGHT[name]) * values
    others: list[tuple[int, float]] = []
    for name, items in ctx.terms.items():
        weight = TERM_SIGN.get(name, 1.0) * getattr(weights, TERM_WEIGHT[name])
        for expr, coefficient in items:
            others.append((expr.index, weight * coefficient))
    scale = objective_scale(per_pair, [abs(c) for _, c in others])
    index = np.concatenate([y_index, np.array([i for i, _ in others], dtype=np.int64)])
    coeffs = np.concatenate([per_pair, np.array([c for _, c in others], dtype=float)])
    ints = np.rint(coeffs * scale).astype(np.int64)
    keep = ints != 0
    # true * scale = integer objective - sum err * x; every variable lies in its domain [lo, hi]
    err = ints - coeffs * scale
    domains = ctx.model.proto.variables
    lo = np.array([domains[i].domain[0] for i in index.tolist()], dtype=float)
    hi = np.array([domains[i].domain[-1] for i in index.tolist()], dtype=float)
    slack = float(np.maximum(err * lo, err * hi).sum()) if len(index) else 0.0
    return Level("weighted", index[keep], ints[keep], "min", scale=scale, slack=max(slack, 0.0))


def set_objective(model: cp_model.CpModel, level: Level) -> None:
    """Make ``level`` the model's objective (CP-SAT minimises: a maximised level is negated)."""
    model.clear_objective()  # type: ignore[no-untyped-call]  # ortools leaves CpModel.clear_objective unannotated
    obj = model.proto.objective
    obj.vars.extend(level.var_index.tolist())
    if level.sense == "max":
        obj.coeffs.extend((-level.coeffs).tolist())
        obj.scaling_factor = -1.0
    else:
        obj.coeffs.extend(level.coeffs.tolist())
        obj.scaling_factor = 1.0
