"""Errors as JSON problem details (RFC 9457): ``type``, ``title``, ``status``, ``detail``, ``field``, ``errors``.

``errors`` lists every problem found, each ``{field, detail}`` (RFC 9457 section 3.1's extension
member, as its example shows): a client fixes a request in one round trip, not one per field.
``field`` and ``detail`` repeat the first of them for clients that read only those.

Mapping: :class:`~engine.errors.InputError` and request validation -> 422,
:class:`Problem` raised by routes -> its status (401, 403, 404, 409, 413, ...),
:class:`~engine.errors.SourceError` -> 503, anything else -> 500 without
internals. Bodies never carry tokens or other tenants' names.
"""

from __future__ import annotations

import logging
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from engine import BerthError, InputError, Plan, SourceError, redact

__all__ = ["PROBLEM_TYPES", "BodyLimit", "Problem", "install_handlers", "problem_response", "refuse_infeasible"]

log = logging.getLogger("berth.api")

_BASE = "https://berth.dev/problems/"
#: status -> (type slug, title)
PROBLEM_TYPES: dict[int, tuple[str, str]] = {
    400: ("bad-request", "Bad request"),
    401: ("unauthenticated", "Missing or unknown bearer token"),
    403: ("forbidden", "Not allowed for this token"),
    404: ("not-found", "Not found"),
    405: ("method-not-allowed", "Method not allowed"),
    409: ("conflict", "Conflict"),
    410: ("expired", "Expired"),
    412: ("precondition-failed", "Precondition failed"),
    413: ("too-large", "Request too large"),
    415: ("unsupported-media-type", "Unsupported media type"),
    422: ("invalid-input", "Invalid input"),
    500: ("internal", "Internal error"),
    503: ("unavailable", "A live source or the GitOps repository is unavailable"),
}


class Problem(Exception):
    """Raised by routes; rendered as a problem details response."""

    def __init__(self, status: int, detail: str, *, field: str | None = None, title: str | None = None,
                 extra: dict[str, Any] | None = None, headers: dict[str, str] | None = None,
                 slug: str | None = None, errors: list[tuple[str | None, str]] | None = None) -> None:
        super().__init__(detail)
        self.errors = errors
        self.slug = slug
        self.status = status
        self.detail = detail
        self.field = field
        self.title = title
        self.extra = extra or {}
        self.headers = headers


def problem_response(status: int, detail: str, *, field: str | None = None, title: str | None = None,
                     extra: dict[str, Any] | None = None, headers: dict[str, str] | None = None,
                     slug: str | None = None, errors: list[tuple[str | None, str]] | None = None) -> JSONResponse:
    default_slug, default_title = PROBLEM_TYPES.get(status, ("error", "Error"))
    slug = slug or default_slug
    listed = errors if errors else [(field, detail)]
    body: dict[str, Any] = {"type": _BASE + slug, "title": title or default_title, "status": status,
                            "detail": redact(detail), "field": field,
                            "errors": [{"field": f, "detail": redact(d)} for f, d in listed]}
    body.update(extra or {})
    return JSONResponse(body, status_code=status, media_type="application/problem+json", headers=headers)


def _loc(loc: tuple[Any, ...]) -> str:
    parts = [p for p in loc if p != "body"] if loc and loc[0] == "body" else list(loc)
    text = ""
    for part in parts:
        text += f"[{part}]" if isinstance(part, int) else ("." if text else "") + str(part)
    return text


def install_handlers(app: FastAPI) -> None:
    """Route every error class to a problem details response."""

    @app.exception_handler(Problem)
    async def _problem(_: Request, exc: Problem) -> JSONResponse:
        return problem_response(exc.status, exc.detail, field=exc.field, title=exc.title, extra=exc.extra,
                                headers=exc.headers, slug=exc.slug, errors=exc.errors)

    @app.exception_handler(RequestValidationError)
    async def _validation(_: Request, exc: RequestValidationError) -> JSONResponse:
        errors = exc.errors() or [{"msg": "invalid request", "loc": ()}]
        listed = [(_loc(tuple(e.get("loc", ()))) or None, str(e.get("msg", "invalid")).removeprefix("Value error, "))
                  for e in errors]
        more = f" (and {len(errors) - 1} more problem(s), see errors)" if len(errors) > 1 else ""
        return problem_response(422, listed[0][1] + more, field=listed[0][0], errors=listed)

    @app.exception_handler(InputError)
    async def _input(_: Request, exc: InputError) -> JSONResponse:
        detail = f"{exc.document}: {exc.detail}" if exc.document else exc.detail
        return problem_response(422, detail, field=exc.field, errors=exc.errors)

    @app.exception_handler(SourceError)
    async def _source(_: Request, exc: SourceError) -> JSONResponse:
        return problem_response(503, str(exc))

    @app.exception_handler(BerthError)
    async def _berth(_: Request, exc: BerthError) -> JSONResponse:
        log.error("engine error: %s", exc)
        return problem_response(500, "the engine failed; see the server log")

    @app.exception_handler(StarletteHTTPException)
    async def _http(_: Request, exc: StarletteHTTPException) -> JSONResponse:
        detail = exc.detail if isinstance(exc.detail, str) else PROBLEM_TYPES.get(exc.status_code, ("", "Error"))[1]
        return problem_response(exc.status_code, detail, headers=getattr(exc, "headers", None))

    @app.exception_handler(OverflowError)
    async def _overflow(_: Request, exc: OverflowError) -> JSONResponse:
        # a number within the request limits that the solver still cannot hold: the input, not the service
        log.warning("overflow while solving: %s", exc)
        return problem_response(422, "a number in the request is too large to solve with; use smaller values",
                                field="documents")

    @app.exception_handler(Exception)
    async def _any(_: Request, exc: Exception) -> JSONResponse:
        log.exception("unhandled error")
        return problem_response(500, "unexpected error; see the server log")


def refuse_infeasible(plan: Plan, detail: str) -> None:
    """Spec section 5: an ``Infeasible`` plan is never served or committed: 409, type ``infeasible``."""
    if plan.status.solver == "Infeasible":
        raise Problem(409, detail, title="Infeasible", slug="infeasible", field="documents",
                      extra={"solver": "Infeasible", "warnings": list(plan.status.warnings)})


class BodyLimit:
    """ASGI middleware: refuse bodies over ``limit`` bytes with 413, declared or streamed."""

    def __init__(self, app: ASGIApp, limit: int) -> None:
        self.app = app
        self.limit = limit

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        for name, value in scope.get("headers", []):
            if name == b"content-length":
                try:
                    declared = int(value)
                except ValueError:
                    declared = self.limit + 1
                if declared > self.limit:
                    await self._reject(scope, receive, send)
                    return
        seen = 0

        async def limited() -> Message:
            nonlocal seen
            message = await receive()
            if message["type"] == "http.request":
                seen += len(message.get("body", b""))
                if seen > self.limit:
                    raise _TooLarge
            return message

        try:
            await self.app(scope, limited, send)
        except _TooLarge:
            await self._reject(scope, receive, send)

    async def _reject(self, scope: Scope, receive: Receive, send: Send) -> None:
        response = problem_response(413, f"the request body is over {self.limit} bytes")
        await response(scope, receive, send)


class _TooLarge(Exception):
    pass
