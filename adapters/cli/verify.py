"""``berth verify BUNDLE... PLAN.json``: the independent check of spec section 2."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Annotated

import typer
from rich.markup import escape

from adapters.cli.common import console, load_assignment, run_guarded
from engine import InputError, load_bundle

__all__ = ["register"]


def register(app: typer.Typer) -> None:
    """Add ``berth verify`` to ``app``."""

    @app.command("verify")
    def verify(
        paths: Annotated[list[Path], typer.Argument(help="Bundle files or folders, then the plan JSON.")],
        current: Annotated[Path | None, typer.Option(help="Previous plan, to check the moves budget.")] = None,
        max_moves: Annotated[int | None, typer.Option(help="Moves budget (default: the Objective's).")] = None,
    ) -> None:
        """Check a plan against every hard constraint; exit 1 on violations."""
        from engine import verify as check

        def body() -> int:
            if len(paths) < 2:
                raise InputError("expected BUNDLE... PLAN.json (at least two paths)")
            bundle = load_bundle(paths[:-1])
            plan_path = paths[-1]
            load_assignment(plan_path)  # shape check with a clear error
            plan = json.loads(plan_path.read_text(encoding="utf-8"))
            now = load_assignment(current) if current else None
            budget = max_moves
            if budget is None and bundle.objective is not None:
                budget = bundle.objective.spec.max_moves
            violations = check(bundle, plan, current=now, max_moves=budget if now is not None else None)
            if not violations:
                console.print(f"[green]valid[/]: {escape(str(plan_path))} satisfies every hard constraint")
                return 0
            for v in violations:
                console.print(f"[red]{v.code}[/] {escape(v.message)}")
            console.print(f"{len(violations)} violation(s)")
            return 1

        sys.exit(run_guarded(body))
