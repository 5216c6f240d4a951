"""The pure core: ``plan = place(bundle, current=None, options)``.

Nothing here opens a socket, a file or a repository; the clock only enforces the limit and stamps ``createdAt``.
"""

from __future__ import annotations

from collections.abc import Collection
from datetime import UTC, datetime
from typing import Protocol

import numpy as np

from engine.build import build_problem
from engine.documents.bundle import Bundle
from engine.documents.kinds import ObjectiveWeights
from engine.errors import SolveError
from engine.explain import explain_unplaced
from engine.keep import keepable, with_replicas
from engine.lazy import load_now
from engine.objective import evaluate, placed_workloads
from engine.plan import (
    NotApplied,
    Placement,
    Plan,
    PlanMetadata,
    PlanStatus,
    Reason,
    Unplaced,
    diff_moves,
)
from engine.problem import Problem
from engine.solvers.bound import LP_SECONDS_PER_PAIR, PROVE_PAIRS, prove_weighted, weighted_constant
from engine.solvers.dispatch import choose, solve_problem
from engine.solvers.pinned import solve_around
from engine.solvers.progress import ProgressCallback
from engine.solvers.solution import Deadline, Solution
from engine.verification import Violation
from engine.verification import verify as check
from policies import registry as concerns
from policies import replica_shape

__all__ = ["Solver", "place", "plan_from_solution"]


class Solver(Protocol):
    """What solves a built problem for :func:`place`: ``solve_problem``'s signature."""

    def __call__(self, problem: Problem, *, deadline: Deadline, hint_y: np.ndarray | None,
                 freeze_current: bool, on_progress: ProgressCallback | None) -> Solution: ...


def _forced_moves(p: Problem) -> int:
    """Running replicas that cannot stay where they run: their pair is gone or holds fewer."""
    if not len(p.current_w):
        return int(p.fixed_moves)
    room = np.zeros(len(p.current_n), dtype=np.int64)
    if p.num_pairs:  # no eligible pair at all: nothing can stay
        idx = p.pair_index(p.current_w, p.current_c)
        room = np.where(idx >= 0, p.pair_ub[np.maximum(idx, 0)], 0)
    return int(p.fixed_moves + np.maximum(p.current_n - room, 0).sum())


def plan_from_solution(
    problem: Problem,
    solution: Solution,
    *,
    input_digest: str,
    current: dict[str, dict[str, int]] | None = None,
    now: datetime | None = None,
    warnings: list[str] | None = None,
    not_applied: list[NotApplied] | None = None,
    deadline: Deadline | None = None,
    explained: dict[int, list[Reason]] | None = None,
) -> Plan:
    """Turn a solution into the plan of spec section 5, with explanations.

    ``not_applied``: running workloads kept where they run (spec 4); listed when still placed.
    ``deadline``: when the explanations' exact "would it fit" solves give way to arithmetic
    (without one, 20 s from now: callers outside :func:`place`); ``explained``: the reasons of
    the unplaced workloads when the caller has them already.
    """
    p = problem
    y = solution.y
    values = evaluate(p, y)
    placements: list[Placement] = []
    if solution.status != "Infeasible":
        # only the pairs that carry replicas, in pair order (workload, then cluster): one pass
        on = np.nonzero(y)[0]
        ws, cs, ns = p.pair_w[on].tolist(), p.pair_c[on].tolist(), y[on].tolist()
        names = p.cluster_names
        i = 0
        while i < len(ws):
            w, clusters = ws[i], {}
            while i < len(ws) and ws[i] == w:
                clusters[names[cs[i]]] = int(ns[i])
                i += 1
            placements.append(Placement(workload=p.workload_keys[w], clusters=clusters))
    unplaced: list[Unplaced] = []
    if solution.status == "Infeasible":
        budget = p.max_moves
        forced = _forced_moves(p)
        why = (f"at least {forced} replica(s) must leave the clusters they run on (the cluster left the "
               "fleet, or they are no longer eligible or do not fit there)" if forced else
               "every plan that satisfies the hard constraints moves more replicas")
        for w in range(p.num_workloads):
            unplaced.append(Unplaced(workload=p.workload_keys[w], reasons=[Reason(
                code="MovesBudget", message=f"no plan keeps within maxMoves {budget}: {why}",
            )]))
    else:
        if explained is None:
            explained = explain_unplaced(p, y, solution.status, deadline=deadline or Deadline(20.0))
        for w, reasons in sorted(explained.items()):
            unplaced.append(Unplaced(workload=p.workload_keys[w], reasons=reasons))
    assignment = {pl.workload: pl.clusters for pl in placements}
    moves = diff_moves(current or {}, assignment) if current else []
    last = solution.levels[-1] if solution.levels else None
    # the weighted level's bound holds over every plan with the same replicas per priority and tier
    # (spec 5); the one at the plan's own choice of workloads is reported apart. Both leave out the
    # constant moves that no plan can change: added back here
    constant = weighted_constant(p)
    weighted_bound = last.bound if last is not None and last.name == "weighted" else None
    bound, gap = _bound_and_gap(values.weighted, weighted_bound, constant)
    at_bound, at_gap = _bound_and_gap(values.weighted, solution.bound_at_placement, constant)
    status = PlanStatus(
        solver=solution.status,
        solve_seconds=round(solution.seconds, 3),
        objective=values,
        bound=bound,
        gap=gap,
        bound_at_placement=at_bound,
        gap_at_placement=at_gap,
        levels=[
            {"level": lv.name, "value": round(lv.value, 6),
             "bound": None if not np.isfinite(lv.bound) else round(lv.bound, 6),
             "proved": lv.proved, "seconds": round(lv.seconds, 3)}
            for lv in solution.levels
        ],
        warnings=[*p.notes, *solution.notes, *(warnings or [])],
    )
    stamp = (now or datetime.now(UTC)).strftime("%Y-%m-%dT%H:%M:%SZ")
    return Plan(
        metadata=PlanMetadata(input_digest=input_digest, created_at=stamp),
        status=status,
        placements=placements,
        unplaced=unplaced,
        not_applied=[n for n in not_applied or [] if n.workload in assignment],
        moves=moves,
    )


