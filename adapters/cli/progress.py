"""The live progress line of ``berth place`` and ``berth reoptimize``: phase, elapsed time, replicas
placed in the best solution so far and the gap to the proven bound.

Shown only when standard error is a terminal (and then removed when the run ends); otherwise
nothing at all is written, so logs and pipes stay clean.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

from rich.progress import Progress as Bar
from rich.progress import SpinnerColumn, TextColumn, TimeElapsedColumn

from adapters.cli.common import err_console
from engine import Progress

__all__ = ["LiveProgress", "live_progress"]


class LiveProgress:
    """What a command tells the display: :meth:`phase` for its own steps, :meth:`solver` (the engine's
    ``on_progress``) while solving. Both do nothing when standard error is not a terminal."""

    def __init__(self, bar: Bar | None) -> None:
        self._bar = bar
        self._task = bar.add_task("starting", detail="") if bar is not None else None

    def phase(self, text: str) -> None:
        if self._bar is not None and self._task is not None:
            self._bar.update(self._task, description=text)

    def solver(self, p: Progress) -> None:
        if self._bar is None or self._task is None:
            return
        detail = "" if p.placed is None else f"best: {p.placed} replica(s) placed"
        if p.gap is not None:
            detail += f", gap {100 * p.gap:.2f}%"
        self._bar.update(self._task, description=f"solving {p.phase}", detail=detail)


@contextlib.contextmanager
def live_progress() -> Iterator[LiveProgress]:
    """A :class:`LiveProgress` for the block: live on a terminal, silent otherwise."""
    if not err_console.is_terminal:
        yield LiveProgress(None)
        return
    columns = (SpinnerColumn(), TextColumn("{task.description}"), TimeElapsedColumn(),
               TextColumn("{task.fields[detail]}"))
    with Bar(*columns, console=err_console, transient=True) as bar:
        yield LiveProgress(bar)
