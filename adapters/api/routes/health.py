"""Liveness, readiness and Prometheus metrics (no token needed; the service binds 127.0.0.1)."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Response
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from adapters.api.deps import State
from adapters.api.problems import Problem
from adapters.api.state import stale_detail

router = APIRouter(tags=["health"])


@router.get("/healthz", summary="The process answers")
def healthz() -> dict[str, str]:
    return {"status": "ok"}


@router.get("/readyz", summary="Ready to place: state loaded and live inputs fresh enough",
            responses={503: {"description": "Live inputs are stale and the config says refuse"}})
def readyz(state: State) -> dict[str, Any]:
    info = state.freshness()
    if info["stale"] and state.config.live.on_stale == "refuse":
        raise Problem(503, stale_detail(info) + "; placements are refused until it is fresh",
                      extra={"freshness": info})
    return {"status": "ready", "fleet": info, "orphans": len(state.orphans), "recovered": state.recovered,
            "fastPath": state.fast.status}


@router.get("/metrics", summary="Prometheus metrics", response_class=Response)
def metrics(state: State) -> Response:
    state.freshness()
    return Response(generate_latest(state.metrics.registry), media_type=CONTENT_TYPE_LATEST)
