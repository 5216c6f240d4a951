"""What-if reports: ``report.md`` and ``report.html`` with tables and PNG plots (offline).

Figures (matplotlib, Agg backend, written beside the reports):

- ``utilisation-<scenario>.png``: cpu utilisation per cluster, baseline vs scenario;
- ``sweep-<scenario>.png``: cost and unplaced replicas across a sweep's values.

The HTML references the PNGs by relative path and loads nothing from the
network, so the folder can be zipped and opened anywhere.
"""

from __future__ import annotations

import html
import re
from pathlib import Path
from typing import Any

from engine.scenario import compare

__all__ = ["write_report"]

Result = dict[str, Any]


def _slug(text: str) -> str:
    return re.sub(r"[^a-zA-Z0-9._-]+", "-", text).strip("-") or "scenario"


def _util_figure(path: Path, title: str, baseline: Result, summary: Result, resource: str = "cpu") -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    names = sorted(set(baseline["utilisation"]) | set(summary["utilisation"]))
    before = [100 * baseline["utilisation"].get(n, {}).get(resource, 0.0) for n in names]
    after = [100 * summary["utilisation"].get(n, {}).get(resource, 0.0) for n in names]
    fig, ax = plt.subplots(figsize=(max(6.0, 0.35 * len(names) + 2), 4))
    xs = range(len(names))
    ax.bar([x - 0.2 for x in xs], before, width=0.4, label="baseline")
    ax.bar([x + 0.2 for x in xs], after, width=0.4, label=title)
    ax.set_xticks(list(xs))
    ax.set_xticklabels(names, rotation=60, ha="right", fontsize=7)
    ax.set_ylabel(f"{resource} utilisation (%)")
    ax.set_ylim(0, 105)
    ax.set_title(f"{resource} utilisation per cluster: baseline vs {title}")
    ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=90)
    plt.close(fig)


def _sweep_figure(path: Path, title: str, points: list[Result]) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    ok = [p for p in points if "summary" in p]
    xs = [float(p["value"]) for p in ok]
    cost = [p["summary"]["cost"] for p in ok]
    unplaced = [sum(p["summary"]["unplacedReplicasByPriority"].values()) for p in ok]
    fig, ax = plt.subplots(figsize=(6, 4))
    ax.plot(xs, cost, marker="o", color="tab:blue", label="cost / h")
    ax.set_xlabel("sweep value")
    ax.set_ylabel("cost per hour", color="tab:blue")
    ax2 = ax.twinx()
    ax2.plot(xs, unplaced, marker="s", color="tab:red", label="unplaced replicas")
    ax2.set_ylabel("unplaced replicas", color="tab:red")
    ax.set_title(f"sweep {title}")
    fig.tight_layout()
    fig.savefig(path, dpi=90)
    plt.close(fig)


def _rows(baseline: Result, results: list[Result]) -> list[list[str]]:
    rows = [["baseline", baseline["solver"], str(baseline["placed"]), str(baseline["unplaced"]),
             f"{baseline['cost']:.4f}", "", f"{baseline['latency']:g}", "0",
             _fmt_map(baseline["unplacedReplicasByPriority"]), _fmt_map(baseline["unplacedByReason"])]]
    for r in results:
        if "error" in r:
            rows.append([r["name"], "failed", "", "", "", "", "", "", "", r["error"]])
            continue
        s = r["summary"]
        d = compare(baseline, s)
        rows.append([r["name"], s["solver"], str(s["placed"]), str(s["unplaced"]), f"{s['cost']:.4f}",
                     f"{d['cost']:+.4f}", f"{s['latency']:g}", str(s["movedReplicas"]),
                     _fmt_map(s["unplacedReplicasByPriority"]), _fmt_map(s["unplacedByReason"])])
    return rows


_HEAD = ["scenario", "solver", "placed", "unplaced", "cost/h", "Δ cost", "latency ms", "moved replicas",
         "unplaced replicas by priority", "unplaced by reason"]


def _fmt_map(m: dict[str, Any]) -> str:
    return ", ".join(f"{k}: {v}" for k, v in sorted(m.items(), key=lambda kv: str(kv[0]))) or "-"


