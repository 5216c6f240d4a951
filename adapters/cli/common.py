"""What every command shares: error reporting, exit codes, reading a plan file (writes: :mod:`.outputs`)."""

from __future__ import annotations

import json
import sys
from collections.abc import Callable, Sequence
from enum import IntEnum
from pathlib import Path
from typing import Any, TypeVar

from rich.console import Console
from rich.markup import escape

from adapters.cli.outputs import atomic_write
from engine import MAX_REPLICAS, BerthError, InputError, redact

__all__ = ["ExitCode", "atomic_write", "console", "err_console", "load_assignment", "report_violations",
           "run_guarded"]

console = Console()
#: messages are never folded: a path or a field name stays whole, so logs and scripts can grep it
err_console = Console(stderr=True, soft_wrap=True)
T = TypeVar("T")


class ExitCode(IntEnum):
    """Exit codes of every command (spec section 7); a CronJob or CI step branches on them."""

    OK = 0  #: a plan (or report) was written, even with unplaced workloads
    FAILED = 1  #: anything else (a bug, a full disk, an interrupted run)
    BAD_INPUT = 2  #: the input or a command-line argument is invalid; nothing written
    SOURCE_FAILED = 3  #: a live source or the GitOps repository/remote failed; nothing written
    INFEASIBLE = 4  #: no plan satisfies the hard constraints; plan file only, nothing committed


def load_assignment(path: Path) -> dict[str, dict[str, int]]:
    """The placements of a plan file, as ``{workload: {cluster: replicas}}``."""
    try:
        data: Any = json.loads(Path(path).read_text(encoding="utf-8"))
    except OSError as exc:
        raise InputError(f"cannot read: {exc.strerror or exc}", file=str(path)) from exc
    except UnicodeDecodeError as exc:
        raise InputError(f"not UTF-8 text (byte {exc.start}): expected a PlacementPlan JSON file",
                         file=str(path)) from exc
    except json.JSONDecodeError as exc:
        raise InputError(f"invalid JSON at line {exc.lineno}: {exc.msg}", file=str(path)) from exc
    except (RecursionError, ValueError) as exc:  # nesting too deep, a 5000-digit number, not UTF-8
        raise InputError(f"is not a plan file: {str(exc)[:200]}", file=str(path)) from None
    if not isinstance(data, dict) or not isinstance(data.get("placements"), list):
        raise InputError("expected a PlacementPlan with a placements list", file=str(path),
                         field="placements")
    out: dict[str, dict[str, int]] = {}
    for i, item in enumerate(data["placements"]):
        if (
            not isinstance(item, dict)
            or not isinstance(item.get("workload"), str)
            or not isinstance(item.get("clusters"), dict)
            or not all(isinstance(n, int) and not isinstance(n, bool) and 0 <= n <= MAX_REPLICAS
                       for n in item["clusters"].values())
        ):
            raise InputError(f"expected {{workload: str, clusters: {{name: int 0..{MAX_REPLICAS}}}}}",
                             file=str(path), field=f"placements[{i}]")
        out[item["workload"]] = dict(item["clusters"])
    return out


def report_violations(violations: Sequence[Any], refused: str) -> None:
    """Each verifier violation on stderr, then ``refused`` (the command's one-line verdict)."""
    for v in violations:
        err_console.print(f"[red]{v.code}[/] {escape(str(v))}", highlight=False)
    err_console.print(refused)


def run_guarded(action: Callable[[], T]) -> T:
    """Run a command body; a BerthError becomes one line on stderr and its exit code."""
    try:
        return action()
    except BerthError as exc:
        text = str(exc)
        if len(text) > 2000:  # messages echo values cut to 80 characters; this is only a backstop
            text = text[:2000] + f"…({len(text)} characters)"
        err_console.print(f"[bold red]error:[/] {escape(redact(text))}", highlight=False)
        sys.exit(exc.exit_code)
    except KeyboardInterrupt:
        err_console.print("interrupted; nothing was written")
        sys.exit(1)
