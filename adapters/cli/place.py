"""``berth place``: bundle (+ live inputs, + current placement) -> plan (+ GitOps commits).

The order of a run is what makes it safe: check the arguments and every output, load the inputs,
hold the clone (with ``--push``: at origin's branch), read what runs, solve and verify, stage the
plan file, commit (and push) only a plan that is not Infeasible, then publish the plan file.
"""

from __future__ import annotations

import contextlib
import json
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from adapters.cli.common import ExitCode, console, err_console, load_assignment, run_guarded
from adapters.cli.formats import check_format, format_option, print_data, table_console
from adapters.cli.outputs import Output
from adapters.cli.progress import live_progress
from adapters.cli.render import internal_errors, print_plan
from adapters.gitops.sources import check_bundle_sources
from engine import (
    Bundle,
    Deadline,
    InputError,
    ObjectiveWeights,
    Plan,
    SolveError,
    echo,
    find_source,
    load_bundle,
    load_now,
)
from engine import place as engine_place

if TYPE_CHECKING:
    from adapters.gitops import WriteResult
    from adapters.gitops.repo import GitSession

__all__ = ["register"]

GITOPS_FORMATS = ("flux", "argocd", "arc", "configsync")
INFEASIBLE_MESSAGE = "error: the plan is Infeasible (no plan satisfies the hard constraints); what runs stays; "


def parse_weights(bundle: Bundle, items: list[str]) -> ObjectiveWeights | None:
    """``--weight cost=2 --weight latency=0.01`` over the bundle's Objective weights."""
    if not items:
        return None
    base = bundle.objective.spec.weights if bundle.objective else ObjectiveWeights()
    data = base.model_dump(by_alias=True)
    for item in items:
        key, sep, value = item.partition("=")
        if not sep or key not in data:
            raise InputError(
                f"expected NAME=NUMBER with NAME one of {', '.join(data)}, got {echo(item)}",
                field="--weight",
            )
        try:
            data[key] = float(value)
        except ValueError as exc:
            raise InputError(f"{key}: expected a number, got {echo(value)}", field="--weight") from exc
    try:
        return ObjectiveWeights.model_validate(data)
    except ValueError as exc:
        raise InputError(str(exc), field="--weight") from exc


def load_inputs(
    bundle_paths: list[Path],
    *,
    prometheus: str | None,
    kubeconfig: Path | None,
    contexts: list[str],
) -> tuple[Bundle, list[str]]:
    """The bundle, with live capacities/latencies applied when a live source is given."""
    bundle = load_bundle(bundle_paths)
    warnings: list[str] = []
    source = find_source(bundle)
    if prometheus or kubeconfig or (source is not None and source.spec.prometheus.configured):
        from adapters.live import load_live

        bundle, warnings = load_live(
            bundle, prometheus=prometheus, kubeconfig=kubeconfig, contexts=contexts
        )
    return bundle, warnings


def read_current(current: Path | None, gitops_repo: Path | None) -> dict[str, dict[str, int]] | None:
    if current is not None:
        return load_assignment(current)
    if gitops_repo is not None:
        from adapters.gitops import read_current as read_repo

        return read_repo(gitops_repo)
    return None


@contextlib.contextmanager
def clone_for_commit(gitops_repo: Path | None, *, commit: bool, push: bool) -> Iterator[GitSession | None]:
    """The clone a run commits to, held (locked, recovered, clean, writable and, with ``--push``,
    at origin's branch) from before the current placement is read until after the commit."""
    if not commit:
        yield None
        return
    if gitops_repo is None:
        raise InputError("--commit needs --gitops-repo DIR", field="--commit")
    from adapters.gitops import open_clone

    with open_clone(gitops_repo, sync_remote="origin" if push else None) as session:
        yield session


def commit_plan(session: GitSession, bundle: Bundle, plan: Plan, *, fmt: str, push: bool) -> WriteResult:
    """Commit (and push) a plan that is not Infeasible; the caller checked its outputs first."""
    from adapters.gitops import write_plan

    if plan.status.solver == "Infeasible":
        raise SolveError("internal error: an Infeasible plan must never be committed")
    return write_plan(bundle, plan, session.path, fmt=fmt, commit=True, push=push, session=session)


DaskFlag = Annotated[bool, typer.Option(
    "--dask", help="Cut the problem into parts (connected components, else regions) and solve them on Dask: "
    "a LocalCluster of --dask-workers processes, or --dask-scheduler. One plan, verified whole.")]
DaskScheduler = Annotated[str | None, typer.Option(
    help="tcp://host:8786: solve the parts on this Dask scheduler's workers (implies --dask).")]
DaskWorkers = Annotated[int, typer.Option(min=1, max=64, help="Workers of the LocalCluster (and parts: one each).")]


@contextlib.contextmanager
def solver_for(dask: bool, scheduler: str | None, workers: int) -> Iterator[Any]:
    """``None`` (one machine), or the Dask solver for ``engine.place(solver=...)``."""
    if not dask and scheduler is None:
        yield None
        return
    from adapters.distributed import dask_solver

    with dask_solver(scheduler, workers=workers) as solver:
        yield solver


