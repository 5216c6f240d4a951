"""``berth whatif``: solve scenarios against the baseline placement on Dask, compare, report.

Exit codes: 0 every scenario was solved; 1 at least one scenario failed (the
others are still solved and reported); 2 invalid input (bundle or scenario
file); 3 a live source, the GitOps repository or the Dask scheduler failed.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.markup import escape
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from adapters.cli.common import atomic_write, console, err_console, run_guarded
from adapters.cli.formats import check_format, format_option, print_data, table_console
from adapters.cli.place import load_inputs, read_current
from adapters.cli.render import bound_text
from engine import InputError, load_bundle
from engine import place as engine_place

__all__ = ["register"]


def _load_scenarios(path: Path) -> list[Any]:
    from engine import Scenario, expand

    docs = [d for d in load_bundle([path]).extras if isinstance(d, Scenario)]
    if not docs:
        raise InputError("no Scenario document in the file", file=str(path))
    return [(doc.name, expand(doc)) for doc in docs]


def register(app: typer.Typer) -> None:
    """Add ``berth whatif`` to ``app``."""

    @app.command("whatif")
    def whatif(
        bundle: Annotated[list[Path], typer.Argument(help="Bundle files or folders (the baseline).")],
        scenario: Annotated[Path, typer.Option(help="YAML file of Scenario documents (docs/whatif.md).")],
        report: Annotated[Path | None, typer.Option(help="Write report.md, report.html and PNGs here.")] = None,
        output: Annotated[Path | None, typer.Option("--output", help="Write all results as JSON to FILE.")] = None,
        fmt: Annotated[str, format_option()] = "table",
        dask_scheduler: Annotated[str | None, typer.Option(help="tcp://host:8786; default: a LocalCluster.")] = None,
        workers: Annotated[int, typer.Option(help="Workers of the LocalCluster.")] = 2,
        time_limit: Annotated[float, typer.Option(help="Solver seconds per scenario.")] = 10.0,
        current: Annotated[Path | None, typer.Option(help="Plan file: what runs now (else the baseline plan).")] = None,
        gitops_repo: Annotated[Path | None, typer.Option(help="GitOps repo: what runs now.")] = None,
        prometheus: Annotated[str | None, typer.Option(help="Prometheus URL for live capacity.")] = None,
    ) -> None:
        """Compare what-if scenarios with the baseline; scenarios run in parallel on Dask."""

        def body() -> int:
            from adapters.distributed import run_scenarios
            from engine import summarize

            check_format(fmt)
            groups = _load_scenarios(scenario)
            points = [p for _, pts in groups for p in pts]
            loaded, warnings = load_inputs(bundle, prometheus=prometheus, kubeconfig=None, contexts=[])
            running = read_current(current, gitops_repo)
            columns = (TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn())
            with Progress(*columns, console=err_console, transient=True) as progress:
                task = progress.add_task("baseline", total=len(points) + 1)
                base_plan = engine_place(loaded, current=running, time_limit=time_limit, warnings=warnings)
                baseline = summarize(loaded, base_plan)
                progress.update(task, advance=1, description="scenarios")

                def done(entry: dict[str, Any]) -> None:
                    state = "failed" if "error" in entry else entry["summary"]["solver"]
                    progress.console.print(f"  {escape(entry['name'])}: {state}", highlight=False)
                    progress.update(task, advance=1)

                where = dask_scheduler or f"LocalCluster({workers} workers, threads)"
                progress.update(task, description=f"scenarios on {where}")
                results = run_scenarios(loaded, points, current=base_plan.assignment(), time_limit=time_limit,
                                        scheduler=dask_scheduler, workers=workers, on_done=done,
                                        baseline=base_plan)
            from engine import compare

            for r in results:
                if "summary" in r:
                    r["delta"] = compare(baseline, r["summary"])
            table = Table(title="What-if", title_justify="left")
            table.add_column("scenario", overflow="fold")
            for col in ("solver", "unplaced (Δ)", "cost/h (Δ)", "moved", "stopped", "weighted (bounds)"):
                table.add_column(col, overflow="fold")  # wrapped when narrow, never cut short
            table.add_row("baseline", baseline["solver"], str(baseline["unplacedReplicas"]),
                          f"{baseline['cost']:.4f}", "0", "0", _weighted(baseline))
            for r in results:
                if "error" in r:
                    table.add_row(escape(r["name"]), "[red]failed[/]", "", "", "", "", "")
                    continue
                s, d = r["summary"], r["delta"]
                more = f"{s['unplacedReplicas']} ({d['unplacedReplicas']:+g})"
                table.add_row(escape(r["name"]), s["solver"], f"[red]{more}[/]" if d["unplacedReplicas"] > 0 else more,
                              f"{s['cost']:.4f} ({d['cost']:+.4f})", str(s["movedReplicas"]), str(s["stoppedReplicas"]),
                              _weighted(s))
            if fmt in ("json", "yaml"):
                print_data(fmt, {"baseline": baseline, "scenarios": results})
            else:
                table_console(fmt).print(table)
            failed = [r for r in results if "error" in r]
            for r in failed:
                err_console.print(f"[red]scenario {escape(r['name'])} failed:[/] {escape(r['error'])}", highlight=False)
            if output is not None:
                atomic_write(output, json.dumps({"baseline": baseline, "scenarios": results}, indent=2) + "\n")
            if report is not None:
                from adapters.report import write_report

                sweeps = {name: [r for r in results if r["name"] in {p[0] for p in pts}]
                          for name, pts in groups if len(pts) > 1 or pts[0][2] is not None}
                paths = write_report(report, baseline, results, sweeps=sweeps)
                shown = err_console if fmt in ("json", "yaml") else console
                shown.print(f"report: {paths[1]} ({len(paths) - 2} figure(s))")
            return 1 if failed else 0

        code = run_guarded(body)
        if code:
            sys.exit(code)


def _weighted(summary: dict[str, Any]) -> str:
    """A scenario's weighted cost and its proved bounds, each named for what it covers."""
    return f"{summary['weighted']:.4f} ({bound_text(summary)})"
