"""The FastAPI application: ``create_app(config)``; served by ``berth serve``."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager

from fastapi import FastAPI, Request, Response

from adapters.api.bodies import YamlBodies
from adapters.api.config import ServiceConfig
from adapters.api.idempotency import Idempotency
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

    @app.middleware("http")
    async def observe(request: Request, call_next: Callable[[Request], Awaitable[Response]]) -> Response:
        started = time.perf_counter()
        response = await call_next(request)
        route = request.scope.get("route")
        path = getattr(route, "path", "unmatched")
        service.metrics.requests.labels(request.method, path, str(response.status_code)).observe(
            time.perf_counter() - started)
        return response

    app.add_middleware(YamlBodies)  # YAML bodies reach the routes as JSON
    app.add_middleware(Idempotency)  # a retried POST gets the first answer
    app.add_middleware(BodyLimit, limit=config.limits.max_request_bytes)
    app.add_middleware(QueryTokenGuard, digests=[t.sha256 for t in config.tokens])  # outermost: first
    return app
