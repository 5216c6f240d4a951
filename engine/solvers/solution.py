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
    """Replicas per pair and how the solve went."""

    y: np.ndarray
    status: str  # Optimal | Feasible | Infeasible
    seconds: float
    levels: list[LevelResult] = field(default_factory=list)

    @property
    def weighted_bound(self) -> float | None:
        last = self.levels[-1] if self.levels else None
        return last.bound if last and last.name == "weighted" else None


class Deadline:
    """A point on the monotonic clock by which a piece of work must end.

    ``Deadline(10.0)`` ends ten seconds from now. A phase never reads the clock on its own: it
    asks how much is left (:meth:`remaining`), whether it is over (:meth:`expired`), or takes a
    share of what is left as its own deadline (:meth:`slice`), which never ends after this one.
    """

    __slots__ = ("end", "start")

    def __init__(self, seconds: float, *, start: float | None = None) -> None:
        self.start = time.monotonic() if start is None else start
        self.end = self.start + max(float(seconds), 0.0)

    @classmethod
    def until(cls, end: float) -> Deadline:
        """A deadline at the monotonic time ``end`` (starting now)."""
        out = cls(0.0)
        out.end = max(end, out.start)
        return out

    def remaining(self) -> float:
        """Seconds left, never below 0."""
        return max(self.end - time.monotonic(), 0.0)

    def elapsed(self) -> float:
        """Seconds since this deadline was made."""
        return time.monotonic() - self.start

    def expired(self) -> bool:
        return time.monotonic() >= self.end

    def slice(self, fraction: float = 1.0, *, at_most: float | None = None, at_least: float = 0.0) -> Deadline:
        """A deadline for the next phase: ``fraction`` of what is left (at most ``at_most`` seconds,
        at least ``at_least`` when that much is left), never after this one."""
        left = self.remaining()
        share = fraction * left
        if at_most is not None:
            share = min(share, at_most)
        share = min(max(share, at_least), left)
        return Deadline(share)

    def __repr__(self) -> str:
        return f"Deadline(remaining={self.remaining():.3f}s)"