def register(app: typer.Typer) -> None:
    """Add ``berth place`` to ``app``."""

    @app.command("place")
    def place(
        bundle: Annotated[list[Path], typer.Argument(help="Bundle files or folders.")],
        output: Annotated[Path | None, typer.Option("--output", help="Plan JSON file ('-': stdout).")] = None,
        fmt: Annotated[str, format_option()] = "table",
        time_limit: Annotated[float, typer.Option(help="Seconds for all after loading: solve, bound, "
                                                               "checks (a Dask cluster's start and stop too).")] = 10.0,
        prometheus: Annotated[str | None, typer.Option(help="Prometheus URL for live capacity and latency.")] = None,
        kubeconfig: Annotated[Path | None, typer.Option(help="Kubeconfig for live inventory.")] = None,
        context: Annotated[list[str] | None, typer.Option(help="Kubeconfig context (one per cluster).")] = None,
        current: Annotated[Path | None, typer.Option(help="Previous plan: what runs now.")] = None,
        gitops_repo: Annotated[Path | None, typer.Option(help="GitOps repo (current placement).")] = None,
        gitops_format: Annotated[str, typer.Option(help="flux, argocd, arc or configsync.")] = "flux",
        commit: Annotated[bool, typer.Option(help="Commit the plan to --gitops-repo.")] = False,
        push: Annotated[bool, typer.Option(help="Push the commits to origin.")] = False,
        max_moves: Annotated[int | None, typer.Option(help="Moves budget (overrides the Objective).")] = None,
        weight: Annotated[list[str] | None, typer.Option(help="Override a weight: NAME=NUMBER.")] = None,
        quiet: Annotated[bool, typer.Option("--quiet", "-q", help="Print only the summary line.")] = False,
        allow_sources_outside: Annotated[bool, typer.Option(
            "--allow-sources-outside", help="Accept source.path folders outside the bundle's folder.")] = False,
        dask: DaskFlag = False,
        dask_scheduler: DaskScheduler = None,
        dask_workers: DaskWorkers = 2,
    ) -> None:
        """Place every workload of the bundle and write the plan."""

        def body() -> int:
            if gitops_format not in GITOPS_FORMATS:
                raise InputError(f"expected one of {', '.join(GITOPS_FORMATS)}, got {echo(gitops_format)}",
                                 field="--gitops-format")
            if push and not commit:
                raise InputError("--push needs --commit", field="--push")
            if current is not None and gitops_repo is not None and not commit:
                raise InputError("give --current or --gitops-repo as the current placement, not both",
                                 field="--current")
            if commit and gitops_repo is None:
                raise InputError("--commit needs --gitops-repo DIR", field="--commit")
            check_format(fmt)
            out = Output.check(output, "--output")  # before anything else: exit 2, nothing written
            data_out = fmt in ("json", "yaml")
            if data_out and out is not None and out.kind == "stdout":
                raise InputError(f"-o {fmt} and --output - both write to standard output; give one",
                                 field="--output")
            shown = err_console if data_out or (out is not None and out.kind == "stdout") else console
            loaded, warnings = load_inputs(bundle, prometheus=prometheus, kubeconfig=kubeconfig,
                                           contexts=context or [])
            if not allow_sources_outside:
                check_bundle_sources(loaded, bundle)
            weights = parse_weights(loaded, weight or [])
            with clone_for_commit(gitops_repo, commit=commit, push=push) as session, live_progress() as shows:
                shows.phase("reading the current placement")
                now = read_current(current, gitops_repo)
                load_now()  # the solver's code is loading, not solving
                clock = Deadline(time_limit)  # the limit holds from here: a Dask cluster's start and stop count
                with solver_for(dask, dask_scheduler, dask_workers) as solver:
                    shows.phase(f"solving (up to {time_limit:g}s)" + (" in parts on Dask" if solver else ""))
                    plan = engine_place(loaded, current=now, deadline=clock, weights=weights, max_moves=max_moves,
                                        warnings=warnings, on_progress=shows.solver, solver=solver)
                infeasible = plan.status.solver == "Infeasible"
                if out is not None:
                    out.stage(plan.to_json() + "\n")  # a full disk fails here, before git
                # an Infeasible plan is for inspection only: it never reaches git (spec 5, 7)
                if session is not None and not infeasible:
                    shows.phase("committing" + (" and pushing" if push else ""))
                    try:
                        result = commit_plan(session, loaded, plan, fmt=gitops_format, push=push)
                    except BaseException:
                        if out is not None:
                            out.discard()
                        raise
                    shown.print(f"gitops: {result.summary()}")
            if out is not None:
                out.publish()
            if data_out:
                print_data(fmt, json.loads(plan.to_json()))
            elif quiet:
                s = plan.status
                shown.print(f"{s.solver}: {len(plan.placements)} placed, {len(plan.unplaced)} "
                            f"unplaced, weighted {s.objective.weighted:.4f}")
            else:
                print_plan(table_console(fmt, shown), loaded, plan, output=out.shown if out is not None else None)
            if (loud := internal_errors(plan)) is not None:
                err_console.print(loud)
            if infeasible:
                err_console.print(INFEASIBLE_MESSAGE + ("nothing was committed" if commit else "nothing to commit"))
                return ExitCode.INFEASIBLE
            return ExitCode.OK

        code = run_guarded(body)
        if code:
            sys.exit(code)
