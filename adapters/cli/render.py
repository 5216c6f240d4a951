"""Readable tables of a plan: cluster utilisation, placements, unplaced and not applied with reasons."""

from __future__ import annotations

from typing import Any

from rich.console import Console
from rich.markup import escape
from rich.table import Table

from engine import Bundle, Plan, format_quantity, requested_by_cluster

__all__ = ["bound_text", "print_plan"]

_SHOWN_RESOURCES = ("cpu", "memory", "nvidia.com/gpu", "pods")


def _utilisation(bundle: Bundle, plan: Plan) -> Table:
    used = requested_by_cluster(bundle, plan)
    resources = [r for r in _SHOWN_RESOURCES if any(r in c.spec.capacity for c in bundle.clusters)]
    table = Table(title="Cluster utilisation", title_justify="left")
    table.add_column("cluster", overflow="fold")  # never cut a name short
    table.add_column("region")
    for r in resources:
        table.add_column(r, justify="right")
    table.add_column("workloads", justify="right")
    counts = {c.metadata.name: 0 for c in bundle.clusters}
    for placement in plan.placements:
        for cluster in placement.clusters:
            counts[cluster] = counts.get(cluster, 0) + 1
    for cluster in bundle.clusters:
        name = cluster.metadata.name
        cells = []
        for r in resources:
            cap = cluster.spec.capacity.get(r)
            have = used[name].get(r, 0)
            if cap is None:
                cells.append(f"{format_quantity(r, have)}/-")
                continue
            pct = 100.0 * have / cap if cap else 0.0
            colour = "red" if pct > 90 else "yellow" if pct > 70 else "green"
            cells.append(
                f"{format_quantity(r, have)}/{format_quantity(r, cap)} [{colour}]{pct:3.0f}%[/]"
            )
        table.add_row(name, cluster.spec.region or "-", *cells, str(counts.get(name, 0)))
    return table


def _placements(plan: Plan) -> Table:
    table = Table(title="Placements", title_justify="left")
    table.add_column("workload", overflow="fold")
    table.add_column("replicas", justify="right")
    table.add_column("clusters", overflow="fold")
    for p in plan.placements:
        spread = ", ".join(f"{c}={n}" for c, n in sorted(p.clusters.items()))
        table.add_row(p.workload, str(sum(p.clusters.values())), escape(spread))
    return table


def _unplaced(plan: Plan) -> Table:
    table = Table(title="Unplaced", title_justify="left")
    table.add_column("workload", overflow="fold")
    table.add_column("reason")
    table.add_column("detail")
    for u in plan.unplaced:
        for i, r in enumerate(u.reasons):
            table.add_row(u.workload if i == 0 else "", r.code, escape(r.message))
    return table


def _not_applied(plan: Plan) -> Table:
    """Running workloads whose change does not fit: kept where they run (spec 4)."""
    table = Table(title="Not applied (kept where they run)", title_justify="left")
    table.add_column("workload", overflow="fold")
    table.add_column("kept", justify="right")
    table.add_column("wanted", justify="right")
    table.add_column("reason")
    table.add_column("detail")
    for n in plan.not_applied:
        for i, r in enumerate(n.reasons):
            first = i == 0
            table.add_row(n.workload if first else "", str(n.kept_replicas) if first else "",
                          str(n.wanted_replicas) if first else "", r.code, escape(r.message))
    return table


def internal_errors(plan: Plan) -> str | None:
    """One loud line for stderr when workloads were left unplaced because their plan failed
    verification (spec 7: a bug that concerns one workload never fails the whole fleet)."""
    names = [u.workload for u in plan.unplaced if any(r.code == "InternalError" for r in u.reasons)]
    if not names:
        return None
    return (f"error: {len(names)} workload(s) left unplaced because the engine's plan for them failed "
            f"verification (InternalError, a bug): {', '.join(names)}; the rest was planned and verified")


def bound_text(status: dict[str, Any]) -> str:
    """The plan's proved bounds, each named for what it covers (spec 5): ``bound`` holds over every plan
    with the same replicas per priority and tier, ``boundAtPlacement`` only at the plan's own workloads."""
    def one(name: str, bound: object, gap: object) -> str:
        return f"{name} {bound}, gap {gap:.4%}" if isinstance(gap, float) else f"{name} {bound}"

    parts = []
    if status.get("bound") is not None:
        parts.append(one("bound (all plans)", status["bound"], status.get("gap")))
    if status.get("boundAtPlacement") is not None:
        parts.append(one("bound at this placement", status["boundAtPlacement"], status.get("gapAtPlacement")))
    return "; ".join(parts) or "no bound proved"


def print_plan(console: Console, bundle: Bundle, plan: Plan, *, output: str | None = None) -> None:
    """Print the plan as tables, then one summary line."""
    console.print(_utilisation(bundle, plan))
    console.print(_placements(plan))
    if plan.unplaced:
        console.print(_unplaced(plan))
    if plan.not_applied:
        console.print(_not_applied(plan))
    if plan.moves:
        table = Table(title="Moves", title_justify="left")
        for col in ("workload", "from", "to", "replicas"):
            table.add_column(col)
        for m in plan.moves:
            table.add_row(m.workload, m.from_ or "-", m.to or "(removed)", str(m.replicas))
        console.print(table)
    s = plan.status
    o = s.objective
    by_prio = ", ".join(f"p{k}: {v}" for k, v in o.placed_by_priority.items())
    console.print(
        f"[bold]{s.solver}[/] in {s.solve_seconds:.2f}s; placed {len(plan.placements)} "
        f"workload(s), {len(plan.unplaced)} unplaced, {len(plan.not_applied)} not applied; "
        f"replicas by priority {by_prio}; "
        f"cost {o.cost:.4f}/h, latency {o.latency:g} ms, moves {o.moves}, "
        f"weighted {o.weighted:.4f} ({bound_text(s.model_dump(by_alias=True))})"
    )
    for warning in s.warnings:
        console.print(f"[yellow]warning:[/] {escape(warning)}")
    if output:
        console.print(f"plan written to {escape(output)}")
