"""Benchmark runner: Berth against the greedy baseline on the same instances.

``python -m benchmarks.run [--quick] [--write README]``

Every (instance, solver) runs in its own subprocess, end to end: load the
bundle (JSON written by :mod:`benchmarks.generate`), build the problem, solve,
turn it into a plan (explanations included), verify it with
:func:`engine.verification.verify`, write the plan JSON. Peak memory is that
subprocess's peak resident memory (``VmHWM``), so every run has its own peak.
The LP relaxation (:mod:`engine.solvers.bound`) is solved in the parent for the
placement reference (most replicas per priority). Two references for the weighted cost of
each plan, given far more time than the plan's own proof: :func:`engine.bound_over_plans`,
the LP minimum over **every** plan with the same replicas per priority and tier (an LP over
all workloads; the reference of spec 5's ``status.bound``), and :func:`engine.cost_bound_at`,
the LP minimum at the plan's own choice of workloads (``status.boundAtPlacement``).
Then an incremental benchmark places single workloads into a fleet that
already holds many placed ones (the service's fast path, beside the exact pinned
path), and :mod:`benchmarks.service_load` drives a real ``berth serve`` at fleet
scale over HTTP.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from benchmarks.generate import Instance

FULL = [
    Instance("edge-2000x300", "edge", 2000, 300, 0.85, seed=1),
    Instance("edge-2000x300-l95", "edge", 2000, 300, 0.95, seed=2),
    Instance("cloud-2000x40", "cloud", 2000, 40, 0.9, seed=3),
    Instance("edge-2000x300-l90", "edge", 2000, 300, 0.9, seed=12),
    Instance("cloud-2000x300-l95", "cloud", 2000, 300, 0.95, seed=6),
    Instance("edge-10000x1000", "edge", 10000, 1000, 0.8, seed=4),
    # issue 15's fleet: the edge generator's whole feature mix at one priority, at three loads, on seeds
    # no tuning used (so which workloads stay out is a cost choice, and the two bounds differ)
    Instance("mix-2000x300-l60", "edge", 2000, 300, 0.6, seed=61, single_priority=True),
    Instance("mix-2000x300-l85", "edge", 2000, 300, 0.85, seed=62, single_priority=True),
    Instance("mix-2000x300-l95", "edge", 2000, 300, 0.95, seed=63, single_priority=True),
    # the same mix where everything fits (quotas that never bind, load 0.6): issue 15's cost target, weighted
    # cost within 1% of the LP minimum over all plans placing everything, is measured here
    Instance("fits-2000x300-l60", "edge", 2000, 300, 0.6, seed=64, single_priority=True, quota_slack=1.5),
]
#: past one machine (issue 15): a national fleet, solved in parts on a local Dask cluster of 2 worker
#: processes (``berth place --dask``) and, beside it, the same command on one machine; no LP, bound or
#: greedy runs (the LP alone would not finish), each run bounded by NATIONAL_LIMIT
NATIONAL = [Instance("national-50000x5000", "national", 50_000, 5_000, 0.8, seed=21)]
NATIONAL_LIMIT = 120.0
QUICK = [
    Instance("edge-60x16", "edge", 60, 16, 0.9, seed=1),
    Instance("cloud-40x8", "cloud", 40, 8, 0.9, seed=2),
]
#: time limits other than ``--time-limit``: issue 15's target at 10,000 x 1,000 is a verified plan
#: with a bound within 30 s end to end with ``--time-limit 25`` (at 10 s the construction alone
#: would take the whole limit)
TIME_LIMITS = {"edge-10000x1000": 25.0}
#: seconds for each reference bound of a plan (converged at 2,000 x 300 in 15-40 s on 2 shared cores;
#: at 10,000 x 1,000 the best Lagrangian bound by then: 300 s each made ``make bench`` too long)
REFERENCE_S = 90.0
#: the bound columns of the first table: the plan's own two (spec 5), then the two references
BOUND_COLUMNS = ("plan_bound", "plan_bound_at", "bound_all", "bound")
#: instances with more workloads than this get bare "unplaced" entries (no explanations)
EXPLAIN_MAX = 2000


def _bare_plan(problem, solution):
    """The plan without explanations (they cost seconds per unplaced workload at this size)."""
    from engine import Placement, Plan, PlanMetadata, PlanStatus, Reason, Unplaced, evaluate

    p, y = problem, solution.y
    placements, unplaced = [], []
    starts = np.searchsorted(p.pair_w, np.arange(p.num_workloads + 1))
    for w in range(p.num_workloads):
        lo, hi = int(starts[w]), int(starts[w + 1])
        on = np.nonzero(y[lo:hi])[0]
        if len(on):
            placements.append(Placement(workload=p.workload_keys[w], clusters={
                p.cluster_names[int(p.pair_c[lo + i])]: int(y[lo + i]) for i in on.tolist()}))
        else:
            unplaced.append(Unplaced(workload=p.workload_keys[w], reasons=[Reason(
                code="NotExplained", message="explanations skipped by the benchmark runner")]))
    status = PlanStatus(solver=solution.status, solve_seconds=solution.seconds, objective=evaluate(p, y))
    return Plan(metadata=PlanMetadata(input_digest="benchmark", created_at="1970-01-01T00:00:00Z"),
                status=status, placements=placements, unplaced=unplaced)


def _child(solver: str, bundle_path: str, out_path: str, time_limit: float) -> None:
    # wall time starts before the engine is imported: loading the code is part of end to end,
    # not of the solve (a service imports it once)
    t0 = time.monotonic()
    from benchmarks.greedy import greedy
    from engine import build_problem, load_bundle, place, plan_from_solution, verify

    bundle = load_bundle([bundle_path])
    t1 = time.monotonic()
    workers_mb = None
    if solver == "berth-dask":
        # the same place(), its problem cut into parts solved on a LocalCluster of 2 worker processes,
        # one clock from before the cluster starts to after it stops: like `berth place --dask`
        from adapters.distributed import dask_solver
        from engine import Deadline, load_now

        load_now()
        t1 = time.monotonic()
        clock = Deadline(time_limit)
        with dask_solver(workers=2) as parts:
            plan = place(bundle, deadline=clock, solver=parts)
            workers_mb = parts.workers_peak_mb()
        t2 = time.monotonic()
        solve_s, bound_s, plan_s = plan.status.solve_seconds, 0.0, t2 - t1 - plan.status.solve_seconds
    elif solver == "berth":
        # the product's own place(): build, solve, bound proof, explanations and its verification,
        # all within ``time_limit`` (one deadline), exactly as `berth place` runs it
        plan = place(bundle, time_limit=time_limit)
        t2 = time.monotonic()
        bound_s = next((lv["seconds"] for lv in plan.status.levels
                        if lv["level"] == "weighted" and not lv["proved"] and plan.status.solver == "Feasible"), 0.0)
        solve_s, plan_s = plan.status.solve_seconds, t2 - t1 - plan.status.solve_seconds - bound_s
    else:
        problem = build_problem(bundle)
        t_built = time.monotonic()
        solution = greedy(problem)
        solve_s, bound_s = time.monotonic() - t_built, 0.0
        plan = plan_from_solution(problem, solution, input_digest=bundle.digest()) \
            if problem.num_workloads <= EXPLAIN_MAX else _bare_plan(problem, solution)
        t2 = time.monotonic()
        plan_s = t2 - t1 - solve_s
    violations = verify(bundle, plan)  # once more, independently of the product's own check
    t3 = time.monotonic()
    Path(out_path + ".plan.json").write_text(plan.model_dump_json(by_alias=True))
    t4 = time.monotonic()
    if solver == "greedy":
        build_s = t_built - t1
    else:  # place() builds inside its limit: the same build once more, after the run (not in its wall)
        build_problem(bundle)
        build_s = time.monotonic() - t4
    values = plan.status.objective
    result = {
        "solver": solver, "status": plan.status.solver,
        "load_s": t1 - t0, "build_s": build_s, "solve_s": solve_s, "bound_s": bound_s, "plan_s": plan_s,
        "verify_s": t3 - t2, "write_s": t4 - t3, "plan_gap": plan.status.gap, "plan_bound": plan.status.bound,
        "plan_bound_at": plan.status.bound_at_placement, "plan_gap_at": plan.status.gap_at_placement,
        "wall_s": t4 - t0, "violations": [str(v) for v in violations[:5]], "n_violations": len(violations),
        "placed": values.placed_by_priority, "tier": values.tier, "weighted": values.weighted,
        "maxrss_mb": _peak_mb(), "workers_mb": workers_mb,
        "assignment": plan.assignment(),
    }
    Path(out_path).write_text(json.dumps(result))


def _replicas(problem, assignment: dict[str, dict[str, int]]) -> np.ndarray:  # type: ignore[no-untyped-def]
    """Replicas per pair of ``problem`` for a plan's assignment (``{workload: {cluster: n}}``)."""
    p = problem
    y = np.zeros(p.num_pairs, dtype=np.int64)
    w_index = {k: i for i, k in enumerate(p.workload_keys)}
    c_index = {k: i for i, k in enumerate(p.cluster_names)}
    rows = [(w_index[k], c_index[c], n) for k, spread in assignment.items() for c, n in spread.items() if n]
    if rows:
        w, c, n = (np.array(col, dtype=np.int64) for col in zip(*rows, strict=True))
        y[p.pair_index(w, c)] = n
    return y