def _bound_and_gap(weighted: float, level_bound: float | None, constant: float) -> tuple[float | None, float | None]:
    """A level bound (``None`` or NaN: none proved) in the plan's units, and the gap to it."""
    if level_bound is None or not np.isfinite(level_bound):
        return None, None
    bound = round(level_bound + constant, 6)
    gap = round(abs(weighted - bound) / max(abs(weighted), 1e-9), 6)
    return bound, 0.0 if gap < 1e-6 else gap


def _hint_from_current(p: Problem) -> np.ndarray | None:
    if not len(p.current_w):
        return None
    y = np.zeros(p.num_pairs, dtype=np.int64)
    idx = p.pair_index(p.current_w, p.current_c)
    ok = idx >= 0
    y[idx[ok]] = np.minimum(p.current_n[ok], p.pair_ub[idx[ok]])
    return y


#: LP rounds (of :data:`~engine.solvers.bound.LP_SECONDS_PER_PAIR` each) the large path's bound proof gets at
#: least, within 40% of what is left after the build
PROOF_ROUNDS = 1.6


def _budget(problem: Problem, deadline: Deadline) -> tuple[Deadline, Deadline]:
    """The deadlines of the phases of :func:`place`: (solve, explanations and bound proof).

    Called right after the build. What follows the explanations and the bound proof
    (verifying the plan, assembling it again) reads the same documents the build read, so it
    keeps 80% of what the build took (at 2,000 x 300 the two took 0.7 s against a 1.4-2.1 s
    build), plus 5% of the limit (a last column-generation round may end a little after its
    deadline). Of the rest the solve gets 80% on the large path, whose bound proof gets the
    other 20% (at most 5 s: at 30% the solve had 4.2 s of 10 and its plans were dearer), or at
    least :data:`PROOF_ROUNDS` LP rounds up to 40% (without one round the plan's bound is the weak
    one without an LP), and 90% otherwise (the explanations of unplaced workloads the other 10%, at
    most 5 s). A phase that ends early leaves its time to the next.
    """
    tail = 0.8 * deadline.elapsed() + 0.05 * deadline.total
    avail = max(deadline.remaining() - tail, 0.0)
    if choose(problem) != "large":
        after = min(0.1 * avail, 5.0)
    else:
        after = 0.2 * avail
        if problem.num_pairs <= PROVE_PAIRS:
            # the bound over every plan gets 3/4 of the proof, and below one LP round of time it reports
            # only the bound without an LP: once the solve used all of its 80% (the large path's last
            # layout rounds), 2,000 x 300 at 85% load reported 574.6 for a plan of 833.9 (811 with 2.5 s)
            need = PROOF_ROUNDS * LP_SECONDS_PER_PAIR * problem.num_pairs / 0.75
            after = max(after, min(need, 0.4 * avail))
        after = min(after, 5.0)
    return deadline.before(tail + after), deadline.before(tail)


