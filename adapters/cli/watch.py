"""``berth watch``: self-healing for teams without the service, the same logic as ``berth serve``'s.

Every ``--interval`` seconds (or once with ``--once``): read the live fleet, read what runs from
the GitOps clone, and re-place what a lost or shrunken cluster holds once it has been in
trouble for ``--grace-seconds`` (:mod:`adapters.failover`). Each event is one line on stdout
(JSON with ``--json``). When a cluster was first seen in trouble survives between runs in
``--state-file`` (default ``.git/berth-watch.json`` inside the clone), so a CronJob running
``--once`` keeps the grace period too.

Exit codes: 0 the pass (or passes, until SIGTERM/SIGINT, which stop it between passes) ran;
2 invalid input; 3 (``--once``) the live source or the GitOps repository/remote failed and
nothing was committed; 4 (``--once``) a failover was due but no plan re-places every affected
workload within ``--max-moves`` (nothing committed). Without ``--once`` a failing source or
remote is reported and the next pass tries again.
"""

from __future__ import annotations

import json
import signal
import sys
import threading
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated

import typer
from rich.markup import escape

from adapters.cli.common import ExitCode, atomic_write, console, err_console, run_guarded
from adapters.cli.fleet import _parse_at
from adapters.cli.place import GITOPS_FORMATS
from adapters.failover import Event, FailoverSettings, Healing, Tracker, run_pass
from engine import Bundle, GitOpsError, InputError, SourceError, load_bundle

__all__ = ["register", "watch_once"]

STATE_NAME = "berth-watch.json"


def _load_tracker(path: Path, grace: float) -> Tracker:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        return Tracker(grace)
    except (OSError, ValueError) as exc:
        raise InputError(f"not a berth watch state file: {exc}", file=str(path)) from None
    if not isinstance(data, dict):
        raise InputError("not a berth watch state file: expected a mapping", file=str(path))
    return Tracker.from_json(grace, data)


def watch_once(
    bundle: Bundle,
    repo: Path,
    tracker: Tracker,
    settings: FailoverSettings,
    *,
    at: datetime,
    prometheus: str | None,
    kubeconfig: Path | None,
    contexts: list[str],
    fmt: str | None,
    push: bool,
) -> list[Event]:
    """One pass: live fleet at ``at``, what runs from the clone (locked for the pass), heal, commit.

    Raises:
        SourceError: a live source or the repository failed (nothing committed).
    """
    from adapters.gitops import open_clone, read_current, read_records, write_plan
    from adapters.gitops.layout import plan_id
    from adapters.live import read_live

    applied, report, live = read_live(bundle, prometheus=prometheus, kubeconfig=kubeconfig, contexts=contexts,
                                      at=at)
    with open_clone(repo, sync_remote="origin" if push else None) as session:
        current = read_current(repo)
        defined = {w.key for w in bundle.workloads}
        committed = {k: v for k, v in current.items() if k in defined}
        # clusters holding workloads the bundle does not define are never rewritten (they would be dropped)
        blocked = {c for k, v in current.items() if k not in defined for c in v}
        formats = {r.format for r in read_records(repo).values() if r.format}
        chosen = fmt or (formats.pop() if len(formats) == 1 else "flux")
        fleet = replace(applied, workloads=[w for w in applied.workloads if w.key in committed])

        def commit(healing: Healing) -> tuple[str, list[str]]:
            assert healing.plan is not None and healing.bundle is not None
            changed = set(healing.changed_clusters)
            if changed & blocked:
                raise GitOpsError(f"cluster(s) {', '.join(sorted(changed & blocked))} hold workloads the bundle "
                                  "does not define; add them to the bundle before failover may rewrite them")
            result = write_plan(healing.bundle, healing.plan, repo, fmt=chosen, commit=True, push=push,
                                clusters=changed, session=session)
            return plan_id(healing.plan), [c.sha for c in result.commits]

        return run_pass(tracker, at.timestamp(), fleet, report, live, committed, settings=settings, commit=commit,
                        warnings=list(report.warnings))