def _peak_mb() -> float:
    """Peak resident memory of this process, in MB.

    ``VmHWM`` belongs to the process's own address space, which ``exec`` starts
    afresh; ``ru_maxrss`` is inherited from the parent across fork and exec on
    Linux, so a child of a big parent would report the parent's peak.
    """
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def run_solver(solver: str, bundle_path: Path, workdir: Path, time_limit: float) -> dict:
    out = workdir / f"{bundle_path.stem}.{solver}.json"
    subprocess.run(
        [sys.executable, "-m", "benchmarks.run", "--child", solver, str(bundle_path), str(out),
         "--time-limit", str(time_limit)],
        check=True, cwd=Path(__file__).resolve().parent.parent,
    )
    return json.loads(out.read_text())


def _lex_key(r: dict) -> tuple:
    prios = sorted(r["placed"], key=int, reverse=True)
    return (*[r["placed"][k] for k in prios], -r["tier"], -r["weighted"])


def bench_instance(inst: Instance, workdir: Path, time_limit: float, *, with_lp: bool = True) -> dict:
    from engine import Deadline, bound_over_plans, build_problem, cost_bound_at, load_bundle, solve_lp

    path = workdir / f"{inst.name}.json"
    path.write_text(json.dumps(inst.documents()))
    results = {s: run_solver(s, path, workdir, time_limit) for s in ("berth", "greedy")}
    row = {"instance": inst.name, "workloads": inst.workloads, "clusters": inst.clusters, "load": inst.load,
           "time_limit": time_limit, "results": results}
    bundle = load_bundle([path])
    problem = build_problem(bundle)
    for r in results.values():
        r["pairs"] = problem.num_pairs
        r["y"] = _replicas(problem, r.pop("assignment"))
    if with_lp:
        lp = solve_lp(problem, time_limit=60.0)
        row["lp"] = {"placed": lp.placed, "status": lp.status, "seconds": lp.seconds}
        row["top"] = top_priority_bound(problem)
    for r in results.values():
        # the LP minimum of the weighted cost over every plan with this plan's replicas per priority and
        # tier (all workloads), and at this plan's placement (same replicas per workload); where column
        # generation does not converge in the time given, the best Lagrangian bound so far (valid)
        if r["solver"] == "berth":  # greedy's plan carries no bound; its LP at placement stays beside it
            r["bound_all"] = bound_over_plans(problem, r["y"], deadline=Deadline(REFERENCE_S))
        r["bound"] = cost_bound_at(problem, r["y"], deadline=Deadline(REFERENCE_S))
    # like for like: a plan that places more pays for what it adds (section 3 asks for it), so the
    # totals cover different sets; Berth is also run on exactly the workloads greedy placed
    greedy_y = results["greedy"]["y"]
    row["same_workloads"] = same_workloads(bundle, problem, greedy_y, time_limit)
    for r in results.values():
        r.pop("y", None)
    return row


