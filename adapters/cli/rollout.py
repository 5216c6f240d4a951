"""``berth rollout``: commit a plan in waves along ``dependsOn``, each once its dependencies are ready.

The plan (from ``berth place --output``) is checked with the independent verifier against
today's bundle first; then :func:`adapters.gitops.rollout.rollout` commits it wave by wave,
reading readiness from Prometheus (kube-state-metrics, per cluster, through the bundle's
MetricsSource: its cluster label and per-cluster Prometheus servers).
"""

from __future__ import annotations

import json
import sys
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.markup import escape

from adapters.cli.common import ExitCode, console, err_console, load_assignment, report_violations, run_guarded
from engine import Bundle, InputError, ObjectiveValues, Placement, Plan, PlanMetadata, PlanStatus, Reason, Unplaced

__all__ = ["register", "target_plan"]


def target_plan(bundle: Bundle, path: Path) -> Plan:
    """The plan file at ``path`` as a Plan for ``bundle``: its placements, every other workload of the
    bundle unplaced (the rollout removes it); an Infeasible plan is refused."""
    assignment = load_assignment(path)
    data: Any = json.loads(path.read_text(encoding="utf-8"))
    status = data.get("status") if isinstance(data.get("status"), dict) else {}
    if status.get("solver") == "Infeasible":
        raise InputError("the plan is Infeasible: it is never committed", file=str(path), field="status.solver")
    meta = data.get("metadata") if isinstance(data.get("metadata"), dict) else {}
    digest = meta.get("inputDigest") if isinstance(meta.get("inputDigest"), str) else bundle.digest()
    stamp = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    return Plan(
        metadata=PlanMetadata(input_digest=digest, created_at=stamp),
        status=PlanStatus(solver=str(status.get("solver") or "Feasible"), solve_seconds=0.0,
                          objective=ObjectiveValues()),
        placements=[Placement(workload=k, clusters=v) for k, v in sorted(assignment.items()) if v],
        unplaced=[Unplaced(workload=w.key, reasons=[Reason(code="NotPlaced", message=f"{path} does not place it")])
                  for w in bundle.workloads if not assignment.get(w.key)],
    )


def register(app: typer.Typer) -> None:
    """Add ``berth rollout`` to ``app``."""

    @app.command("rollout")
    def rollout(
        bundle: Annotated[list[Path], typer.Argument(help="Bundle files or folders.")],
        plan: Annotated[Path, typer.Option("--plan", help="The plan to roll out (berth place --output).")],
        gitops_repo: Annotated[Path, typer.Option("--gitops-repo", help="The GitOps repository (a local clone).")],
        prometheus: Annotated[str | None, typer.Option(help="Prometheus base URL for readiness "
                                                       "(default: the MetricsSource's).")] = None,
        wave_timeout: Annotated[float, typer.Option(help="Seconds a wave waits for its dependencies.", min=0)] = 600,
        poll_interval: Annotated[float, typer.Option(help="Seconds between readiness checks.", min=0.1)] = 10,
        gitops_format: Annotated[str, typer.Option(help="flux, argocd, arc or configsync.")] = "flux",
        push: Annotated[bool, typer.Option(help="Push each wave to origin.")] = False,
        allow_sources_outside: Annotated[bool, typer.Option(
            "--allow-sources-outside", help="Accept source.path folders outside the bundle's folder.")] = False,
    ) -> None:
        """Commit PLAN in waves along dependsOn: a wave only once what it depends on is ready."""
        from adapters.gitops.rollout import RolloutTimeout, plan_waves
        from adapters.gitops.rollout import rollout as run
        from adapters.gitops.sources import check_bundle_sources
        from adapters.prometheus import fetch_ready
        from engine import load_bundle, verify

        def body() -> int:
            loaded = load_bundle(bundle)
            if not allow_sources_outside:
                check_bundle_sources(loaded, bundle)
            target = target_plan(loaded, plan)
            violations = verify(loaded, target)
            if violations:
                report_violations(violations, f"rollout refused: the plan breaks {len(violations)} hard "
                                  "constraint(s) of today's bundle; nothing was committed")
                return ExitCode.FAILED
            for wave in plan_waves(loaded):
                deps = ", ".join(sorted(wave.depends_on)) or "nothing"
                console.print(f"wave {wave.index + 1}: {escape(', '.join(wave.workloads))} (after {escape(deps)})")
            try:
                result = run(
                    loaded, target, gitops_repo,
                    ready=lambda at: fetch_ready(loaded, prometheus, at=at),
                    now=lambda: datetime.now(UTC), sleep=time.sleep,
                    wave_timeout=wave_timeout, poll_interval=poll_interval, fmt=gitops_format, push=push,
                    report=lambda line: console.print(escape(line), highlight=False),
                )
            except RolloutTimeout as exc:
                err_console.print("[bold red]rollout stopped:[/] " + escape(str(exc)), highlight=False)
                for waiting in exc.result.not_ready:
                    err_console.print(f"  waiting: {escape(str(waiting))}", highlight=False)
                return ExitCode.FAILED
            console.print(f"rollout complete: {len(result.committed)} wave(s) committed, "
                          f"{len(result.commits)} commit(s)")
            return ExitCode.OK

        code = run_guarded(body)
        if code:
            sys.exit(code)
