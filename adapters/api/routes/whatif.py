"""``/v1/whatif``: scenarios against the committed state, solved in-process (admin only).

Large sweeps belong to ``berth whatif`` on Dask; here the number of scenario
points is capped so that one request cannot hold a worker for long.
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter

from adapters.api.deps import Admin, State
from adapters.api.problems import Problem
from adapters.api.schemas import WhatIfCreate, WhatIfPublic, check_documents
from adapters.api.state import objective_of
from engine import InputError, Scenario, compare, expand, parse_document, solve_scenario, summarize

router = APIRouter(prefix="/v1/whatif", tags=["whatif"])

MAX_POINTS = 12


@router.post("", response_model=WhatIfPublic, response_model_by_alias=True,
             summary="Compare scenarios with the committed placement",
             responses={403: {"description": "Needs an admin token"}, 422: {"description": "Invalid scenario"}})
def run_whatif(body: WhatIfCreate, state: State, caller: Admin) -> WhatIfPublic:
    points: list[tuple[str, Scenario, Any]] = []
    for i, raw in enumerate(body.scenarios):
        if not isinstance(raw, dict) or raw.get("kind") != "Scenario":
            raise InputError("expected kind 'Scenario'", field=f"scenarios[{i}].kind")
        try:
            doc = parse_document(raw, None, i)
        except InputError as exc:
            raise InputError(exc.detail, document=exc.document,
                             field=f"scenarios[{i}]" + (f".{exc.field}" if exc.field else "")) from None
        assert isinstance(doc, Scenario)
        check_documents([doc], "scenarios")
        points += expand(doc)
    if len(points) > MAX_POINTS:
        raise Problem(422, f"{len(points)} scenario points; the service runs at most {MAX_POINTS} "
                           "(use `berth whatif` on Dask for more)", field="scenarios")
    limits = state.config.limits
    time_limit = min(body.time_limit or limits.time_limit_seconds, limits.max_time_limit_seconds)
    snap = state.snap
    bundle = state.committed_bundle(snap)
    plan = state.committed_plan(bundle, snap.committed)
    current = dict(snap.committed)
    plan.status.objective = objective_of(bundle, plan.placements)
    baseline = summarize(bundle, plan)
    results: list[dict[str, Any]] = []
    for name, scenario, value in points:
        entry: dict[str, Any] = {"name": name, "value": value}
        try:
            summary = solve_scenario(bundle, scenario, current=current, time_limit=time_limit, baseline=plan)
        except InputError as exc:
            entry["error"] = str(exc)
        else:
            entry["summary"] = summary
            entry["delta"] = compare(baseline, summary)
        results.append(entry)
    return WhatIfPublic(baseline=baseline, scenarios=results)