def same_workloads(bundle, problem, greedy_y: np.ndarray, time_limit: float) -> dict:  # type: ignore[no-untyped-def]
    """Berth solving the instance cut down to the workloads greedy placed: cost on equal work.

    Section 3 ranks every replica above any cost, so on the full instance Berth
    places more and pays for it, and the totals cover different sets. Given
    exactly the workloads greedy managed to place (everything else the same),
    both solvers have the same job: place them all, then tiers, then cost. The
    cut-down plan is a plan of the full instance too (the others unplaced), and
    ``engine.verification`` checks it there.
    """
    from dataclasses import replace

    from engine import evaluate, restrict, solve_problem, verify

    p = problem
    keep = np.bincount(p.pair_w, weights=greedy_y, minlength=p.num_workloads) > 0
    sub = restrict(p, keep)
    t = time.monotonic()
    solution = solve_problem(sub, time_limit=time_limit)
    seconds = time.monotonic() - t
    full_y = np.zeros(p.num_pairs, dtype=np.int64)
    full_y[keep[p.pair_w]] = solution.y  # restrict keeps the pairs of kept workloads in order
    violations = verify(bundle, _bare_plan(p, replace(solution, y=full_y)))
    berth, greedy = evaluate(p, full_y), evaluate(p, greedy_y)
    return {"placed": berth.placed_by_priority, "tier": berth.tier, "weighted": berth.weighted,
            "solve_s": seconds, "n_violations": len(violations), "greedy_placed": greedy.placed_by_priority,
            "greedy_tier": greedy.tier, "greedy_weighted": greedy.weighted}