def place(
    bundle: Bundle,
    *,
    current: dict[str, dict[str, int]] | None = None,
    time_limit: float = 10.0,
    weights: ObjectiveWeights | None = None,
    max_moves: int | None = None,
    now: datetime | None = None,
    warnings: list[str] | None = None,
    verify: bool = True,
    freeze_current: bool = False,
    deadline: Deadline | None = None,
    on_progress: ProgressCallback | None = None,
    frozen: Collection[str] = (),
    solver: Solver | None = None,
) -> Plan:
    """Place every workload of ``bundle``; the plan is verified before it is returned.

    The whole call (build, solve, bound proof, explanations, verification) ends within
    ``time_limit`` seconds, or by ``deadline`` when the caller made one (a command that does
    more before or after): one clock from which every phase draws (:func:`_budget`).

    ``freeze_current`` (with ``max_moves=0``): what runs today stays exactly as it is, even where
    the order of section 3 would add to it; the service's committed placements.

    ``frozen`` (with ``current``): these running workloads stay exactly where they run and the
    others are solved around them, within ``max_moves`` (failover re-places only what a lost
    cluster held). Their current placement must be valid by itself; one that is no longer
    eligible where it runs is solved like the rest.
    ``on_progress`` is called as the solver advances (:class:`engine.solvers.progress.Progress`).
    ``solver`` solves the problem instead of :func:`engine.solvers.dispatch.solve_problem`, with
    the same arguments (:func:`engine.decompose.solve_decomposed`: in parts, on Dask).

    Raises:
        SolveError: the plan failed independent verification (a bug, never input).
    """
    load_now()  # the solver's modules, before the clock: the limit is for building and solving
    deadline = deadline if deadline is not None else Deadline(time_limit)
    problem = build_problem(bundle, current=current, weights=weights, max_moves=max_moves)
    solve_by, report_by = _budget(problem, deadline)
    held = _frozen_replicas(problem, frozen) if current and frozen else None
    if held is not None:
        # holding the frozen workloads is failover's choice, not a rule of every plan: no bound from it
        solution = solve_around(problem, held, solve_by, solve=solve_problem, bound_holds=False)
    else:
        solution = (solver or solve_problem)(problem, deadline=solve_by, hint_y=_hint_from_current(problem),
                                             freeze_current=freeze_current, on_progress=on_progress)
    not_applied: list[NotApplied] = []
    if current and held is None:
        problem, solution, not_applied = _keep_running(
            bundle, problem, solution, current=current, weights=weights, max_moves=max_moves,
            solve_by=solve_by, explain_by=report_by.slice(0.5))
    # explanations first (usually none, or quick), at most half of what is left for both ...
    explained = (explain_unplaced(problem, solution.y, solution.status, deadline=report_by.slice(0.5))
                 if solution.status != "Infeasible" else None)
    # ... then, when the solve proved none (the large path), a bound over every plan with the same
    # replicas per priority and tier, and one at the plan's own choice of workloads
    solution = prove_weighted(problem, solution, deadline=report_by)
    plan = plan_from_solution(
        problem, solution, input_digest=bundle.digest(), current=current, now=now,
        warnings=warnings, not_applied=not_applied, explained=explained,
    )
    if verify and plan.status.solver in ("Optimal", "Feasible"):
        plan = _verified(bundle, problem, solution, plan, current=current, now=now, warnings=warnings,
                         deadline=deadline)
    return plan