def _regions(baseline: Result, results: list[Result]) -> tuple[list[str], list[list[str]]]:
    regions = sorted(baseline["regionUtilisation"])
    rows = []
    for name, s in [("baseline", baseline), *[(r["name"], r["summary"]) for r in results if "summary" in r]]:
        cells = [f"{100 * s['regionUtilisation'].get(g, {}).get('cpu', 0.0):.0f}%"
                 if g in s["regionUtilisation"] else "gone" for g in regions]
        rows.append([name, *cells])
    return ["scenario", *[f"{g} cpu" for g in regions]], rows


def _md_table(head: list[str], rows: list[list[str]]) -> str:
    esc = [[c.replace("|", "\\|") for c in row] for row in rows]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    lines += ["| " + " | ".join(row) + " |" for row in esc]
    return "\n".join(lines)


def _html_table(head: list[str], rows: list[list[str]]) -> str:
    th = "".join(f"<th>{html.escape(h)}</th>" for h in head)
    body = "".join("<tr>" + "".join(f"<td>{html.escape(c)}</td>" for c in row) + "</tr>" for row in rows)
    return f"<table><thead><tr>{th}</tr></thead><tbody>{body}</tbody></table>"


def write_report(folder: Path, baseline: Result, results: list[Result], *, title: str = "Berth what-if report",
                 sweeps: dict[str, list[Result]] | None = None) -> list[Path]:
    """Write the report files into ``folder``; returns the paths written.

    Args:
        baseline: :func:`engine.scenario.summarize` of the baseline plan.
        results: one entry per scenario point (``summary`` or ``error``).
        sweeps: scenario name -> its points, for the sweep plots.
    """
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    figures: list[tuple[str, Path]] = []
    swept = {r["name"] for pts in (sweeps or {}).values() for r in pts}
    for r in results:
        if "summary" in r and r["name"] not in swept:
            path = folder / f"utilisation-{_slug(r['name'])}.png"
            _util_figure(path, r["name"], baseline, r["summary"])
            figures.append((f"Utilisation: {r['name']}", path))
    for name, pts in (sweeps or {}).items():
        if any("summary" in p for p in pts):
            path = folder / f"sweep-{_slug(name)}.png"
            _sweep_figure(path, name, pts)
            figures.append((f"Sweep: {name}", path))
    rows = _rows(baseline, results)
    rhead, rrows = _regions(baseline, results)
    failed = [r for r in results if "error" in r]
    md = [f"# {title}", "",
          f"Baseline: {baseline['workloads']} workloads on {baseline['clusters']} clusters, solver "
          f"{baseline['solver']}. Each scenario is solved against the baseline placement (moves are costed).", "",
          "## Scenarios", "", _md_table(_HEAD, rows), "", "## Utilisation per region", "",
          _md_table(rhead, rrows), ""]
    if failed:
        md += ["## Failed scenarios", "", *[f"- **{r['name']}**: {r['error']}" for r in failed], ""]
    md += ["## Figures", ""] + [f"### {t}\n\n![{t}]({p.name})\n" for t, p in figures]
    (folder / "report.md").write_text("\n".join(md), encoding="utf-8")
    style = ("body{font-family:sans-serif;margin:2em;max-width:80em}table{border-collapse:collapse;margin:1em 0}"
             "td,th{border:1px solid #bbb;padding:.3em .6em;font-size:.9em}th{background:#eee}img{max-width:100%}")
    parts = [f"<!doctype html><html><head><meta charset='utf-8'><title>{html.escape(title)}</title>"
             f"<style>{style}</style></head><body><h1>{html.escape(title)}</h1>",
             f"<p>Baseline: {baseline['workloads']} workloads on {baseline['clusters']} clusters, solver "
             f"{html.escape(baseline['solver'])}.</p>", "<h2>Scenarios</h2>", _html_table(_HEAD, rows),
             "<h2>Utilisation per region</h2>", _html_table(rhead, rrows)]
    if failed:
        parts += ["<h2>Failed scenarios</h2><ul>"] + [
            f"<li><b>{html.escape(r['name'])}</b>: {html.escape(r['error'])}</li>" for r in failed] + ["</ul>"]
    parts += ["<h2>Figures</h2>"] + [
        f"<h3>{html.escape(t)}</h3><img src='{html.escape(p.name)}' alt='{html.escape(t)}'>" for t, p in figures]
    parts.append("</body></html>")
    (folder / "report.html").write_text("\n".join(parts), encoding="utf-8")
    return [folder / "report.md", folder / "report.html", *[p for _, p in figures]]