def top_priority_bound(problem, time_limit: float = 60.0) -> dict | None:  # type: ignore[no-untyped-def]
    """CP-SAT's bound on the replicas any plan places at the highest priority.

    The level is solved alone: lower priorities and co-location links to them
    left out, which only relaxes it, so the bound holds for the full problem.
    The LP relaxes all-or-nothing, affinity and counts instead, and can be
    several percent looser; the table reports the better of the two.
    """
    from engine import LARGE_PAIRS, restrict, solve_problem

    top = int(problem.priority.max())
    sub = restrict(problem, problem.priority == top)
    if sub.num_pairs > LARGE_PAIRS:
        return None
    level = solve_problem(sub, time_limit=time_limit).levels[0]
    bound = level.value if level.proved else level.bound
    if not np.isfinite(bound):
        return None
    return {"priority": str(top), "bound": float(bound), "proved": level.proved}


def bench_incremental(n_clusters: int, n_committed: int, calls: int, workdir: Path, pinned: int = 3) -> dict:
    """Place ``calls`` single workloads, one call each, into a fleet holding ``n_committed`` placed ones.

    The product's fast path as the service runs it (:class:`engine.FastPlacer` on :class:`engine.WarmFleet`,
    each placed workload then taken into the warm state); a workload it does not claim (linked to another,
    or one it cannot place) counts as answered by the pinned path, which is not timed here. Then the first
    ``pinned`` of the same calls on the exact pinned path (``engine.place`` of the whole fleet, ``maxMoves: 0``,
    what is committed frozen), in the same run.
    """
    from engine import (
        Bundle,
        Deadline,
        FastPlacer,
        WarmFleet,
        build_problem,
        fast_reason,
        load_documents,
        place,
        restrict,
        solve_large,
    )

    inst = Instance("incremental", "edge", n_committed + calls, n_clusters, 0.8, seed=5)
    bundle = load_documents(inst.documents())
    problem = build_problem(bundle)
    first = np.zeros(problem.num_workloads, dtype=bool)
    first[:n_committed] = True
    base = solve_large(restrict(problem, first), Deadline(10.0))
    sub = restrict(problem, first)
    committed: dict[str, dict[str, int]] = {}
    for p_, c, n in zip(sub.pair_w.tolist(), sub.pair_c.tolist(), base.y.tolist(), strict=True):
        if n:
            committed.setdefault(sub.workload_keys[p_], {})[sub.cluster_names[c]] = int(n)
    workloads = {w.key: w for w in bundle.workloads}
    policies = {f"{p.metadata.namespace}/{p.metadata.name}": p for p in bundle.policies}
    fleet = Bundle(clusters=bundle.clusters, sites=bundle.sites, tenants=bundle.tenants, objective=bundle.objective)
    t0 = time.monotonic()
    warm = WarmFleet.build(fleet, committed, workloads, policies)
    placer = FastPlacer(warm)
    setup = time.monotonic() - t0
    times, placed = [], 0
    new = [w for w in bundle.workloads[n_committed:n_committed + calls]]
    for w in new:
        pol = policies.get(f"{w.metadata.namespace}/{w.spec.policy}") if w.spec.policy else None
        t = time.perf_counter()
        answer = placer.place([w], [pol], deadline=Deadline(10.0)) if fast_reason(w, pol, warm) is None else None
        if answer is not None:
            warm.add(w.key, answer[0].assignment()[w.key], w, pol)  # accepted: the next call sees it
        times.append(time.perf_counter() - t)
        placed += answer is not None
    ms = np.array(times) * 1000
    slow = []
    kept = {k: workloads[k] for k in committed}
    # the service's whole-fleet bundle: what is committed, its policies without names of workloads it does not hold
    pruned = []
    for pol in bundle.policies:
        spec = pol.spec.model_copy()
        for term in ("affinity", "anti_affinity"):
            t = getattr(spec, term)
            if t is not None:
                spec = spec.model_copy(update={term: t.model_copy(update={"workloads": [
                    n for n in t.workloads if f"{pol.metadata.namespace}/{n}" in kept]})})
        pruned.append(pol.model_copy(update={"spec": spec}))
    plain = [w for w in new if fast_reason(w, policies.get(f"{w.metadata.namespace}/{w.spec.policy}")
                                           if w.spec.policy else None, warm) is None]
    for w in plain[:pinned]:
        whole = Bundle(clusters=bundle.clusters, sites=bundle.sites, tenants=bundle.tenants,
                       workloads=[*kept.values(), w], policies=pruned, objective=bundle.objective)
        t = time.perf_counter()
        place(whole, current=committed, max_moves=0, freeze_current=True, time_limit=120.0)
        slow.append(time.perf_counter() - t)
    return {"clusters": n_clusters, "committed": n_committed, "calls": calls, "placed": placed,
            "setup_s": setup, "p50_ms": float(np.percentile(ms, 50)), "p99_ms": float(np.percentile(ms, 99)),
            "max_ms": float(ms.max()), "pinned_calls": len(slow),
            "pinned_p50_ms": float(np.percentile(np.array(slow) * 1000, 50)) if slow else float("nan")}


