"""``berth history`` and ``berth rollback``: the plans a GitOps repository committed, and going back.

A rollback never rewrites history: it turns the placement an earlier commit held into a
plan for today's bundle, checks it with the independent verifier against today's fleet,
and writes it through the same writer as ``berth place`` (new per-cluster commits, each
with a ``Berth-Rollback-To`` trailer). A rollback that no longer fits is refused with
exit 1 (as ``berth verify`` does for a plan that breaks a hard constraint) and writes nothing.
"""

from __future__ import annotations

import sys
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer
from rich.markup import escape
from rich.table import Table

from adapters.cli.common import ExitCode, console, report_violations, run_guarded
from adapters.cli.formats import check_format, format_option, print_data, table_console
from engine import (
    Bundle,
    InputError,
    ObjectiveValues,
    Placement,
    Plan,
    PlanMetadata,
    PlanStatus,
    Reason,
    Unplaced,
    diff_moves,
)

if TYPE_CHECKING:
    from adapters.gitops.history import Target

__all__ = ["register", "rollback_plan"]

GITOPS_FORMATS = ("flux", "argocd", "arc", "configsync")


def _short(digest: str) -> str:
    return digest.removeprefix("sha256:")[:12]


def history(
    gitops_repo: Annotated[Path, typer.Option("--gitops-repo", help="The GitOps repository (a local clone).")],
    fmt: Annotated[str, format_option()] = "table",
) -> None:
    """List the plans committed to the GitOps repository, newest first (read from git only)."""

    def body() -> None:
        check_format(fmt)
        from adapters.gitops.history import read_history  # git on first use: other commands never load it

        plans = read_history(gitops_repo)
        if fmt in ("json", "yaml"):
            print_data(fmt, {"repository": str(gitops_repo), "plans": [p.to_dict() for p in plans]})
            return
        if not plans:
            console.print(f"{escape(str(gitops_repo))}: no plan committed by Berth yet")
            return
        table = Table(title=f"Plans committed to {escape(str(gitops_repo))} (newest first)")
        for column in ("plan", "input", "date", "commits", "clusters", "workloads", "replicas", "note"):
            table.add_column(column, justify="right" if column in ("workloads", "replicas") else "left",
                             no_wrap=column in ("plan", "input", "commits"))
        for p in plans:
            data = p.to_dict()
            more = f" +{len(p.commits) - 1}" if len(p.commits) > 1 else ""
            table.add_row(
                _short(p.plan_id), _short(p.input_digest)[:8], p.date[:16].replace("T", " "),
                p.last_commit[:8] + more, ", ".join(p.clusters) or "-",
                str(data["workloads"]), str(data["replicas"]),
                f"rollback to {_short(p.rollback_to)}" if p.rollback_to else "",
            )
        table_console(fmt).print(table)

    run_guarded(body)


def rollback_plan(bundle: Bundle, target: Target, placement: dict[str, dict[str, int]]) -> Plan:
    """``placement`` as a plan for today's ``bundle``: workloads it does not place are unplaced.

    Workloads the bundle no longer declares stay in ``placements`` so the verifier names them.
    """
    stamp = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    placed = {k: dict(v) for k, v in placement.items() if v}
    unplaced = [
        Unplaced(workload=w.key, reasons=[Reason(
            code="RolledBack", message=f"the rollback target {target.label} does not place it")])
        for w in bundle.workloads if w.key not in placed
    ]
    return Plan(
        metadata=PlanMetadata(input_digest=bundle.digest(), created_at=stamp),
        status=PlanStatus(solver="Feasible", solve_seconds=0.0, objective=ObjectiveValues(),
                          warnings=[f"rollback to {target.label} (commit {target.commit})"]),
        placements=[Placement(workload=k, clusters=v) for k, v in sorted(placed.items())],
        unplaced=unplaced,
        moves=[],
    )


