"""``berth status --gitops-repo DIR``: what each cluster runs, as the repository says."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.markup import escape
from rich.table import Table

from adapters.cli.common import console, run_guarded
from adapters.cli.formats import check_format, format_option, print_data, table_console
from adapters.cli.outputs import Output
from engine import InputError

__all__ = ["register", "status", "status_data"]


def _last_commit(repo: Path, folder: str) -> dict[str, str] | None:
    """Newest commit touching ``folder`` (short sha, date, subject); None outside git."""
    proc = subprocess.run(
        ["git", "-C", str(repo), "log", "-1", "--format=%h%x00%cs%x00%s", "--", folder],
        capture_output=True,
        text=True,
        check=False,
    )
    if proc.returncode != 0 or not proc.stdout.strip():
        return None
    sha, date, subject = [*proc.stdout.strip().split("\x00"), "", "", ""][:3]
    return {"sha": sha, "date": date, "subject": subject}


def status_data(repo: Path) -> dict[str, Any]:
    """The status as data: ``{"clusters": [{name, format, workloads, replicas, lastCommit}]}``."""
    from adapters.gitops import read_records  # git and ruamel.yaml: only this command reads records

    records = read_records(repo)
    clusters = []
    for name, record in sorted(records.items()):
        clusters.append(
            {
                "name": name,
                "format": record.format,
                "replicas": sum(record.assignment().values()),
                "workloads": [
                    {
                        "workload": e.workload,
                        "replicas": e.replicas,
                        "running": e.running,
                        "source": e.base is not None,
                    }
                    for e in record.workloads
                ],
                "lastCommit": _last_commit(repo, f"clusters/{name}"),
            }
        )
    return {"repository": str(repo), "clusters": clusters}


def status(
    gitops_repo: Annotated[
        Path, typer.Option("--gitops-repo", help="The GitOps repository (a local clone).")
    ],
    fmt: Annotated[str, format_option()] = "table",
    output: Annotated[Path | None, typer.Option("--output", help="Also write the status as JSON to FILE.")] = None,
) -> None:
    """Print what each cluster runs according to the GitOps repository."""

    def body() -> None:
        check_format(fmt)
        out = Output.check(output, "--output")
        if not gitops_repo.exists():
            raise InputError("no such folder", file=str(gitops_repo), field="--gitops-repo")
        data = status_data(gitops_repo)
        if out is not None:
            out.write(json.dumps(data, indent=2) + "\n")
        if fmt in ("json", "yaml"):
            print_data(fmt, data)
            return
        if not data["clusters"]:
            console.print(f"{escape(str(gitops_repo))}: no cluster written by Berth yet")
            return
        table = Table(title=f"GitOps placement in {escape(str(gitops_repo))}")
        for column in ("cluster", "format", "workload", "replicas", "last commit"):
            table.add_column(column, justify="right" if column == "replicas" else "left", overflow="fold")
        for cluster in data["clusters"]:
            commit = cluster["lastCommit"]
            when = f"{commit['sha']} {commit['date']}" if commit else "-"
            rows = cluster["workloads"] or [None]
            for i, entry in enumerate(rows):
                first = i == 0
                if entry is None:
                    workload, replicas = "[dim](nothing)[/]", "0"
                else:
                    note = "" if entry["running"] else " [red](overlay missing)[/]"
                    note += "" if entry["source"] else " [dim](no source)[/]"
                    workload = escape(entry["workload"]) + note
                    replicas = str(entry["replicas"])
                table.add_row(
                    escape(cluster["name"]) if first else "",
                    cluster["format"] if first else "",
                    workload,
                    replicas,
                    when if first else "",
                    end_section=i == len(rows) - 1,
                )
        table_console(fmt).print(table)

    run_guarded(body)


def register(app: typer.Typer) -> None:
    """Add ``berth status`` to ``app``."""
    app.command("status")(status)