def bench_service(quick: bool, workdir: Path) -> dict | None:
    """``benchmarks/service_load.py --fleet-scale`` in its own process: a real ``berth serve`` over HTTP."""
    out = workdir / "service.json"
    size = (["--clusters", "20", "--committed", "100", "--requests", "20", "--today", "1", "--sustained", "40",
             "--commits", "20", "--threads", "4"] if quick else
            ["--clusters", "1000", "--committed", "10000", "--requests", "200", "--today", "2", "--sustained", "1000",
             "--commits", "500", "--threads", "8"])
    done = subprocess.run([sys.executable, "-m", "benchmarks.service_load", "--fleet-scale", *size, "--json", str(out)],
                          capture_output=True, text=True)
    if done.returncode != 0:
        print(f"service benchmark failed: {done.stderr[-2000:]}", file=sys.stderr)
        return None
    return json.loads(out.read_text())


def bench_national(inst: Instance, workdir: Path, time_limit: float) -> dict:
    """The national fleet in parts on Dask and on one machine: the two child runs, nothing else."""
    path = workdir / f"{inst.name}.json"
    path.write_text(json.dumps(inst.documents()))
    results = {}
    for solver in ("berth-dask", "berth"):
        r = run_solver(solver, path, workdir, time_limit)
        r.pop("assignment", None)
        results[solver] = r
    return {"instance": inst.name, "time_limit": time_limit, "results": results}


def national_table(rows: list[dict]) -> str:
    lines = ["| instance | run | limit s | solve s | wall s | peak MB (main + Dask workers) | placed by priority "
             "(high→low) | weighted | bound in plan (gap) | bound at placement in plan (gap) | valid |",
             "|---|---|---|---|---|---|---|---|---|---|---|"]
    for row in rows:
        for name, r in row["results"].items():
            peak = f"{r['maxrss_mb']:.0f}" + (f" + {r['workers_mb']:.0f}" if r.get("workers_mb") else "")
            lines.append(
                f"| {row['instance']} | {'2 Dask workers' if name == 'berth-dask' else 'one machine'} | "
                f"{row['time_limit']:.0f} | {r['solve_s']:.2f} | {r['wall_s']:.2f} | {peak} | "
                f"{_fmt_placed(r['placed'])} | {r['weighted']:.2f} | {_with_gap(r.get('plan_bound'), r['weighted'])} | "
                f"{_with_gap(r.get('plan_bound_at'), r['weighted'])} | "
                f"{'yes' if r['n_violations'] == 0 else 'NO ' + str(r['n_violations'])} |")
    return "\n".join(lines)


def _fmt_placed(placed: dict) -> str:
    return "/".join(str(placed[k]) for k in sorted(placed, key=int, reverse=True))