def _frozen_replicas(p: Problem, frozen: Collection[str]) -> np.ndarray | None:
    """Replicas per pair of the ``frozen`` workloads where they run, or ``None`` when none can be held."""
    index = {k: i for i, k in enumerate(p.workload_keys)}
    chosen = np.isin(p.current_w, [index[k] for k in frozen if k in index])
    if not chosen.any() or not p.num_pairs:
        return None
    at = p.pair_index(p.current_w, p.current_c)
    # a workload with any replica where it may no longer run (or no longer so many) is not held
    over = (at < 0) | (p.current_n > p.pair_ub[np.maximum(at, 0)])
    lost = np.union1d(p.current_w[chosen & over], np.nonzero(p.current_gone > 0)[0])
    chosen &= ~np.isin(p.current_w, lost) & (at >= 0)
    if not chosen.any():
        return None
    held = np.zeros(p.num_pairs, dtype=np.int64)
    np.add.at(held, at[chosen], p.current_n[chosen])
    return held


def _keep_running(
    bundle: Bundle,
    problem: Problem,
    solution: Solution,
    *,
    current: dict[str, dict[str, int]],
    weights: ObjectiveWeights | None,
    max_moves: int | None,
    solve_by: Deadline,
    explain_by: Deadline,
) -> tuple[Problem, Solution, list[NotApplied]]:
    """Spec 4: running workloads whose change does not fit stay where they run (:mod:`engine.keep`).

    Returns the problem (kept workloads at their kept replicas), its solution, and the
    ``notApplied`` entries; the inputs unchanged when nothing is kept.
    """
    first_problem, first = problem, solution
    probe = solution
    if solution.status == "Infeasible" and problem.max_moves is not None:
        # which running workloads do not fit, whatever the budget: keeping them may make it feasible
        loose = build_problem(bundle, current=current, weights=weights)
        probe = solve_problem(loose, deadline=solve_by.slice(0.5).at_least(0.5), hint_y=_hint_from_current(loose))
    y = probe.y
    kept: dict[str, int] = {}
    for _ in range(5):  # the kept set only grows; a few rounds reach the fixpoint in practice
        p = problem
        placed = placed_workloads(p, y)
        running = [w for w in range(p.num_workloads)
                   if p.current_total[w] > 0 and not placed[w] and p.workload_keys[w] not in kept]
        grown = False
        for w in sorted(running, key=lambda w: -int(p.priority[w])):
            key = p.workload_keys[w]
            count = replica_shape.kept_count(p, w, current.get(key, {}))
            if count is not None and keepable(bundle, p, y, kept, key, count, current):
                kept[key] = count
                grown = True
        if not grown:
            break
        problem = build_problem(with_replicas(bundle, kept), current=current, weights=weights, max_moves=max_moves)
        fixed = np.zeros(problem.num_pairs, dtype=np.int64)
        index = {k: i for i, k in enumerate(problem.workload_keys)}
        is_kept = np.isin(problem.current_w, [index[k] for k in kept])
        at = problem.pair_index(problem.current_w[is_kept], problem.current_c[is_kept])
        if (at < 0).any():  # the verifier accepted what the model cannot hold: keep nothing (safe side)
            return first_problem, first, []
        fixed[at] = problem.current_n[is_kept]
        solution = solve_around(problem, fixed, solve_by.slice(0.5).at_least(0.5), solve=solve_problem)
        y = solution.y
    if not kept:
        return first_problem, first, []
    first_y = first.y if first.status != "Infeasible" else probe.y
    explained = explain_unplaced(first_problem if first.status != "Infeasible" else build_problem(
        bundle, current=current, weights=weights), first_y, "Feasible", deadline=explain_by)
    out: list[NotApplied] = []
    for key, count in kept.items():
        w = first_problem.workload_keys.index(key)
        wanted = int(first_problem.replicas[w])
        change = Reason(code="ChangeNotApplied", message=(
            f"runs {count} replica(s){' per copy' if first_problem.duplicated[w] else ''} today and keeps them "
            f"where they run: the new spec ({wanted} replica(s)) cannot be placed"))
        out.append(NotApplied(workload=key, reasons=[change, *explained.get(w, [])],
                              kept_replicas=count, wanted_replicas=wanted))
    solution.notes = [*first.notes, *solution.notes]  # how the first solve went still holds
    return problem, solution, out


