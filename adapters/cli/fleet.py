"""``berth fleet``: the live fleet as a table, or snapshotted into Cluster documents.

Also the one function the other commands call to apply live inputs:
:func:`load_live` (``berth place --prometheus URL --kubeconfig PATH --context NAME``).
"""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated, Any

import typer
import yaml
from rich.markup import escape
from rich.table import Table

from adapters.cli.common import console, err_console, run_guarded
from adapters.cli.formats import check_format, format_option, print_data, table_console
from adapters.cli.outputs import Output
from adapters.live import read_live
from engine import (
    API_VERSION,
    Bundle,
    Cluster,
    InputError,
    LiveFleet,
    LiveReport,
    echo,
    format_quantity,
    is_byte_resource,
    load_bundle,
)

__all__ = ["exact_quantity", "register"]

_FIRST = ("cpu", "memory", "pods", "nvidia.com/gpu")


# --- output -------------------------------------------------------------------------


def exact_quantity(resource: str, base: int) -> str | int:
    """Base units back to exact Kubernetes notation (``3920m``, ``12Gi``, ``7``)."""
    if resource == "cpu":
        return str(base // 1000) if base % 1000 == 0 else f"{base}m"
    if is_byte_resource(resource):
        for suffix, size in (("Ti", 2**40), ("Gi", 2**30), ("Mi", 2**20), ("Ki", 2**10)):
            if base and base % size == 0:
                return f"{base // size}{suffix}"
        return str(base)
    return base


def _ordered(resources: set[str]) -> list[str]:
    return [r for r in _FIRST if r in resources] + sorted(resources - set(_FIRST))


def snapshot_documents(applied: Bundle, live: LiveFleet, report: LiveReport) -> list[dict[str, Any]]:
    """Cluster documents with the capacities used (live, or the file's where stale/missing)."""
    docs: list[dict[str, Any]] = []
    for cluster in applied.clusters:
        data = cluster.model_dump(mode="json", by_alias=True, exclude_none=True)
        data["spec"]["capacity"] = {
            r: exact_quantity(r, cluster.spec.capacity[r])
            for r in _ordered(set(cluster.spec.capacity))
        }
        status = report.status_of(cluster.name)
        annotations = data["metadata"].setdefault("annotations", {})
        annotations["placement.berth.dev/capacity-source"] = (
            "live" if status == "live" else f"bundle ({status} live data)"
        )
        annotations["placement.berth.dev/observed-at"] = live.at.isoformat()
        docs.append(_tidy(data))
    for name in report.extra:
        seen = live.clusters[name]
        spec: dict[str, Any] = {}
        if seen.region:
            spec["region"] = seen.region
        if seen.zone:
            spec["zone"] = seen.zone
        free = seen.free()
        spec["capacity"] = {r: exact_quantity(r, free[r]) for r in _ordered(set(free))}
        docs.append({
            "apiVersion": API_VERSION,
            "kind": "Cluster",
            "metadata": {"name": name, "annotations": {
                "placement.berth.dev/capacity-source": "live (not in the bundle)",
                "placement.berth.dev/observed-at": live.at.isoformat(),
            }},
            "spec": spec,
        })
    return docs


def _tidy(data: dict[str, Any]) -> dict[str, Any]:
    """Drop empty maps and lists so the documents read like hand-written ones."""
    for part in ("metadata", "spec"):
        for key in [k for k, v in data[part].items() if v in ({}, [])]:
            del data[part][key]
    return data


def fleet_table(applied: Bundle, original: Bundle, live: LiveFleet, report: LiveReport) -> Table:
    """Allocatable, requested, free and utilisation per cluster and resource."""
    table = Table(title=f"Fleet from {escape(live.source)} at {live.at:%Y-%m-%d %H:%M:%S}Z",
                  title_justify="left")
    table.add_column("cluster", overflow="fold")  # never cut a name short
    table.add_column("resource", no_wrap=True)
    for column in ("allocatable", "requested", "free", "util"):
        table.add_column(column, justify="right", no_wrap=True)
    table.add_column("source", no_wrap=True)
    before = {c.name: c for c in original.clusters}
    rows: list[tuple[str, Cluster | None]] = [(c.name, c) for c in applied.clusters]
    rows += [(n, None) for n in report.extra]
    for name, cluster in rows:
        status = report.status_of(name)
        seen = live.clusters.get(name)
        if status in ("live", "extra") and seen is not None:
            free = seen.free() if cluster is None else cluster.spec.capacity
            resources = _ordered(set(seen.allocatable) | set(free))
            label = "[green]live[/]" if status == "live" else "[yellow]extra, ignored[/]"
        else:
            free = before[name].spec.capacity
            resources = _ordered(set(free))
            label = f"[red]{status.upper()}[/] → bundle"
        for i, r in enumerate(resources or ["-"]):
            if r == "-":
                table.add_row(name, "-", "-", "-", "-", "-", label)
                continue
            live_row = status in ("live", "extra") and seen is not None
            alloc = seen.allocatable.get(r) if live_row and seen else None
            req = seen.requested.get(r, 0) if live_row and seen else None
            util = "-"
            if alloc:
                pct = 100.0 * (req or 0) / alloc
                colour = "red" if pct > 90 else "yellow" if pct > 70 else "green"
                util = f"[{colour}]{pct:.0f}%[/]"
            table.add_row(
                name if i == 0 else "",
                r,
                format_quantity(r, alloc) if alloc is not None else "-",
                format_quantity(r, req) if req is not None else "-",
                format_quantity(r, free.get(r, 0)),
                util,
                label if i == 0 else "",
            )
        table.add_section()
    return table


def _parse_at(text: str | None) -> datetime | None:
    if text is None:
        return None
    try:
        at = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError as exc:
        raise InputError(f"expected an ISO 8601 time such as 2026-11-26T12:00:00Z, got {echo(text)}",
                         field="--at") from exc
    return at if at.tzinfo else at.replace(tzinfo=UTC)


def register(app: typer.Typer) -> None:
    """Add ``berth fleet`` to ``app``."""

    @app.command("fleet")
    def fleet(
        bundle: Annotated[list[Path], typer.Argument(help="Bundle files or folders.")],
        prometheus: Annotated[
            str | None, typer.Option(help="Prometheus URL (default: the MetricsSource's).")
        ] = None,
        kubeconfig: Annotated[
            Path | None, typer.Option(help="Kubeconfig for live inventory.")
        ] = None,
        context: Annotated[
            list[str] | None, typer.Option(help="Kubeconfig context (one per cluster).")
        ] = None,
        output: Annotated[
            Path | None,
            typer.Option("--output", help="Write the fleet as Cluster documents (YAML) to FILE ('-': stdout)."),
        ] = None,
        fmt: Annotated[str, format_option()] = "table",
        at: Annotated[
            str | None, typer.Option(help="Evaluate Prometheus queries at this ISO 8601 time.")
        ] = None,
    ) -> None:
        """Show the live fleet: allocatable, requested, free and utilisation per cluster."""

        def body() -> None:
            check_format(fmt)
            out = Output.check(output, "--output")
            data_out = fmt in ("json", "yaml")
            if data_out and out is not None and out.kind == "stdout":
                raise InputError(f"-o {fmt} and --output - both write to standard output; give one",
                                 field="--output")
            shown = err_console if data_out or (out is not None and out.kind == "stdout") else console
            original = load_bundle(bundle)
            applied, report, live = read_live(
                original, prometheus=prometheus, kubeconfig=kubeconfig,
                contexts=context or [], at=_parse_at(at),
            )
            docs = snapshot_documents(applied, live, report)
            if data_out:
                print_data(fmt, docs, documents=True)
            else:
                table_console(fmt, shown).print(fleet_table(applied, original, live, report))
            for warning in report.warnings:
                err_console.print(f"[yellow]warning:[/] {escape(warning)}", highlight=False)
            if out is not None:
                out.write(yaml.safe_dump_all(docs, sort_keys=False))
                shown.print(f"wrote {len(docs)} Cluster document(s) to {out.shown}")

        run_guarded(body)
