"""What runs is never dropped by a change that does not fit (spec section 4).

A workload that runs today and ends unplaced after a solve (its new spec asks for more
replicas, a new constraint or a smaller quota that do not fit) is *kept*: it stays where it
runs, at its current replicas, when that current placement still satisfies section 2 with
``replicas`` taken as the current count. Kept workloads are constants (like the pinned path's
committed ones, :mod:`engine.solvers.pinned`); the rest of the fleet is solved again around them, and
the kept set grows to a fixpoint. Strategy-independent: any strategy solves the rest.

Priority still preempts (section 3.1, "a lower-priority workload never displaces a higher-priority
one"): a running workload is kept only where it fits next to the placements of strictly higher
priority; what a higher priority needs is not a change of its own (README, "Decisions").

Only a cluster that left the fleet, a ``NoExecute`` taint, or capacity or quota that the current
replicas themselves no longer fit remove replicas that run: those current placements fail the
check below, and the workload stays unplaced.
"""

from __future__ import annotations

from dataclasses import replace

import numpy as np

from engine.documents.bundle import Bundle
from engine.problem import Problem
from engine.verification import verify
from policies import registry as concerns

__all__ = ["keepable", "with_replicas"]


def with_replicas(bundle: Bundle, replicas: dict[str, int]) -> Bundle:
    """A copy of ``bundle`` where the workloads of ``replicas`` ask for those counts."""
    workloads = [
        w.model_copy(update={"spec": w.spec.model_copy(update={"replicas": replicas[w.key]})})
        if w.key in replicas else w
        for w in bundle.workloads
    ]
    return replace(bundle, workloads=workloads)


def keepable(
    bundle: Bundle,
    problem: Problem,
    y: np.ndarray,
    kept: dict[str, int],
    key: str,
    count: int,
    current: dict[str, dict[str, int]],
) -> bool:
    """Whether ``key`` can be kept at ``count`` replicas where it runs, next to the other kept
    workloads and the placements in ``y`` of strictly higher priority (the verifier decides)."""
    p = problem
    trial = {**kept, key: count}
    w = p.workload_keys.index(key)
    if any(p.workload_keys[v] not in trial for v in concerns.depends_on(p, w)):
        return False  # a partner that is solved again could leave: keep followers of kept partners only
    placements = [{"workload": k, "clusters": dict(current[k])} for k in trial]
    for v in np.nonzero(p.priority > p.priority[w])[0].tolist():
        k = p.workload_keys[v]
        sl = p.pairs_of(v)
        on = {p.cluster_names[c]: int(n) for c, n in zip(p.pair_c[sl].tolist(), y[sl].tolist(), strict=True) if n}
        if on and k not in trial:
            placements.append({"workload": k, "clusters": on})
    named = {pl["workload"] for pl in placements}
    plan = {"placements": placements,
            "unplaced": [{"workload": k, "reasons": []} for k in p.workload_keys if k not in named]}
    # no moves budget here: the workloads left out count as removed; the final plan is checked in full
    violations = verify(replace(with_replicas(bundle, trial), objective=None), plan, current=current)
    # affinity of a higher-priority placement to a workload left out here is not this one's problem
    return not [v for v in violations if v.workload is None or v.workload in trial]