def _verified(
    bundle: Bundle,
    problem: Problem,
    solution: Solution,
    plan: Plan,
    *,
    current: dict[str, dict[str, int]] | None,
    now: datetime | None,
    warnings: list[str] | None,
    deadline: Deadline,
) -> Plan:
    """The plan, with every workload whose placement fails the verifier left unplaced (spec 7).

    A bug that concerns one workload never fails the whole fleet: the workloads a violation names
    (and, for a capacity or quota sum, the lowest-priority contributors one at a time), plus
    every workload that follows a dropped one by affinity, are left unplaced with code
    ``InternalError`` and the violation; the rest is re-verified. The plan says so in a warning.

    Raises:
        SolveError: violations that no workload can be blamed for (the moves budget).
    """
    p = problem
    y = solution.y.copy()
    why: dict[int, str] = {}
    index = {k: i for i, k in enumerate(p.workload_keys)}
    for _ in range(p.num_workloads + 1):
        violations = check(bundle, plan, current=current, max_moves=p.max_moves)
        if not violations:
            break
        blamed = _blame(p, y, violations, index)
        if not blamed and {v.code for v in violations} == {"MovesBudget"}:
            # no plan of this engine keeps within the budget: Infeasible, never written to git
            infeasible = Solution(np.zeros(p.num_pairs, dtype=np.int64), "Infeasible", solution.seconds, [],
                                  notes=solution.notes)
            plan = plan_from_solution(p, infeasible, input_digest=bundle.digest(), current=current, now=now,
                                      warnings=warnings)
            plan.status.warnings.append(f"the engine's plan failed the moves budget on verification: {violations[0]}")
            return plan
        if not blamed:
            lines = "; ".join(v.message for v in violations[:5])
            raise SolveError(f"the engine produced a plan that fails verification (a bug): {lines}")
        # followers by affinity of a dropped workload cannot stay either
        todo = list(blamed)
        while todo:
            v = todo.pop()
            for a in concerns.dependents(p, v):
                if a not in blamed and y[p.pairs_of(a)].any():
                    blamed[a] = f"follows {p.workload_keys[v]} by affinity, which failed verification"
                    todo.append(a)
        for w, message in blamed.items():
            y[p.pairs_of(w)] = 0
            why.setdefault(w, message)
        dropped = Solution(y, "Feasible", solution.seconds, [], notes=solution.notes)
        plan = plan_from_solution(p, dropped, input_digest=bundle.digest(), current=current, now=now,
                                  warnings=warnings, not_applied=plan.not_applied, deadline=deadline)
        for u in plan.unplaced:
            w = index[u.workload]
            if w in why:
                u.reasons = [Reason(code="InternalError", message=f"the engine's plan for it failed verification "
                                                                  f"(a bug, please report it): {why[w]}")]
    else:  # pragma: no cover - every round drops at least one placed workload
        raise SolveError("the engine could not produce a plan that passes verification")
    if why:
        names = ", ".join(p.workload_keys[w] for w in sorted(why))
        plan.status.warnings.append(
            f"{len(why)} workload(s) left unplaced because the engine's plan for them failed verification "
            f"(InternalError, a bug): {names}; the rest is planned and verified"
        )
    return plan


def _blame(p: Problem, y: np.ndarray, violations: list[Violation], index: dict[str, int]) -> dict[int, str]:
    """The placed workloads to drop for ``violations``: those named, else the lowest-priority
    contributor of a capacity (per cluster) or quota (per tenant) sum."""
    blamed: dict[int, str] = {}
    placed = placed_workloads(p, y)
    for v in violations:
        w = index.get(v.workload) if v.workload else None
        if w is not None and placed[w]:
            blamed.setdefault(w, str(v))
            continue
        if v.code == "Capacity" and v.cluster in p.cluster_names:
            c = p.cluster_names.index(v.cluster)
            on = np.unique(p.pair_w[(p.pair_c == c) & (y > 0)])
        elif v.code == "Quota":
            tenant = v.message.split(":")[0].removeprefix("tenant ").strip()
            mine = [w for w in range(p.num_workloads) if p.workload_keys[w].split("/")[0] == tenant]
            on = np.array([w for w in mine if placed[w]], dtype=np.int64)
        else:
            continue
        on = np.array([w for w in on.tolist() if w not in blamed], dtype=np.int64)
        if len(on):
            w = int(on[np.lexsort((-on, p.priority[on]))][0])  # lowest priority, last declared
            blamed[w] = str(v)
    return blamed
