"""The FastAPI application: ``create_app(config)``; served by ``berth serve``."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from adapters.api.bodies import YamlBodies
from adapters.api.config import ServiceConfig
from adapters.api.idempotency import Idempotency
from adapters.api.metrics import ServiceMetrics
from adapters.api.problems import BodyLimit, install_handlers
from adapters.api.redaction import QueryTokenGuard, install_log_redaction
from adapters.api.routes import events, fleet, health, placements, plans, whatif
from adapters.api.state import ServiceState

__all__ = ["create_app"]

DESCRIPTION = """Placement as a service for Berth: place workloads now against the warm fleet,
plan whole bundles, ask what-if questions. Every error is a JSON problem details object
(`type`, `title`, `status`, `detail`, `field`, and `errors`: every problem found, each with its
field). Send `Authorization: Bearer <token>`. Bodies may be JSON or YAML (`application/yaml`);
POST takes `Idempotency-Key`; lists take `limit` and `continue`; a placement has an `ETag`
(`If-Match` on PUT and DELETE); `GET /v1/placements?watch=true` streams changes (server-sent events)."""


class Observe:
    """``berth_http_request_seconds`` per method, route and status: a plain ASGI middleware (Starlette's
    ``BaseHTTPMiddleware`` costs a task group and two memory streams per request)."""

    def __init__(self, app: ASGIApp, metrics: ServiceMetrics) -> None:
        self.app, self.metrics = app, metrics

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        status = [500]

        async def sending(message: Message) -> None:
            if message["type"] == "http.response.start":
                status[0] = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, sending)
        finally:
            route = scope.get("route")
            self.metrics.requests.labels(scope["method"], getattr(route, "path", "unmatched"), str(status[0])).observe(
                time.perf_counter() - started)


def create_app(config: ServiceConfig, *, state: ServiceState | None = None) -> FastAPI:
    """Build the app; the state (bundle, current placement from git) is loaded here, eagerly.

    Raises:
        InputError: the bundle or the state file is invalid.
        SourceError: the GitOps repository cannot be read.
    """
    install_log_redaction()
    service = state or ServiceState(config)

    @asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        install_log_redaction()  # again: the server may have configured its loggers since create_app
        service.start()
        try:
            yield
        finally:
            service.stop()

    app = FastAPI(title="Berth", version="v1alpha1", description=DESCRIPTION, lifespan=lifespan,
                  docs_url="/docs", openapi_url="/openapi.json", redoc_url=None)
    app.state.berth = service
    install_handlers(app)
    for module in (placements, plans, fleet, whatif, events, health):
        app.include_router(module.router)

    app.add_middleware(Observe, metrics=service.metrics)  # innermost: the route is known once it ran
    app.add_middleware(YamlBodies)  # YAML bodies reach the routes as JSON
    app.add_middleware(Idempotency)  # a retried POST gets the first answer
    app.add_middleware(BodyLimit, limit=config.limits.max_request_bytes)
    app.add_middleware(QueryTokenGuard, digests=[t.sha256 for t in config.tokens])  # outermost: first
    return app
