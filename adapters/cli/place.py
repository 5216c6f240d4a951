"""``berth place``: bundle (+ live inputs, + current placement) -> plan (+ GitOps commits)."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated

import typer

from adapters.cli.common import ExitCode, atomic_write, console, err_console, load_assignment, run_guarded
from adapters.cli.render import internal_errors, print_plan
from adapters.gitops.sources import check_bundle_sources
from engine.bundle import Bundle, load_bundle
from engine.errors import InputError
from engine.limits import echo
from engine.live import find_source
from engine.plan import Plan
from engine.planner import place as engine_place
from engine.resources import ObjectiveWeights

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


def write_outputs(
    bundle: Bundle,
    plan: Plan,
    *,
    output: Path | None,
    gitops_repo: Path | None,
    gitops_format: str,
    commit: bool,
    push: bool,
) -> None:
    """Commit to GitOps first (it may fail with exit 3), then write the plan file."""
    if commit:
        if gitops_repo is None:
            raise InputError("--commit needs --gitops-repo DIR", field="--commit")
        from adapters.gitops import write_plan

        result = write_plan(bundle, plan, gitops_repo, fmt=gitops_format, commit=True, push=push)
        console.print(f"gitops: {result.summary()}")
    if output is not None:
        atomic_write(output, plan.to_json() + "\n")


def register(app: typer.Typer) -> None:
    """Add ``berth place`` to ``app``."""

    @app.command("place")
    def place(
        bundle: Annotated[list[Path], typer.Argument(help="Bundle files or folders.")],
        output: Annotated[Path | None, typer.Option("--output", "-o", help="Write the plan JSON here.")] = None,
        time_limit: Annotated[float, typer.Option(help="Seconds for the solver.")] = 10.0,
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
            loaded, warnings = load_inputs(bundle, prometheus=prometheus, kubeconfig=kubeconfig,
                                           contexts=context or [])
            if not allow_sources_outside:
                check_bundle_sources(loaded, bundle)
            weights = parse_weights(loaded, weight or [])
            now = read_current(current, gitops_repo)
            plan = engine_place(loaded, current=now, time_limit=time_limit, weights=weights,
                                max_moves=max_moves, warnings=warnings)
            infeasible = plan.status.solver == "Infeasible"
            # an Infeasible plan is for inspection only: it never reaches git (spec 5, 7)
            write_outputs(loaded, plan, output=output, gitops_repo=gitops_repo,
                          gitops_format=gitops_format, commit=commit and not infeasible, push=push)
            if quiet:
                s = plan.status
                console.print(f"{s.solver}: {len(plan.placements)} placed, {len(plan.unplaced)} "
                              f"unplaced, weighted {s.objective.weighted:.4f}")
            else:
                print_plan(console, loaded, plan, output=str(output) if output else None)
            if (loud := internal_errors(plan)) is not None:
                err_console.print(loud)
            if infeasible:
                err_console.print(INFEASIBLE_MESSAGE + ("nothing was committed" if commit else "nothing to commit"))
                return ExitCode.INFEASIBLE
            return ExitCode.OK

        code = run_guarded(body)
        if code:
            sys.exit(code)