def table(rows: list[dict], inc: dict | None, service: dict | None = None) -> str:
    lines = [
        "| instance | pairs | solver | limit s | import + load + build s | solve s | wall s | peak MB | "
        "placed by priority (high→low) | LP placed | weighted | plan's bound, all plans (gap) | "
        "plan's bound at placement (gap) | LP over all plans (gap) | LP at placement (gap) | valid |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for row in rows:
        lp = row.get("lp")
        lp_placed = "/".join(f"{v:.0f}" for v in lp["placed"].values()) if lp else "n/a"
        for name in ("berth", "greedy"):
            r = row["results"][name]
            lines.append(
                f"| {row['instance']} | {r['pairs']} | {name} | "
                f"{row['time_limit']:.0f} | {r['load_s'] + r.get('build_s', float('nan')):.2f} | "
                f"{r['solve_s']:.2f} | {r['wall_s']:.2f} | "
                f"{r['maxrss_mb']:.0f} | {_fmt_placed(r['placed'])} | {lp_placed} | {r['weighted']:.2f} | "
                + " | ".join(_with_gap(r.get(k), r["weighted"]) for k in BOUND_COLUMNS) + " | "
                f"{'yes' if r['n_violations'] == 0 else 'NO ' + str(r['n_violations'])} |"
            )
    lines += ["", "| instance | placed Berth/LP (per priority) | top priority: Berth / CP-SAT bound | "
              "placed Berth/greedy (per priority) | better in section 3 order | weighted Berth/greedy (totals) | "
              "weighted on greedy's workloads Berth/greedy | solve time Berth/greedy |",
              "|---|---|---|---|---|---|---|---|"]
    for row in rows:
        b, g = row["results"]["berth"], row["results"]["greedy"]
        prios = sorted(b["placed"], key=int, reverse=True)
        ratios = "/".join(f"{b['placed'][k] / max(g['placed'][k], 1):.3f}" for k in prios)
        lp = row.get("lp")
        vs_lp = "n/a"
        if lp:
            vs_lp = "/".join(f"{b['placed'][k] / max(lp['placed'][f'priority:{k}'], 1):.3f}" for k in prios)
        top = row.get("top")
        vs_top = "n/a"
        if top:
            vs_top = f"{b['placed'][top['priority']]} / {top['bound']:.0f}{' (proved)' if top['proved'] else ''}"

        better = "yes" if _lex_key(b) > _lex_key(g) else ("equal" if _lex_key(b) == _lex_key(g) else "NO")
        lines.append(f"| {row['instance']} | {vs_lp} | {vs_top} | {ratios} | {better} | "
                     f"{b['weighted'] / max(g['weighted'], 1e-9):.3f} | {_same_ratio(row.get('same_workloads'))} | "
                     f"{b['solve_s'] / max(g['solve_s'], 1e-9):.2f} |")
    if inc:
        lines += ["", "| incremental (engine) | clusters | committed | calls | placed by the fast path | setup s | "
                      "p50 ms | p99 ms | max ms | pinned path p50 ms (calls) |",
                  "|---|---|---|---|---|---|---|---|---|---|",
                  f"| single workload | {inc['clusters']} | {inc['committed']} | {inc['calls']} | {inc['placed']} | "
                  f"{inc['setup_s']:.2f} | {inc['p50_ms']:.2f} | {inc['p99_ms']:.2f} | {inc['max_ms']:.2f} | "
                  f"{inc['pinned_p50_ms']:.0f} ({inc['pinned_calls']}) |"]
    if service:
        lines += ["", service_table(service)]
    return "\n".join(lines)


def _with_gap(bound: float | None, weighted: float) -> str:
    """A bound and the plan's gap to it, ``(weighted - bound) / weighted``."""
    if bound is None:
        return "n/a"
    gap = (weighted - bound) / max(abs(weighted), 1e-9)
    return f"{bound:.2f} ({max(gap, 0.0) if gap > -1e-6 else gap:.1%})"  # no "-0.0%" from rounding


def service_table(s: dict) -> str:
    """The service at fleet scale (``benchmarks/service_load.py --fleet-scale``): fast path beside the pinned path."""
    e, h = s["engine"], s["http"]
    groups = h.get("commit_groups", {})
    head = (f"| service ({s['clusters']} clusters, {s['committed']} committed) | engine p50 / p99 ms | "
            "HTTP dry run p50 ms | dry runs/s | commits/s | commit groups (mean / largest) |")
    return "\n".join([
        head, "|---|---|---|---|---|---|",
        f"| fast path | {e['fast']['p50_ms']:.2f} / {e['fast']['p99_ms']:.2f} | {h['dry_sequential']['p50_ms']:.1f} | "
        f"{h['dry_sustained']['per_s']:.0f} ({h['dry_sustained']['threads']} clients) | "
        f"{h['committed_sustained']['per_s']:.0f} | {groups.get('mean', float('nan')):.1f} / "
        f"{groups.get('largest', 'n/a')} |",
        f"| pinned path (whole fleet) | {e['today']['p50_ms']:.0f} / {e['today']['p99_ms']:.0f} | "
        f"{h['today_dry_sequential']['p50_ms']:.0f} | {h['today_dry_sequential']['per_s']:.2f} (1 client) | "
        f"{h['today_commit_sequential']['per_s']:.2f} (1 client) | 1 |",
    ])


def _same_ratio(same: dict | None) -> str:
    """Cost ratio on greedy's workloads, flagged when Berth did not place them all or used later tiers."""
    if not same:
        return "n/a"
    text = f"{same['weighted'] / max(same['greedy_weighted'], 1e-9):.3f}"
    short = [k for k in same["greedy_placed"] if same["placed"][k] < same["greedy_placed"][k]]
    if short:
        text += f" (Berth placed fewer at priority {'/'.join(short)})"
    elif same["tier"] != same["greedy_tier"]:
        text += f" (tiers {same['tier']} vs {same['greedy_tier']})"
    if same["n_violations"]:
        text += f" (INVALID: {same['n_violations']} violations)"
    return text


def machine() -> str:
    import ortools

    cpu = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    mem = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30
    return (f"{cpu}, {os.cpu_count()} cores, {mem:.0f} GiB RAM; Python {platform.python_version()}, "
            f"OR-Tools {ortools.__version__}, {platform.system()} {platform.release()}")


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m benchmarks.run")
    ap.add_argument("--quick", action="store_true", help="tiny instances (CI smoke)")
    ap.add_argument("--time-limit", type=float, default=10.0)
    ap.add_argument("--write", help="write the results into this markdown file (between markers)")
    ap.add_argument("--json", help="write raw results as JSON here")
    ap.add_argument("--only", help="comma-separated subset to run: instance names, 'incremental', 'national', "
                                   "'service' (default: all of the chosen list)")
    ap.add_argument("--child", nargs=3, metavar=("SOLVER", "BUNDLE", "OUT"), help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    if args.child:
        _child(*args.child, args.time_limit)
        return 0
    instances = QUICK if args.quick else FULL
    only = set(args.only.split(",")) if args.only else None
    if only is not None:
        unknown = only - {i.name for i in instances} - {"incremental", "national", "service"}
        if unknown:
            ap.error(f"--only: unknown {', '.join(sorted(unknown))}; instances are "
                     f"{', '.join(i.name for i in instances)}")
        instances = [i for i in instances if i.name in only]

    def wanted(part: str) -> bool:
        return only is None or part in only

    with tempfile.TemporaryDirectory(prefix="berth-bench-") as tmp:
        rows = []
        for inst in instances:
            limit = args.time_limit if args.quick else TIME_LIMITS.get(inst.name, args.time_limit)
            rows.append(bench_instance(inst, Path(tmp), limit, with_lp=inst.workloads <= 2000))
            print(f"done {inst.name}", file=sys.stderr, flush=True)
        inc = (bench_incremental(*((20, 100, 50) if args.quick else (1000, 10000, 1000)), Path(tmp))
               if wanted("incremental") else None)
        national = ([] if args.quick or not wanted("national")
                    else [bench_national(inst, Path(tmp), NATIONAL_LIMIT) for inst in NATIONAL])
        service = bench_service(args.quick, Path(tmp)) if wanted("service") else None
    text = table(rows, inc, service)
    if national:
        text += "\n\n" + national_table(national)
    print(text)
    if args.json:
        Path(args.json).write_text(json.dumps({"rows": rows, "incremental": inc, "national": national,
                                               "service": service}, indent=1))
    if args.write:
        target = Path(args.write)
        old = target.read_text() if target.exists() else ""
        start, end = "<!-- results:start -->", "<!-- results:end -->"
        block = f"{start}\nMachine: {machine()}\n\n{text}\n{end}"
        new = old[: old.index(start)] + block + old[old.index(end) + len(end):] if start in old else old + block
        target.write_text(new)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
