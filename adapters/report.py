"""What-if reports: ``report.md`` and ``report.html`` (Jinja2 templates) with PNG figures (offline).

The report is read by people who decide from it (buy capacity, accept a region's risk), so every
number says what it counts and in which unit, and the sentences under each scenario say what the
numbers mean: a cost that falls because demand is left unplaced is called that, not a saving.

Figures (matplotlib, Agg backend, written beside the reports):

- ``utilisation-<scenario>.png``: utilisation per cluster of every resource (cpu, memory, GPUs and
  other devices, pods), baseline vs scenario; removed and added clusters are marked;
- ``sweep-<scenario>.png``: cost per hour above replicas placed and left unplaced, per sweep value.

The HTML references the PNGs by relative path and loads nothing from the network, so the folder
can be zipped and opened anywhere. The numbers come from :mod:`engine.scenario` (one home for
counting); this module only words and draws them.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

from jinja2 import Environment, FileSystemLoader, StrictUndefined

from engine import compare, is_byte_resource, natural_per_base

__all__ = ["write_report"]

Result = dict[str, Any]

TEMPLATES = Path(__file__).with_name("report_templates")


def _slug(text: str) -> str:
    return re.sub(r"[^a-zA-Z0-9._-]+", "-", text).strip("-") or "scenario"


# --- words and units ------------------------------------------------------------------------------


def _unit(resource: str) -> str:
    if resource == "cpu":
        return "cores"
    if is_byte_resource(resource):
        return "GiB"
    return "pods" if resource == "pods" else "units"


def _amount(resource: str, base: float, *, sign: bool = False) -> str:
    """Base units in natural ones, with the unit: ``12.5 cores``, ``-224 GiB``, ``+4 units``."""
    value = base * natural_per_base(resource)
    text = f"{value:+.4g}" if sign else f"{value:.4g}"
    return f"{text} {_unit(resource)}"


def _pct(part: float, whole: float) -> str:
    return f"{100 * part / whole:+.0f}%" if whole else "new"


def _money(value: float, *, sign: bool = False) -> str:
    return f"{value:+.4f}/h" if sign else f"{value:.4f}/h"


def _names(items: list[str], limit: int = 8) -> str:
    shown = ", ".join(items[:limit])
    return shown + (f" and {len(items) - limit} more" if len(items) > limit else "")


def _demand(s: Result) -> int:
    return int(s["placedReplicas"] + s["unplacedReplicas"])


def _readings(baseline: Result, s: Result, d: Result) -> list[tuple[str, str]]:
    """What a scenario means, as ``(kind, sentence)``; ``kind`` is ``loss``, ``gain`` or ``info``."""
    out: list[tuple[str, str]] = []
    cap = {r: v for r, v in d["capacity"].items() if v}
    changes = ", ".join(f"{r} {_amount(r, v, sign=True)} ({_pct(v, baseline['capacity'].get(r, 0))})"
                        for r, v in cap.items())
    if d["removedClusters"]:
        out.append(("loss", f"Capacity lost: {len(d['removedClusters'])} cluster(s) removed "
                            f"({_names(d['removedClusters'])}); {changes or 'no listed capacity'}."))
    elif d["addedClusters"] and cap:
        out.append(("gain", f"Capacity added: {len(d['addedClusters'])} cluster(s) "
                            f"({_names(d['addedClusters'])}); {changes}."))
    elif cap:
        kind = "loss" if all(v < 0 for v in cap.values()) else "info"
        out.append((kind, f"Capacity changes: {changes}."))
    if d["removedClusters"] and d["addedClusters"]:
        out.append(("gain", f"Clusters added: {_names(d['addedClusters'])}."))
    more = int(d["unplacedReplicas"])
    demand, was_demand = _demand(s), _demand(baseline)
    if demand != was_demand:
        why = (": a Duplicated workload asks for a copy on each eligible cluster, and the clusters changed"
               if d["removedClusters"] or d["addedClusters"] else "")
        out.append(("info", f"Demand: {demand} replicas asked for ({demand - was_demand:+d} against the baseline"
                            f"{why})."))
    newly = d["newlyUnplaced"]
    if more > 0 or newly:
        top = max((u["priority"] for u in newly), default=None)
        who = (f"; {len(newly)} workload(s) become unplaced: "
               f"{_names([u['workload'] for u in newly])} (highest priority {top})") if newly else ""
        out.append(("loss", f"Demand left unplaced: {s['unplacedReplicas']} replicas ({more:+d}){who}."))
    if d.get("newlyNotApplied"):
        kept = d["newlyNotApplied"]
        out.append(("loss", f"{len(kept)} running workload(s) keep their current replicas because the change does "
                            f"not fit ({sum(u['replicas'] for u in kept)} replicas short, counted as unplaced): "
                            f"{_names([u['workload'] for u in kept])}."))
    if more < 0:
        out.append(("gain", f"{-more} more replicas placed than in the baseline"
                            + (f": {_names([u['workload'] for u in d['newlyPlaced']])}." if d["newlyPlaced"] else ".")))
    cost = d["cost"]
    if cost < 0 and (more > 0 or demand < was_demand):
        why = f"{more} more replicas are left unplaced" if more > 0 else "less is asked for"
        out.append(("loss", f"Cost {_money(cost, sign=True)} is not a saving: it falls because {why}."))
    elif cost:
        out.append(("info", f"Cost {_money(cost, sign=True)} ({_pct(cost, baseline['cost'])}), "
                            f"now {_money(s['cost'])}."))
    else:
        out.append(("info", "Cost unchanged."))
    if s["movedReplicas"] or s["stoppedReplicas"]:
        out.append(("info", f"{s['movedReplicas']} replicas move to another cluster; {s['stoppedReplicas']} running "
                            "replicas stop because their workload is no longer placed."))
    else:
        out.append(("info", "No running replica moves or stops."))
    if s["solver"] != "Optimal":
        out.append(("info", f"The solver ended {s['solver']} (time limit): a longer --time-limit may place more "
                            "or cost less."))
    return out


# --- figures --------------------------------------------------------------------------------------


def _pyplot() -> Any:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def _util_figure(path: Path, title: str, baseline: Result, summary: Result, delta: Result) -> None:
    plt = _pyplot()
    names = sorted(set(baseline["utilisation"]) | set(summary["utilisation"]))
    resources = sorted({r for s in (baseline, summary) for u in s["utilisation"].values() for r in u})
    removed, added = set(delta["removedClusters"]), set(delta["addedClusters"])
    width = max(7.0, 0.3 * len(names) + 2)
    fig, axes = plt.subplots(len(resources), 1, figsize=(width, 1.9 * len(resources) + 1.6), sharex=True,
                             squeeze=False)
    xs = list(range(len(names)))
    for ax, r in zip(axes[:, 0], resources, strict=True):
        before = [100 * baseline["utilisation"].get(n, {}).get(r, 0.0) for n in names]
        after = [100 * summary["utilisation"].get(n, {}).get(r, 0.0) for n in names]
        ax.bar([x - 0.2 for x in xs], before, width=0.4, label="baseline", color="tab:blue")
        ax.bar([x + 0.2 for x in xs], after, width=0.4, label=title, color="tab:orange")
        for x, n in enumerate(names):
            if n in removed:
                ax.axvspan(x - 0.5, x + 0.5, color="tab:red", alpha=0.12, lw=0)
            elif n in added:
                ax.axvspan(x - 0.5, x + 0.5, color="tab:green", alpha=0.12, lw=0)
        ax.set_ylabel(f"{r} %", fontsize=8)
        ax.set_ylim(0, 105)
        ax.tick_params(axis="y", labelsize=7)
    top = axes[0, 0]
    top.set_title(f"Utilisation (requests / capacity) per cluster: baseline vs {title}\n"
                  "red band: cluster removed, green band: cluster added", fontsize=9, loc="left")
    top.legend(fontsize=7, loc="lower right", bbox_to_anchor=(1.0, 1.0), ncol=2, frameon=False)
    bottom = axes[-1, 0]
    bottom.set_xticks(xs)
    labels = [f"{n} (removed)" if n in removed else f"{n} (added)" if n in added else n for n in names]
    bottom.set_xticklabels(labels, rotation=60, ha="right", fontsize=7)
    for tick, n in zip(bottom.get_xticklabels(), names, strict=True):
        if n in removed:
            tick.set_color("tab:red")
        elif n in added:
            tick.set_color("tab:green")
    fig.tight_layout()
    fig.savefig(path, dpi=90)
    plt.close(fig)


def _sweep_figure(path: Path, title: str, parameter: str, baseline: Result, points: list[Result]) -> None:
    plt = _pyplot()
    ok = [p for p in points if "summary" in p]
    xs = [float(p["value"]) for p in ok]
    labels = [f"{x:g}" for x in xs]
    pos = list(range(len(xs)))
    fig, (ax, ax2) = plt.subplots(2, 1, figsize=(7, 5.5), sharex=True, height_ratios=[1, 1.2])
    ax.plot(pos, [p["summary"]["cost"] for p in ok], marker="o", color="tab:blue")
    ax.axhline(baseline["cost"], color="grey", ls=":", lw=1, label="baseline cost")
    ax.set_ylabel("cost per hour")
    ax.legend(fontsize=7)
    ax.set_title(f"sweep {title}: cost per hour (top) and the replicas behind it (bottom)", fontsize=9)
    placed = [p["summary"]["placedReplicas"] for p in ok]
    unplaced = [p["summary"]["unplacedReplicas"] for p in ok]
    ax2.bar(pos, placed, color="tab:green", label="replicas placed")
    ax2.bar(pos, unplaced, bottom=placed, color="tab:red", label="replicas left unplaced")
    for x, (a, b) in enumerate(zip(placed, unplaced, strict=True)):
        if b:
            ax2.text(x, a + b, f"{b} unplaced", ha="center", va="bottom", fontsize=7, color="tab:red")
    ax2.set_ylabel("replicas (demand)")
    ax2.set_xticks(pos)
    ax2.set_xticklabels(labels)
    ax2.set_xlabel(parameter)
    ax2.legend(fontsize=7, loc="upper left")
    ax2.margins(y=0.15)
    fig.tight_layout()
    fig.savefig(path, dpi=90)
    plt.close(fig)


# --- the view the templates render -----------------------------------------------------------------


def _clusters_cell(s: Result, d: Result | None) -> str:
    text = str(s["clusters"])
    if d is not None and (d["removedClusters"] or d["addedClusters"]):
        text += f" ({-len(d['removedClusters']):+d} removed, {len(d['addedClusters']):+d} added)".replace(
            " (+0 removed, ", " (").replace(", +0 added)", ")")
    return text


def _overview_row(name: str, s: Result, d: Result | None) -> dict[str, Any]:
    def delta(value: float, fmt: str = "{:+g}") -> str:
        return "" if d is None else f" ({fmt.format(value)})"

    return {
        "name": name,
        "solver": s["solver"],
        "clusters": _clusters_cell(s, d),
        "demand": str(_demand(s)),
        "placed": str(s["placedReplicas"]),
        "unplaced": f"{s['unplacedReplicas']}" + delta(d["unplacedReplicas"] if d else 0),
        "cost": _money(s["cost"]) + ("" if d is None else f" ({_money(d['cost'], sign=True)})"),
        "moved": str(s["movedReplicas"]),
        "stopped": str(s["stoppedReplicas"]),
        "latency": f"{s['latency']:g}",
        "worse": d is not None and d["unplacedReplicas"] > 0,
    }


def _capacity_rows(baseline: Result, s: Result) -> list[list[str]]:
    rows = []
    for r in sorted({*baseline["capacity"], *s["capacity"]}):
        before, after = baseline["capacity"].get(r, 0), s["capacity"].get(r, 0)
        used = s["requested"].get(r, 0)
        rows.append([r, _amount(r, before), _amount(r, after), _amount(r, after - before, sign=True),
                     _pct(after - before, before), f"{100 * used / after:.0f}%" if after else "-"])
    return rows


def _priority_rows(baseline: Result, s: Result) -> list[list[str]]:
    keys = sorted({*baseline["unplacedReplicasByPriority"], *s["unplacedReplicasByPriority"],
                   *baseline["placedReplicasByPriority"], *s["placedReplicasByPriority"]}, key=int, reverse=True)
    rows = []
    for k in keys:
        placed = s["placedReplicasByPriority"].get(k, 0)
        before = baseline["unplacedReplicasByPriority"].get(k, 0)
        after = s["unplacedReplicasByPriority"].get(k, 0)
        rows.append([k, str(placed), str(before), str(after), f"{after - before:+d}"])
    return rows


def _unplaced_rows(items: list[Result]) -> list[list[str]]:
    return [[u["workload"], str(u["priority"]), str(u["replicas"]), u["reason"], u["message"]] for u in items]


def _kept(d: Result) -> list[Result]:
    """Running workloads whose change does not fit, as rows of the unplaced table (their shortfall)."""
    return [{**u, "workload": f"{u['workload']} (keeps {u['keptReplicas']}, wants {u['wantedReplicas']})",
             "reason": f"ChangeNotApplied: {u['reason']}"} for u in d.get("newlyNotApplied", [])]


def _region_tables(baseline: Result, results: list[Result]) -> list[dict[str, Any]]:
    entries = [("baseline", baseline), *[(r["name"], r["summary"]) for r in results if "summary" in r]]
    regions = sorted({g for _, s in entries for g in s["regionUtilisation"]})
    resources = sorted({r for _, s in entries for u in s["regionCapacity"].values() for r in u})
    tables = []
    for res in resources:
        rows = []
        for name, s in entries:
            cells = []
            for g in regions:
                cap = s["regionCapacity"].get(g)
                if cap is None:
                    cells.append("removed" if g in baseline["regionCapacity"] else "-")
                elif res not in cap:
                    cells.append("-")
                else:
                    cells.append(f"{100 * s['regionUtilisation'][g].get(res, 0.0):.0f}% of {_amount(res, cap[res])}")
            rows.append([name, *cells])
        tables.append({"resource": res, "head": ["scenario", *regions], "rows": rows})
    return tables


def _parameter(name: str) -> str:
    m = re.search(r"\[([^=\]]+)=", name)
    return m.group(1) if m else "value"


def write_report(folder: Path, baseline: Result, results: list[Result], *, title: str = "Berth what-if report",
                 sweeps: dict[str, list[Result]] | None = None) -> list[Path]:
    """Write the report files into ``folder``; returns the paths written (md, html, then figures).

    Args:
        baseline: :func:`engine.scenario.summarize` of the baseline plan.
        results: one entry per scenario point (``summary`` or ``error``).
        sweeps: scenario name -> its points, for the sweep tables and plots.
    """
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    sweeps = sweeps or {}
    swept = {r["name"] for pts in sweeps.values() for r in pts}
    figures: list[Path] = []
    overview = [_overview_row("baseline", baseline, None)]
    scenarios = []
    for r in results:
        if "summary" not in r:
            continue
        s = r["summary"]
        d = compare(baseline, s)
        overview.append(_overview_row(r["name"], s, d))
        if r["name"] in swept:
            continue
        figure = folder / f"utilisation-{_slug(r['name'])}.png"
        _util_figure(figure, r["name"], baseline, s, d)
        figures.append(figure)
        scenarios.append({
            "name": r["name"], "anchor": _slug(r["name"]), "notes": s.get("notes", []),
            "readings": _readings(baseline, s, d), "capacity": _capacity_rows(baseline, s),
            "priorities": _priority_rows(baseline, s), "newly_unplaced": _unplaced_rows(d["newlyUnplaced"] + _kept(d)),
            "newly_placed": _unplaced_rows(d["newlyPlaced"]), "figure": figure.name,
        })
    sweep_views = []
    for name, pts in sweeps.items():
        ok = [p for p in pts if "summary" in p]
        if not ok:
            continue
        parameter = _parameter(ok[0]["name"])
        figure = folder / f"sweep-{_slug(name)}.png"
        _sweep_figure(figure, name, parameter, baseline, pts)
        figures.append(figure)
        rows = []
        for p in ok:
            s = p["summary"]
            d = compare(baseline, s)
            newly = [u["workload"] for u in d["newlyUnplaced"]]
            rows.append({"cells": [f"{float(p['value']):g}", str(_demand(s)), str(s["placedReplicas"]),
                                   f"{s['unplacedReplicas']} ({d['unplacedReplicas']:+g})", _money(s["cost"]),
                                   _money(d["cost"], sign=True), str(s["movedReplicas"]), str(s["stoppedReplicas"]),
                                   _names(newly) or "-"],
                         "worse": d["unplacedReplicas"] > 0})
        sweep_views.append({"name": name, "anchor": _slug(name), "parameter": parameter, "rows": rows,
                            "figure": figure.name, "notes": ok[-1]["summary"].get("notes", [])})
    view = {
        "title": title, "baseline": baseline, "baseline_demand": _demand(baseline),
        "baseline_unplaced": _unplaced_rows(baseline["unplacedList"]),
        "overview": overview, "scenarios": scenarios, "sweeps": sweep_views,
        "regions": _region_tables(baseline, results), "failed": [r for r in results if "error" in r],
        "resources": ", ".join(f"{r} ({_unit(r)})" for r in baseline["capacity"]),
    }
    written = []
    for name, escape in (("report.md", False), ("report.html", True)):
        env = Environment(loader=FileSystemLoader(TEMPLATES), autoescape=escape, undefined=StrictUndefined,
                          trim_blocks=True, lstrip_blocks=True, keep_trailing_newline=True)
        env.filters["md"] = _md_cell
        (folder / name).write_text(env.get_template(f"{name}.j2").render(view), encoding="utf-8")
        written.append(folder / name)
    return [*written, *figures]


def _md_cell(value: object) -> str:
    """A Markdown table cell: ``|`` escaped, line breaks as spaces."""
    return str(value).replace("|", "\\|").replace("\n", " ")
