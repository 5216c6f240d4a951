"""``berth reoptimize``: re-solve everything against what runs now (git), print and commit the diff.

Exit codes (for a CronJob): 0 the diff was computed (and committed with
``--commit``; also when nothing changes); 1 any other failure; 2 invalid
input; 3 a live source or the GitOps repository/remote failed and nothing was
committed; 4 no plan satisfies the hard constraints, for example within
``--max-moves`` (Infeasible: summary and plan files written, nothing committed).
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.table import Table

from adapters.cli.common import ExitCode, console, err_console, run_guarded
from adapters.cli.formats import check_format, format_option, print_data, table_console
from adapters.cli.outputs import Output
from adapters.cli.place import (
    GITOPS_FORMATS,
    INFEASIBLE_MESSAGE,
    DaskFlag,
    DaskScheduler,
    DaskWorkers,
    clone_for_commit,
    commit_plan,
    load_inputs,
    parse_weights,
    solver_for,
)
from adapters.cli.progress import live_progress
from adapters.cli.render import bound_text, internal_errors
from adapters.gitops.sources import check_bundle_sources
from engine import Deadline, InputError, diff_summary, load_now
from engine import place as engine_place

__all__ = ["register"]


def _repo_format(repo: Path) -> str | None:
    from adapters.gitops import read_records

    formats = {r.format for r in read_records(repo).values() if r.format}
    return formats.pop() if len(formats) == 1 else None


def _print_summary(console: Console, summary: dict[str, Any]) -> None:
    if summary["movesByWorkload"]:
        table = Table(title="Moves by workload", title_justify="left")
        table.add_column("workload", overflow="fold")
        table.add_column("replicas moved", justify="right")
        for k, n in summary["movesByWorkload"].items():
            table.add_row(k, str(n))
        console.print(table)
        table = Table(title="Moves by cluster", title_justify="left")
        for col in ("cluster", "out", "in"):
            table.add_column(col, justify="right" if col != "cluster" else "left")
        for c, io in summary["movesByCluster"].items():
            table.add_row(c, str(io["out"]), str(io["in"]))
        console.print(table)
    b, a = summary["before"], summary["after"]
    console.print(
        f"[bold]{summary['solver']}[/]: {summary['moves']} replica move(s); cost {b['cost']:.4f} -> "
        f"{a['cost']:.4f}/h ({summary['costDelta']:+.4f}); latency {b['latency']:g} -> {a['latency']:g} ms; "
        f"newly placed: {', '.join(summary['newlyPlaced']) or 'none'}; "
        f"no longer placed: {', '.join(summary['noLongerPlaced']) or 'none'}; "
        f"weighted {summary['weighted']:.4f} ({bound_text(summary)})"
    )


def register(app: typer.Typer) -> None:
    """Add ``berth reoptimize`` to ``app``."""

    @app.command("reoptimize")
    def reoptimize(
        bundle: Annotated[list[Path], typer.Argument(help="Bundle files or folders.")],
        gitops_repo: Annotated[Path, typer.Option(help="GitOps repo: what runs now, and where to commit.")],
        max_moves: Annotated[int | None, typer.Option(help="Replicas that may move (overrides the Objective).")] = None,
        commit: Annotated[bool, typer.Option("--commit", help="Commit the new plan (one commit per cluster).")] = False,
        push: Annotated[bool, typer.Option("--push", help="Push the commits to origin.")] = False,
        dry_run: Annotated[bool, typer.Option("--dry-run", help="Only print the diff (the default).")] = False,
        output: Annotated[Path | None, typer.Option("--output", help="Plan JSON file ('-': stdout).")] = None,
        summary_file: Annotated[Path | None, typer.Option("--summary", help="JSON summary file ('-': stdout).")] = None,
        fmt: Annotated[str, format_option()] = "table",
        time_limit: Annotated[float, typer.Option(help="Seconds for all after loading: solve, bound, "
                                                               "checks (a Dask cluster's start and stop too).")] = 10.0,
        gitops_format: Annotated[str | None, typer.Option(help="Default: the repo's format, else flux.")] = None,
        prometheus: Annotated[str | None, typer.Option(help="Prometheus URL for live capacity.")] = None,
        kubeconfig: Annotated[Path | None, typer.Option(help="Kubeconfig for live inventory.")] = None,
        context: Annotated[list[str] | None, typer.Option(help="Kubeconfig context.")] = None,
        weight: Annotated[list[str] | None, typer.Option(help="Override a weight: NAME=NUMBER.")] = None,
        allow_sources_outside: Annotated[bool, typer.Option(
            "--allow-sources-outside", help="Accept source.path folders outside the bundle's folder.")] = False,
        dask: DaskFlag = False,
        dask_scheduler: DaskScheduler = None,
        dask_workers: DaskWorkers = 2,
    ) -> None:
        """Re-optimise the whole fleet against the placement in git; dry run unless --commit."""

        def body() -> int:
            if commit and dry_run:
                raise InputError("give --commit or --dry-run, not both", field="--dry-run")
            if push and not commit:
                raise InputError("--push needs --commit", field="--push")
            if gitops_format is not None and gitops_format not in GITOPS_FORMATS:
                raise InputError(f"expected one of {', '.join(GITOPS_FORMATS)}", field="--gitops-format")
            check_format(fmt)
            plan_out, summary_out = Output.check(output, "--output"), Output.check(summary_file, "--summary")
            outs = [o for o in (summary_out, plan_out) if o is not None]
            data_out = fmt in ("json", "yaml")
            if sum(o.kind == "stdout" for o in outs) + data_out > 1:
                raise InputError("only one of --output -, --summary - and -o json|yaml can use standard output",
                                 field="--output")
            shown = err_console if data_out or any(o.kind == "stdout" for o in outs) else console
            with live_progress() as progress:
                progress.phase("loading the bundle and live inputs")
                loaded, warnings = load_inputs(bundle, prometheus=prometheus, kubeconfig=kubeconfig,
                                               contexts=context or [])
                if not allow_sources_outside:
                    check_bundle_sources(loaded, bundle)
                weights = parse_weights(loaded, weight or [])
                progress.phase("reading the current placement from git")
                with clone_for_commit(gitops_repo, commit=commit, push=push) as session:
                    from adapters.gitops import read_current

                    current = read_current(gitops_repo) if gitops_repo.exists() else {}
                    load_now()  # the solver's code is loading, not solving
                    clock = Deadline(time_limit)  # the limit holds from here: a Dask cluster's start and stop count
                    with solver_for(dask, dask_scheduler, dask_workers) as solver:
                        progress.phase(f"solving (up to {time_limit:g}s)" + (" in parts on Dask" if solver else ""))
                        plan = engine_place(loaded, current=current, deadline=clock, weights=weights,
                                            max_moves=max_moves, warnings=warnings, on_progress=progress.solver,
                                            solver=solver)
                    summary = diff_summary(loaded, current, plan)
                    summary["committed"] = False
                    summary["warnings"] = list(plan.status.warnings)
                    infeasible = plan.status.solver == "Infeasible"
                    # every output staged in full before git: a full disk fails before a commit
                    if plan_out is not None:
                        plan_out.stage(plan.to_json() + "\n")
                    if summary_out is not None:
                        summary_out.stage(json.dumps(summary, indent=2) + "\n")
                    progress.phase("committing" if commit else "diff ready")
                    if session is not None and not infeasible:
                        repo_fmt = gitops_format or _repo_format(gitops_repo) or "flux"
                        try:
                            result = commit_plan(session, loaded, plan, fmt=repo_fmt, push=push)
                        except BaseException:
                            for o in outs:
                                o.discard()
                            raise
                        summary["committed"] = True
                        summary["commits"] = [{"sha": c.sha, "cluster": c.cluster, "subject": c.subject}
                                              for c in result.commits]
                        summary["pushed"] = result.pushed
                        if summary_out is not None:
                            summary_out.stage(json.dumps(summary, indent=2) + "\n")
            for o in outs:
                o.publish()
            if data_out:
                print_data(fmt, summary)
            else:
                _print_summary(table_console(fmt, shown), summary)
            for w in summary["warnings"]:
                shown.print(f"[yellow]warning:[/] {w}", highlight=False)
            if (loud := internal_errors(plan)) is not None:
                err_console.print(loud)
            if infeasible:
                err_console.print(INFEASIBLE_MESSAGE + ("nothing was committed" if commit else "nothing to commit"))
                return ExitCode.INFEASIBLE
            if commit:
                shown.print(f"committed {len(summary.get('commits', []))} commit(s)")
            else:
                shown.print("dry run: nothing was committed (use --commit)")
            return ExitCode.OK

        code = run_guarded(body)
        if code:
            sys.exit(code)