def _print_diff(now: dict[str, dict[str, int]], after: dict[str, dict[str, int]]) -> int:
    """What changes against what runs now; returns the number of workloads that change."""
    changed = [k for k in sorted(set(now) | set(after)) if now.get(k, {}) != after.get(k, {})]
    if not changed:
        console.print("rollback: the repository already holds that placement; nothing to change")
        return 0
    table = Table(title="Rollback: what changes against what runs now")
    for column in ("workload", "now", "after rollback"):
        table.add_column(column)

    def fmt(per: dict[str, int]) -> str:
        return ", ".join(f"{c}={n}" for c, n in sorted(per.items())) or "-"

    for key in changed:
        table.add_row(escape(key), fmt(now.get(key, {})), fmt(after.get(key, {})))
    console.print(table)
    for move in diff_moves(now, after):
        console.print(f"move {escape(move.workload)}: {move.replicas} from {move.from_} to {move.to or '(removed)'}")
    return len(changed)


def _repo_format(gitops_repo: Path, given: str | None) -> str:
    """``--gitops-format``, else the format the repository's records say, else flux."""
    if given is not None:
        if given not in GITOPS_FORMATS:
            raise InputError(f"expected one of {', '.join(GITOPS_FORMATS)}, got {given!r}", field="--gitops-format")
        return given
    from adapters.gitops import read_records

    formats = {r.format for r in read_records(gitops_repo).values()} & set(GITOPS_FORMATS)
    return formats.pop() if len(formats) == 1 else "flux"


def register(app: typer.Typer) -> None:
    """Add ``berth history`` and ``berth rollback`` to ``app``."""
    app.command("history")(history)

    @app.command("rollback")
    def rollback(
        bundle: Annotated[list[Path], typer.Argument(help="Today's bundle files or folders.")],
        gitops_repo: Annotated[Path, typer.Option("--gitops-repo", help="The GitOps repository (a local clone).")],
        to: Annotated[str, typer.Option("--to", help="A plan digest from `berth history`, or a commit.")],
        commit: Annotated[bool, typer.Option(help="Write the rollback as new commits (default: dry run).")] = False,
        push: Annotated[bool, typer.Option(help="Push the commits to origin.")] = False,
        gitops_format: Annotated[str | None, typer.Option(help="flux, argocd, arc or configsync "
                                                          "(default: the repository's).")] = None,
        max_moves: Annotated[int | None, typer.Option(help="Refuse a rollback that removes more replicas "
                                                      "than this from where they run (default: no limit).")] = None,
        allow_sources_outside: Annotated[bool, typer.Option(
            "--allow-sources-outside", help="Accept source.path folders outside the bundle's folder.")] = False,
    ) -> None:
        """Restore the placement of an earlier plan or commit, checked against today's fleet."""
        from adapters.cli.place import load_inputs
        from adapters.gitops import read_current, write_plan
        from adapters.gitops.history import resolve_target, rollback_trailers
        from adapters.gitops.sources import check_bundle_sources
        from engine import verify

        def body() -> int:
            if push and not commit:
                raise InputError("--push needs --commit", field="--push")
            fmt = _repo_format(gitops_repo, gitops_format) if gitops_repo.is_dir() else "flux"
            target = resolve_target(gitops_repo, to)
            loaded, _warnings = load_inputs(bundle, prometheus=None, kubeconfig=None, contexts=[])
            if not allow_sources_outside:
                check_bundle_sources(loaded, bundle)
            from adapters.gitops.history import placement_at

            placement = target.plan.placement if target.plan is not None else placement_at(gitops_repo, target.commit)
            if not placement:
                raise InputError(f"{target.label} places nothing: rolling back to it would empty every cluster",
                                 field="--to")
            plan = rollback_plan(loaded, target, placement)
            now = read_current(gitops_repo)
            console.print(f"rollback to {escape(target.label)} (commit {target.commit[:12]})")
            violations = verify(loaded, plan, current=now if max_moves is not None else None, max_moves=max_moves)
            if violations:
                report_violations(violations, f"rollback refused: {len(violations)} violation(s) against today's "
                                  "fleet; nothing was committed")
                return ExitCode.FAILED
            for u in plan.unplaced:
                console.print(f"[yellow]note[/]: {escape(u.workload)} is not placed by the target: it will be removed")
            changes = _print_diff(now, plan.assignment())
            if not commit:
                if changes:
                    console.print("dry run: nothing committed (add --commit to write it)")
                return ExitCode.OK
            with rollback_trailers(target):
                result = write_plan(loaded, plan, gitops_repo, fmt=fmt, commit=True, push=push)
            console.print(f"gitops: {result.summary()}")
            return ExitCode.OK

        code = run_guarded(body)
        if code:
            sys.exit(code)
