"""Column generation over the LP relaxation, warm: one HiGHS model grown round by round.

:func:`column_generation` minimises an objective over a
:class:`~engine.solvers.relaxation.Relaxation`: the restricted LP over a few columns per workload
is solved, every pair is priced with its dual prices (:meth:`Relaxation.price`), the columns of
most negative reduced cost are added, and the LP is solved again *from the basis it ended with*.

Why one model kept across rounds: scipy's ``linprog`` builds and solves every round from scratch;
at 2,000 x 300 the bound's LP took 20-25 s to converge that way, nearly all of it in HiGHS
re-finding a basis it had one round before. Adding columns keeps the last basis primal feasible,
so each round is a few simplex iterations.

HiGHS comes in through ``highspy``'s core class ``_Highs``: the public ``highspy.Highs`` prints a
banner on standard output when it is made, before logging can be switched off, and Berth's commands
write plans on standard output.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Protocol

import numpy as np

from engine.problem import FloatArray, IntArray
from engine.solvers.relaxation import Relaxation
from engine.solvers.solution import Deadline

__all__ = ["Columns", "Master", "column_generation"]


class Columns(Protocol):
    """What :class:`Master` reads of an LP: its rows' bounds, its columns' bounds, and the matrix of any
    set of columns (:class:`~engine.solvers.relaxation.Relaxation`, and the cost LP of
    :mod:`engine.solvers.cost_lp`)."""

    n_rows: int
    n_cols: int
    row_lo: FloatArray
    row_hi: FloatArray
    lb: FloatArray
    ub: FloatArray

    def columns(self, cols: IntArray) -> Any:
        """The matrix of columns ``cols`` (sorted), in compressed sparse column form."""


class Master:
    """The restricted LP over the columns added so far, in one HiGHS model (see the module docstring)."""

    def __init__(self, relax: Columns, objective: FloatArray) -> None:
        from highspy._core import _Highs  # an extension module: imported when an LP is first solved

        self.relax = relax
        self.objective = objective
        self.cols = np.zeros(0, dtype=np.int64)
        self.highs = _Highs()
        self.highs.setOptionValue("output_flag", False)
        n = relax.n_rows
        self.highs.addRows(n, relax.row_lo.astype(float), relax.row_hi.astype(float), 0,
                           np.zeros(n, dtype=np.int32), np.zeros(0, dtype=np.int32), np.zeros(0))

    def add(self, cols: IntArray) -> None:
        """Add the columns ``cols`` (indices into the relaxation's columns, none added before)."""
        if not len(cols):
            return
        cols = np.sort(cols)
        a = self.relax.columns(cols)
        self.highs.addCols(len(cols), self.objective[cols].astype(float), self.relax.lb[cols].astype(float),
                           self.relax.ub[cols].astype(float), int(a.nnz), a.indptr[:-1].astype(np.int32),
                           a.indices.astype(np.int32), a.data.astype(float))
        self.cols = np.concatenate([self.cols, cols])

    def solve(self, seconds: float) -> tuple[FloatArray, FloatArray] | None:
        """Solve from the last basis within ``seconds``: (``x`` over every column, the row duals with
        the signs weak duality needs), or ``None`` when no optimal solution was found in time."""
        from highspy._core import HighsModelStatus

        h = self.highs
        h.setOptionValue("time_limit", max(float(seconds), 0.05))
        h.run()
        if h.getModelStatus() != HighsModelStatus.kOptimal:
            return None
        solution = h.getSolution()
        x = np.zeros(self.relax.n_cols)
        x[self.cols] = np.asarray(solution.col_value)
        duals = np.asarray(solution.row_dual, dtype=float)
        # a row bounded only above needs a dual <= 0, one bounded only below a dual >= 0
        lo, hi = self.relax.row_lo, self.relax.row_hi
        duals = np.where(np.isfinite(lo), duals, np.minimum(duals, 0.0))
        duals = np.where(np.isfinite(hi), duals, np.maximum(duals, 0.0))
        return x, duals


def column_generation(relax: Relaxation, objective: FloatArray, deadline: Deadline, *,
                      on_round: Callable[[FloatArray, FloatArray], None], rounds: int = 100) -> bool:
    """Minimise ``objective`` over ``relax`` by column generation from ``relax.active``, calling
    ``on_round(x, duals)`` after every round solved; ``True`` once no column can improve the LP.

    Each round adds the columns of most negative reduced cost (``relax.batch`` of them; adding each
    workload's six best instead made every round slower and converged later at 2,000 x 300).
    """
    master = Master(relax, objective)
    master.add(np.nonzero(relax.active)[0])
    scale = max(1.0, float(np.abs(objective).max())) if len(objective) else 1.0
    for _ in range(rounds):
        if deadline.expired() or not len(master.cols):
            return False
        solved = master.solve(deadline.remaining())
        if solved is None:
            return False  # out of time (or numerical trouble): the rounds so far stand
        x, duals = solved
        on_round(x, duals)
        if deadline.expired():
            return False
        reduced = objective - relax.price(duals)
        new = ~relax.active & (relax.ub > 0) & (reduced < -1e-9 * scale)
        if not new.any():
            return True
        better = np.nonzero(new)[0]
        if len(better) > relax.batch:
            better = better[np.argpartition(reduced[better], relax.batch)[: relax.batch]]
        relax.active[better] = True
        master.add(better)
    return False
