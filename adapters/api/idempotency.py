"""``Idempotency-Key`` on POST: a retried request gets the first answer, not a second attempt.

Why: a client whose connection dropped cannot know whether its placement was committed;
retrying it must not turn a success into ``409 already placed``. The first answer to a
(token, key) pair is kept and replayed, byte for byte, with ``Idempotent-Replayed: true``
(the IETF httpapi draft "The Idempotency-Key HTTP Header Field", as Stripe does it):

- keyed by the sha256 of the bearer token *and* the key: a tenant can never read another
  token's answer, even with the same key;
- the key belongs to one request: the same key with another body (or path) is 422;
- a retry that arrives while the first is still running waits for it and gets its answer;
- answers of status 5xx (nothing was reserved or committed) and 401 are not kept: the
  retry runs again;
- kept in memory, for :data:`TTL_SECONDS` and at most :data:`MAX_ENTRIES` answers, and
  *not across a restart* (decision: the state file holds placements, not answers; after a
  restart a retry of a committed placement is ``409 already placed``, and
  ``GET /v1/placements/{ns}/{name}`` says what was committed).
"""

from __future__ import annotations

import asyncio
import hashlib
import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass, field

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from adapters.api.problems import problem_response

__all__ = ["HEADER", "MAX_ENTRIES", "TTL_SECONDS", "Idempotency"]

HEADER = b"idempotency-key"
TTL_SECONDS = 24 * 3600.0
MAX_ENTRIES = 10_000
MAX_KEY_LENGTH = 255
#: a larger answer is not kept (the retry then runs again); plans of 50 workloads are far below
MAX_ANSWER_BYTES = 4 << 20


@dataclass
class _Entry:
    fingerprint: str
    created: float
    done: asyncio.Event = field(default_factory=asyncio.Event)
    status: int = 0
    headers: list[tuple[bytes, bytes]] = field(default_factory=list)
    body: bytes = b""
    kept: bool = False


class Idempotency:
    """ASGI middleware for POST requests that carry ``Idempotency-Key``."""

    def __init__(self, app: ASGIApp, *, clock: Callable[[], float] = time.monotonic) -> None:
        self.app = app
        self.clock = clock
        self.entries: OrderedDict[tuple[str, str], _Entry] = OrderedDict()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        headers = dict(scope.get("headers", [])) if scope["type"] == "http" else {}
        raw_key = headers.get(HEADER)
        if scope["type"] != "http" or scope["method"] != "POST" or raw_key is None:
            await self.app(scope, receive, send)
            return
        key = raw_key.decode("latin-1")
        if not 1 <= len(key) <= MAX_KEY_LENGTH or not key.isprintable() or not key.isascii():
            await problem_response(422, f"Idempotency-Key must be 1 to {MAX_KEY_LENGTH} printable ASCII "
                                        "characters", field="Idempotency-Key")(scope, receive, send)
            return
        body, receive = await _read_body(receive)
        digest = hashlib.sha256()
        for part in (scope["path"].encode(), b"?", scope.get("query_string", b""), b"\n",
                     headers.get(b"content-type", b""), b"\n", body):
            digest.update(part)
        slot = (hashlib.sha256(headers.get(b"authorization", b"")).hexdigest(), key)
        self._expire()
        while (entry := self.entries.get(slot)) is not None:
            if entry.fingerprint != digest.hexdigest():
                await problem_response(422, "this Idempotency-Key was used for another request (a different body "
                                            "or path); use a new key for a new request",
                                       field="Idempotency-Key")(scope, receive, send)
                return
            await entry.done.wait()
            if entry.kept:
                await _replay(entry, send)
                return
            # the first attempt ended in a 5xx and was forgotten: this one runs (once, the loop re-checks)
        entry = _Entry(digest.hexdigest(), self.clock())
        self.entries[slot] = entry
        try:
            await self.app(scope, receive, _recording(send, entry))
        finally:
            entry.kept = (entry.status < 500 and entry.status not in (0, 401)
                          and len(entry.body) <= MAX_ANSWER_BYTES)
            if not entry.kept:
                self.entries.pop(slot, None)
            entry.done.set()

    def _expire(self) -> None:
        """Drop answers older than the TTL, and the oldest beyond :data:`MAX_ENTRIES`."""
        now = self.clock()
        while self.entries:
            slot, oldest = next(iter(self.entries.items()))
            if now - oldest.created <= TTL_SECONDS and len(self.entries) < MAX_ENTRIES:
                break
            if not oldest.done.is_set() and len(self.entries) < 2 * MAX_ENTRIES:
                break  # still running: its retry must still find it
            self.entries.pop(slot)


async def _read_body(receive: Receive) -> tuple[bytes, Receive]:
    """The whole request body, and a ``receive`` that hands it on again."""
    chunks: list[bytes] = []
    messages: list[Message] = []
    while True:
        message = await receive()
        messages.append(message)
        if message["type"] != "http.request":
            break
        chunks.append(message.get("body", b""))
        if not message.get("more_body", False):
            break
    body = b"".join(chunks)
    replayed = False

    async def again() -> Message:
        nonlocal replayed
        if not replayed:
            replayed = True
            if messages and messages[-1]["type"] != "http.request":
                return messages[-1]
            return {"type": "http.request", "body": body, "more_body": False}
        return await receive()

    return body, again


def _recording(send: Send, entry: _Entry) -> Send:
    async def record(message: Message) -> None:
        if message["type"] == "http.response.start":
            entry.status = int(message["status"])
            entry.headers = [(k, v) for k, v in message.get("headers", []) if k.lower() != b"content-length"]
        elif message["type"] == "http.response.body" and len(entry.body) <= MAX_ANSWER_BYTES:
            entry.body += message.get("body", b"")
        await send(message)
    return record


async def _replay(entry: _Entry, send: Send) -> None:
    headers = [*entry.headers, (b"content-length", str(len(entry.body)).encode()),
               (b"idempotent-replayed", b"true")]
    await send({"type": "http.response.start", "status": entry.status, "headers": headers})
    await send({"type": "http.response.body", "body": entry.body, "more_body": False})