def _show(events: list[Event], as_json: bool) -> None:
    for e in events:
        if as_json:
            sys.stdout.write(json.dumps(e.to_json()) + "\n")
            sys.stdout.flush()
        else:
            line = f"{e.to_json()['time']} {e.type} {', '.join(e.clusters)}: {e.message}"
            console.print(escape(line), highlight=False, soft_wrap=True)


def register(app: typer.Typer) -> None:
    """Add ``berth watch`` to ``app``."""

    @app.command("watch")
    def watch(
        bundle: Annotated[list[Path], typer.Argument(help="Bundle files or folders: the workloads' definitions.")],
        gitops_repo: Annotated[Path, typer.Option(help="GitOps clone: what runs now, and where to commit.")],
        max_moves: Annotated[int, typer.Option(min=0, help="Replicas one failover may move.")],
        prometheus: Annotated[str | None, typer.Option(help="Prometheus URL (default: the MetricsSource's).")] = None,
        kubeconfig: Annotated[Path | None, typer.Option(help="Kubeconfig for live inventory.")] = None,
        context: Annotated[list[str] | None, typer.Option(help="Kubeconfig context.")] = None,
        grace_seconds: Annotated[float, typer.Option(
            min=0, help="A cluster must be in trouble this long before anything moves.")] = 300.0,
        interval: Annotated[float, typer.Option(min=0.05, help="Seconds between passes.")] = 60.0,
        once: Annotated[bool, typer.Option("--once", help="One pass, then exit (for a CronJob).")] = False,
        at: Annotated[str | None, typer.Option(help="With --once: evaluate at this ISO 8601 time.")] = None,
        push: Annotated[bool, typer.Option("--push", help="Push the commits to origin.")] = False,
        gitops_format: Annotated[str | None, typer.Option(help="Default: the repo's format, else flux.")] = None,
        time_limit: Annotated[float, typer.Option(min=0.1, help="Seconds for the solver per failover.")] = 10.0,
        state_file: Annotated[Path | None, typer.Option(
            help="Where first sightings survive between runs (default: .git/berth-watch.json in the clone).")] = None,
        as_json: Annotated[bool, typer.Option("--json", help="One JSON object per event.")] = False,
    ) -> None:
        """Watch the fleet and re-place what lost or shrunken clusters hold, within --max-moves."""

        def body() -> int:
            if at is not None and not once:
                raise InputError("--at needs --once", field="--at")
            if gitops_format is not None and gitops_format not in GITOPS_FORMATS:
                raise InputError(f"expected one of {', '.join(GITOPS_FORMATS)}", field="--gitops-format")
            if not (gitops_repo / ".git").is_dir():
                raise InputError("expected a git clone that Berth writes (berth place --commit creates one)",
                                 field="--gitops-repo")
            settings = FailoverSettings(max_moves=max_moves, grace_seconds=grace_seconds,
                                        time_limit_seconds=time_limit)
            loaded = load_bundle(bundle)
            state = state_file or gitops_repo / ".git" / STATE_NAME
            tracker = _load_tracker(state, grace_seconds)
            stop = threading.Event()
            if not once:
                for sig in (signal.SIGTERM, signal.SIGINT):
                    signal.signal(sig, lambda *_: stop.set())
            while True:
                when = _parse_at(at) if once and at else datetime.now(UTC)
                assert when is not None
                try:
                    events = watch_once(loaded, gitops_repo, tracker, settings, at=when, prometheus=prometheus,
                                        kubeconfig=kubeconfig, contexts=context or [], fmt=gitops_format, push=push)
                except SourceError as exc:
                    if once:
                        raise
                    err_console.print(f"[yellow]warning:[/] pass failed, trying again: {escape(str(exc))}",
                                      highlight=False)
                    events = []
                atomic_write(state, json.dumps(tracker.to_json(), indent=2) + "\n")
                _show(events, as_json)
                if once:
                    failed = [e for e in events if e.type == "FailoverFailed"]
                    if failed:
                        err_console.print(f"[bold red]error:[/] {escape(failed[0].message)}", highlight=False)
                        return ExitCode.SOURCE_FAILED
                    return ExitCode.INFEASIBLE if tracker.last_infeasible is not None else ExitCode.OK
                if stop.wait(interval):
                    err_console.print("berth watch: stopped between passes")
                    return ExitCode.OK

        code = run_guarded(body)
        if code:
            sys.exit(code)

