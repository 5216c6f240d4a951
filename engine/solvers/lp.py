"""The LP relaxation of the whole problem, every level at once: :func:`solve_lp`.

One combined objective orders the levels of spec section 3 by weight (each weight a factor
``_STEP`` above what the levels below it can change per replica); HiGHS solves it by warm column
generation over :class:`~engine.solvers.relaxation.Relaxation` (few columns per workload, every
pair priced by gathers). Its optimum bounds the replicas each priority can place (the benchmark's
"LP placed" column), and its replicas per pair are what :mod:`engine.shares` gives each part of a
decomposed problem.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from engine.objective import pair_weights
from engine.problem import Problem
from engine.solvers.master import column_generation
from engine.solvers.relaxation import Relaxation
from engine.solvers.solution import Deadline

__all__ = ["LpResult", "solve_lp"]

_STEP = 10.0


class _Combined(Relaxation):
    """The relaxation with the combined objective of :func:`solve_lp`."""

    def combined(self) -> tuple[np.ndarray, dict[str, float]]:
        """One minimisation objective that orders the levels by weight (a guide, not exact).

        ``weighted + M_tier * tier - sum_k M_k * placed_k``, each weight a
        factor ``_STEP`` above what the levels below it can change per replica.
        """
        p = self.p
        c = np.zeros(self.n_cols)
        per = pair_weights(p) + self.credit
        agg = p.aggregated[p.pair_w]
        per[agg] += p.weights.clusters / np.maximum(p.pair_ub[agg], 1)
        c[: p.num_pairs] = per
        c[p.num_pairs :] = p.weights.moves
        span = float(np.abs(per).max()) if len(per) else 1.0
        span = max(span, p.weights.moves, 1e-3)
        weights: dict[str, float] = {}
        m = _STEP * span
        if p.pair_tier.any():
            weights["tier"] = m
            c[: p.num_pairs] += m * p.pair_tier
            m *= _STEP * (1 + float(p.pair_tier.max()))
        pair_prio = p.priority[p.pair_w]
        for value in sorted(set(p.priority.tolist())):
            weights[f"priority:{value}"] = m
            c[: p.num_pairs] -= m * (pair_prio == value)
            m *= _STEP
        return c, weights

    def solve(self, objective: np.ndarray, deadline: Deadline) -> tuple[str, np.ndarray, float, float]:
        """Minimise by warm column generation (:func:`engine.solvers.master.column_generation`).

        Returns status (``OPTIMAL`` once no column can improve the LP, ``FEASIBLE`` when time ran out
        before that, ``NOT_SOLVED`` when no round finished), ``x``, the objective value, a Lagrangian
        lower bound on the objective over *all* columns (valid whatever the status).
        """
        lo, hi = self.row_lo, self.row_hi
        last: list[np.ndarray] = []
        bounds: list[float] = []

        def on_round(x: np.ndarray, duals: np.ndarray) -> None:
            last[:] = [x]
            reduced = objective - self.price(duals)
            rows = np.where(duals > 0, duals * np.where(np.isfinite(lo), lo, 0.0),
                            duals * np.where(np.isfinite(hi), hi, 0.0))
            bounds.append(float(np.minimum(reduced, 0.0) @ self.ub + rows.sum()))

        converged = column_generation(self, objective, deadline, on_round=on_round)
        if not bounds:
            return "NOT_SOLVED", np.zeros(self.n_cols), float("nan"), -np.inf
        x = last[0]
        return ("OPTIMAL" if converged else "FEASIBLE"), x, float(objective @ x), max(bounds)


@dataclass
class LpResult:
    """The combined LP: its solution and what is needed to bound any plan's weighted cost."""

    y: np.ndarray
    placed: dict[str, float]
    tier: float
    weights: dict[str, float]
    bound_total: float
    status: str
    seconds: float

    constant_moves: float = 0.0


def solve_lp(problem: Problem, *, time_limit: float = 30.0, keep: int = 8) -> LpResult:
    """Solve the combined LP relaxation (see :meth:`_Combined.combined`) within ``time_limit`` seconds."""
    deadline = Deadline(time_limit)
    p = problem
    lp = _Combined(p, keep)
    c, weights = lp.combined()
    status, x, _, bound = lp.solve(c, deadline)
    y = x[: p.num_pairs]
    pair_prio = p.priority[p.pair_w]
    placed = {f"priority:{v}": float(y[pair_prio == v].sum()) for v in sorted(set(p.priority.tolist()), reverse=True)}
    return LpResult(y=y, placed=placed, tier=float((y * p.pair_tier).sum()), weights=weights,
                    bound_total=bound, status=status, seconds=deadline.elapsed(),
                    constant_moves=lp.constant_moves)
