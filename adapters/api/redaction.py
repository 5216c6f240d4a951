"""Tokens and credentials never reach the logs: the service's half of :mod:`engine.redaction`.

- :class:`QueryTokenGuard` refuses (401) a request that carries a credential in
  its URL (``?token=...``, ``?access_token=...``, or any query value that *is* a
  configured token): the URL ends up in access logs and proxies. Tokens are
  read from the ``Authorization`` header only.
- :func:`install_log_redaction` filters the service's and uvicorn's loggers: the
  access log line keeps the path but not the query string (whatever it holds),
  and every other message and traceback has URL credentials redacted. Uvicorn's
  access log format has no headers, so ``Authorization`` is never written.
"""

from __future__ import annotations

import hmac
import logging
from collections.abc import Iterable
from urllib.parse import parse_qsl

from starlette.types import ASGIApp, Receive, Scope, Send

from adapters.api.config import hash_token
from adapters.api.problems import problem_response
from engine import redact

__all__ = ["QUERY_TOKEN_MESSAGE", "QueryTokenGuard", "RedactingFilter", "install_log_redaction"]

#: Query parameter names that mean a credential, whatever their value.
CREDENTIAL_PARAMS = frozenset({"token", "access_token", "accesstoken", "bearer", "auth", "authorization",
                               "api_key", "apikey", "api-key", "jwt", "password", "secret", "key"})
QUERY_TOKEN_MESSAGE = ("tokens are accepted only in the Authorization header (Authorization: Bearer <token>), "
                       "never in the URL, where access logs and proxies keep them; rotate a token sent this way")
LOGGERS = ("berth", "berth.api", "uvicorn", "uvicorn.error", "uvicorn.access")


class QueryTokenGuard:
    """ASGI middleware: 401 for a credential in the query string (checked before anything else)."""

    def __init__(self, app: ASGIApp, digests: Iterable[str]) -> None:
        self.app = app
        self.digests = tuple(digests)

    def _carries_token(self, query: bytes) -> bool:
        for name, value in parse_qsl(query.decode("latin-1"), keep_blank_values=True):
            if name.lower() in CREDENTIAL_PARAMS:
                return True
            digest = hash_token(value)
            if value and any(hmac.compare_digest(digest, d) for d in self.digests):
                return True
        return False

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and scope.get("query_string") and self._carries_token(scope["query_string"]):
            response = problem_response(401, QUERY_TOKEN_MESSAGE, headers={"WWW-Authenticate": 'Bearer realm="berth"'})
            await response(scope, receive, send)
            return
        await self.app(scope, receive, send)


class RedactingFilter(logging.Filter):
    """Drops query strings from access log lines; redacts URL credentials in every other record."""

    def filter(self, record: logging.LogRecord) -> bool:
        if record.name == "uvicorn.access" and isinstance(record.args, tuple) and len(record.args) >= 3:
            args = list(record.args)
            path = str(args[2])
            if "?" in path:
                args[2] = path.split("?", 1)[0] + "?<query not logged>"
            record.args = tuple(args)
            return True
        message = record.getMessage()
        cleaned = redact(message)
        if cleaned != message:
            record.msg, record.args = cleaned, ()
        if record.exc_info:
            text = logging.Formatter().formatException(record.exc_info)
            record.exc_text, record.exc_info = redact(text), None
        return True


def install_log_redaction() -> None:
    """Attach one :class:`RedactingFilter` to each logger the service writes through (idempotent)."""
    for name in LOGGERS:
        logger = logging.getLogger(name)
        if not any(isinstance(f, RedactingFilter) for f in logger.filters):
            logger.addFilter(RedactingFilter())
