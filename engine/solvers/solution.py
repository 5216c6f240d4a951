"""What every strategy returns, and the one clock they all draw from.

A :class:`Solution` holds replicas per eligible pair and how the solve went, level by level
(spec section 3). A :class:`Deadline` is made once per command from ``--time-limit`` (or the
service's per-request limit); every phase (solve, bound proof, explanations, verification) takes
its time from it, so the whole command ends within the limit.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field

import numpy as np

__all__ = ["Deadline", "LevelResult", "Solution"]


@dataclass
class LevelResult:
    name: str
    value: float
    bound: float
    proved: bool
    seconds: float


@dataclass
class Solution:
    """Replicas per pair and how the solve went.

    The ``weighted`` level's ``bound`` holds for every plan with the same replicas per priority and
    tier (spec 5, ``status.bound``); ``bound_at_placement`` (same units) only for plans placing the
    same workloads with the same replicas each (``status.boundAtPlacement``), when one was proved.
    """

    y: np.ndarray
    status: str  # Optimal | Feasible | Infeasible
    seconds: float
    levels: list[LevelResult] = field(default_factory=list)
    bound_at_placement: float | None = None
    #: what the plan should warn about how it was solved (``status.warnings``), e.g. a part of a
    #: decomposed solve that did not come back
    notes: list[str] = field(default_factory=list)


class Deadline:
    """A point on the monotonic clock by which a piece of work must end.

    ``Deadline(10.0)`` ends ten seconds from now. A phase never reads the clock on its own: it
    asks how much is left (:meth:`remaining`), whether it is over (:meth:`expired`), or takes a
    part of what is left as its own deadline (:meth:`slice`, :meth:`within`, :meth:`before`),
    which never ends after this one.
    """

    __slots__ = ("end", "start")

    def __init__(self, seconds: float) -> None:
        self.start = time.monotonic()
        self.end = self.start + max(float(seconds), 0.0)

    @property
    def total(self) -> float:
        """Seconds from when this deadline was made to its end."""
        return self.end - self.start

    def remaining(self) -> float:
        """Seconds left, never below 0."""
        return max(self.end - time.monotonic(), 0.0)

    def elapsed(self) -> float:
        """Seconds since this deadline was made."""
        return time.monotonic() - self.start

    def expired(self) -> bool:
        return time.monotonic() >= self.end

    def within(self, seconds: float) -> Deadline:
        """A deadline ``seconds`` from now, or this one's end if that comes first."""
        return Deadline(min(max(seconds, 0.0), self.remaining()))

    def slice(self, fraction: float) -> Deadline:
        """A deadline after ``fraction`` of what is left."""
        return self.within(fraction * self.remaining())

    def before(self, margin: float) -> Deadline:
        """A deadline ``margin`` seconds before this one (now, when less than that is left)."""
        return self.within(self.remaining() - margin)

    def at_least(self, seconds: float) -> Deadline:
        """This deadline, or one ``seconds`` from now when less than that is left (a solver's
        minimum to return anything at all; the caller's margins absorb it)."""
        return self if self.remaining() >= seconds else Deadline(seconds)

    def __repr__(self) -> str:
        return f"Deadline(remaining={self.remaining():.3f}s)"
