"""The independent verifier: does a plan satisfy every hard constraint?

This module re-reads section 2 of ``spec/placement-semantics.md`` and checks a
plan against the bundle's pydantic documents directly. By design it shares no
code with the model compiler (``engine.problem``, ``engine.solvers.model``,
``engine.solvers.exact``, ``policies``): selector matching, toleration matching,
eligibility and every sum are written again here, so that a bug in one is
caught by the other.

Decisions where the spec is silent (written down so both sides agree):

- ``pods`` counts replicas: each replica uses one pod, whatever the workload
  lists. It binds only on clusters that list ``pods`` (a cluster that does not
  list it has no pod limit; every other unlisted resource has capacity 0). A
  tenant quota on ``pods`` counts placed replicas (copies included).
- Quota counts ``replicas * request`` for Divided and
  ``replicas * copies * request`` for Duplicated, where ``copies`` is the
  number of clusters the plan gives the workload.
- Selectors match a cluster's effective labels (its labels plus
  ``topology.kubernetes.io/region|zone`` and ``placement.berth.dev/provider``).
  A field selector on a field the cluster does not set behaves as a missing
  label (``In``/``Exists``/``Gt``/``Lt`` fail, ``NotIn``/``DoesNotExist`` hold).
- A cluster without the spread label (or field) cannot host the workload: it
  is reported as ``SpreadUnlabelled``, and it is not eligible for a broadcast.
- The moves budget is ``max_moves`` when given, else the bundle's
  ``Objective.spec.maxMoves``; workloads of ``current`` that the bundle no
  longer declares are not counted (nobody can keep them).
- Per-cluster bounds apply to Duplicated workloads too (spec text: "where
  ``y[w,c] > 0``").
- The policy of a workload is chosen again here from ``docs/karmada.md``
  (``spec.policy``, else ``resourceSelectors`` and ``priority``), not by
  ``engine.documents.selection``.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from engine.documents.bundle import Bundle
from engine.plan import Plan
from engine.verification.fleet import (
    _check_anti_affinity,
    _check_capacity,
    _check_first_tier,
    _check_moves,
    _check_quota,
)
from engine.verification.matching import affinity_matches, label_selector_matches, tolerates
from engine.verification.reading import _Checker, _is_count, _read_kept, _read_plan
from engine.verification.violations import VIOLATION_CODES, Violation, codes
from engine.verification.workload import _check_kept, _check_workload

__all__ = [
    "VIOLATION_CODES",
    "Violation",
    "affinity_matches",
    "codes",
    "label_selector_matches",
    "tolerates",
    "verify",
]


def verify(
    bundle: Bundle,
    plan: Plan | Mapping[str, Any],
    *,
    current: Mapping[str, Mapping[str, int]] | None = None,
    max_moves: int | None = None,
) -> list[Violation]:
    """Check ``plan`` against every hard constraint of spec section 2.

    Args:
        bundle: the validated documents the plan was made for.
        plan: a :class:`~engine.plan.Plan` or its JSON as a dict (only
            ``placements`` and ``unplaced`` are read).
        current: what runs today, ``{workload: {cluster: replicas}}``; needed
            for the moves budget.
        max_moves: the moves budget; ``None`` takes ``Objective.spec.maxMoves``
            from the bundle (and no budget when that is unset too).

    Returns:
        Every violation found, in a stable order; an empty list means the plan
        satisfies section 2.

    Raises:
        InputError: ``plan`` is not shaped like a plan at all.
    """
    ck = _Checker(bundle)
    ck.current = current or {}
    placed_raw, unplaced_names = _read_plan(plan)
    _check_kept(ck, _read_kept(plan), dict(placed_raw), current)

    # -- the plan's own shape ------------------------------------------------------
    y: dict[str, dict[str, int]] = {}  # workload -> cluster -> replicas (> 0, integers)
    for key, clusters in placed_raw:
        if key not in ck.workloads:
            ck.add("UnknownWorkload", key, None, f"the bundle declares no Workload {key}")
            continue
        if key in y:
            ck.add("DuplicateEntry", key, None, "the workload has more than one placements entry")
        row = y.setdefault(key, {})
        for cname, n in clusters.items():
            if not _is_count(n) or n <= 0:
                ck.add("InvalidReplicas", key, cname, f"replicas must be an integer > 0, got {n!r}")
                continue
            if cname not in ck.clusters:
                ck.add("UnknownCluster", key, cname, f"the bundle declares no Cluster {cname}")
            row[cname] = row.get(cname, 0) + n
        if not clusters:
            ck.add("InvalidReplicas", key, None, "a placed workload has an empty clusters map")
    seen_unplaced: set[str] = set()
    for key in unplaced_names:
        if key not in ck.workloads:
            ck.add("UnknownWorkload", key, None, f"no Workload {key} in the bundle (unplaced)")
            continue
        if key in seen_unplaced:
            ck.add("DuplicateEntry", key, None, "the workload is listed as unplaced twice")
        seen_unplaced.add(key)
        if key in y:
            ck.add("PlacedAndUnplaced", key, None, "the workload is both placed and unplaced")
    for key in ck.workloads:
        if key not in y and key not in seen_unplaced:
            ck.add("MissingWorkload", key, None, "the plan neither places nor lists it as unplaced")
    y = {k: row for k, row in y.items() if row}

    for key, row in y.items():
        _check_workload(ck, ck.workloads[key], row, y)
    _check_capacity(ck, y)
    _check_first_tier(ck, y)
    _check_quota(ck, y)
    _check_anti_affinity(ck, y)
    _check_moves(ck, y, current, max_moves)
    return ck.out
