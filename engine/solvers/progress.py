"""Progress of a solve, for a caller that shows it live (``berth place`` on a terminal).

The solver reports through one optional callable (``place(on_progress=...)``): at the start of
each level of the lexicographic order and at each better solution CP-SAT finds. It is called
from solver threads; it must be quick and must not raise.
"""

from __future__ import annotations

import math
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from functools import cache
from typing import TYPE_CHECKING

import numpy as np

from engine.lazy import lazy_module

if TYPE_CHECKING:
    from ortools.sat.python import cp_model

    class Stopper(cp_model.CpSolverSolutionCallback):
        """What :func:`stop_after_first` returns (its class is made at run time, on first use)."""

        def cancel(self) -> None: ...
else:
    cp_model = lazy_module("ortools.sat.python.cp_model")

__all__ = ["Progress", "ProgressCallback", "solution_reporter", "stop_after_first"]


@dataclass(frozen=True)
class Progress:
    """One report: the level being solved, seconds since the solve started, replicas placed in the
    best solution so far (None before there is one) and the relative gap of that level's objective
    to its proven bound (None when unknown)."""

    phase: str
    elapsed: float
    placed: int | None = None
    gap: float | None = None


ProgressCallback = Callable[[Progress], None]


def relative_gap(value: float, bound: float) -> float | None:
    if math.isnan(value) or math.isnan(bound) or math.isinf(bound):
        return None
    return abs(value - bound) / max(1.0, abs(value))


@cache
def _reporter_class() -> type:
    """The callback class, made on first use: subclassing CP-SAT's base class loads OR-Tools."""

    class _Reporter(cp_model.CpSolverSolutionCallback):
        def __init__(self, report: ProgressCallback, phase: str, y_index: np.ndarray, start: float) -> None:
            super().__init__()
            self._report, self._phase, self._y, self._start = report, phase, [int(i) for i in y_index], start

        def on_solution_callback(self) -> None:
            placed = sum(self.SolutionIntegerValue(i) for i in self._y)
            gap = relative_gap(self.ObjectiveValue(), self.BestObjectiveBound())
            self._report(Progress(self._phase, time.monotonic() - self._start, placed, gap))

    return _Reporter


def solution_reporter(report: ProgressCallback | None, phase: str, y_index: np.ndarray,
                      start: float) -> cp_model.CpSolverSolutionCallback | None:
    """A CP-SAT solution callback that reports each better solution, or None without ``report``."""
    return None if report is None else _reporter_class()(report, phase, y_index, start)


@cache
def _stopper_class() -> type:
    """The callback class of :func:`stop_after_first`, made on first use (see :func:`_reporter_class`)."""

    class _StopAfterFirst(cp_model.CpSolverSolutionCallback):
        """Ends the search ``grace`` seconds after its first solution (a timer thread stops the solver)."""

        def __init__(self, solver: cp_model.CpSolver, grace: float) -> None:
            super().__init__()
            self.solver = solver
            self.grace = grace
            self.timer: threading.Timer | None = None

        def on_solution_callback(self) -> None:
            if self.timer is None:
                self.timer = threading.Timer(self.grace, self.solver.stop_search)
                self.timer.start()

        def cancel(self) -> None:
            if self.timer is not None:
                self.timer.cancel()

    return _StopAfterFirst


def stop_after_first(solver: cp_model.CpSolver, grace: float) -> Stopper:
    """A CP-SAT callback that stops ``solver`` ``grace`` seconds after its first solution; ``cancel()`` it after."""
    stopper: Stopper = _stopper_class()(solver, grace)
    return stopper
