"""``GET /v1/placements?watch=true``: changes to committed placements as server-sent events.

Why: a portal or a controller follows the fleet without polling, the way ``kubectl get -w``
follows a list. Semantics follow Kubernetes watches:

- every change that becomes current (a placement accepted, updated or deleted) gets the
  next *resource version* and is published after it is durable, as one event per workload:
  ``ADDED``, ``MODIFIED`` or ``DELETED``, with the placement as it is now;
- without ``resourceVersion`` the stream starts with an ``ADDED`` event for every placement
  visible to the token, then follows changes; with ``resourceVersion`` (or the SSE
  ``Last-Event-ID`` header of a reconnecting browser) it replays only the changes after it;
  a version older than the history this process keeps (or from before a restart) gets an
  ``ERROR`` event with code 410 and the stream ends: list again, then watch from the list's
  ``metadata.resourceVersion``;
- a token sees only events of its namespaces;
- a stream ends after ``timeoutSeconds`` (as Kubernetes' watch timeout); a client too slow to
  read :data:`MAX_QUEUE` events behind gets ``ERROR`` 410 and the stream ends.

Resource versions start at the process's start time in milliseconds, so a version from before
a restart is always older than any the new process hands out.
"""

from __future__ import annotations

import asyncio
import json
import threading
from collections import deque
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from typing import Any

__all__ = ["HEARTBEAT_SECONDS", "ChangeFeed", "Event", "changes", "sse_stream"]

HISTORY = 10_000  # events kept for resuming watches
MAX_QUEUE = 10_000  # events a slow reader may fall behind before its stream is closed
HEARTBEAT_SECONDS = 15.0  # an SSE comment this often keeps proxies from closing an idle stream


@dataclass(frozen=True)
class Event:
    revision: int
    type: str  # ADDED, MODIFIED, DELETED
    workload: str
    clusters: dict[str, int]

    def visible_to(self, can: Callable[[str], bool]) -> bool:
        return can(self.workload.split("/", 1)[0])

    def sse(self) -> str:
        data = {"type": self.type, "resourceVersion": str(self.revision),
                "object": {"workload": self.workload, "replicas": sum(self.clusters.values()),
                           "clusters": self.clusters}}
        return f"id: {self.revision}\nevent: {self.type}\ndata: {json.dumps(data, separators=(',', ':'))}\n\n"


@dataclass(eq=False)
class _Subscriber:
    loop: asyncio.AbstractEventLoop
    queue: asyncio.Queue[Event | None] = field(default_factory=asyncio.Queue)
    overflowed: bool = False

    def offer(self, event: Event) -> None:  # on the event loop
        if self.overflowed:
            return
        if self.queue.qsize() >= MAX_QUEUE:
            self.overflowed = True
            self.queue.put_nowait(None)
            return
        self.queue.put_nowait(event)


class TooOld(Exception):
    """The requested resource version is older than the history kept."""


class ChangeFeed:
    """Published changes, a bounded history, and the live subscribers (thread-safe)."""

    def __init__(self, first: int, history: int = HISTORY) -> None:
        self._lock = threading.Lock()
        self._events: deque[Event] = deque(maxlen=history)
        self._subscribers: set[_Subscriber] = set()
        #: the oldest ``since`` a watch can resume from: every change after it is in the history
        self.floor = first

    def publish(self, events: list[Event]) -> None:
        """Record ``events`` (one revision) and hand them to every subscriber; any thread."""
        with self._lock:
            for event in events:
                if len(self._events) == self._events.maxlen:
                    self.floor = max(self.floor, self._events[0].revision)
                self._events.append(event)
            subscribers = list(self._subscribers)
        for sub in subscribers:
            for event in events:
                try:
                    sub.loop.call_soon_threadsafe(sub.offer, event)
                except RuntimeError:  # its loop is closed: the server stopped
                    self._subscribers.discard(sub)

    def subscribe(self, since: int | None) -> tuple[_Subscriber, list[Event]]:
        """A live subscription and the recorded events after ``since`` (none when ``since`` is None).

        Raises:
            TooOld: ``since`` is older than :attr:`floor` (the history, or this process, starts later).
        """
        sub = _Subscriber(asyncio.get_running_loop())
        with self._lock:
            if since is not None and since < self.floor:
                raise TooOld
            past = [] if since is None else [e for e in self._events if e.revision > since]
            self._subscribers.add(sub)
        return sub, past

    def unsubscribe(self, sub: _Subscriber) -> None:
        with self._lock:
            self._subscribers.discard(sub)


def _error(code: int, message: str) -> str:
    data = {"type": "ERROR", "object": {"kind": "Status", "status": "Failure", "code": code, "reason": "Expired"
                                        if code == 410 else "InternalError", "message": message}}
    return f"event: ERROR\ndata: {json.dumps(data, separators=(',', ':'))}\n\n"


async def sse_stream(feed: ChangeFeed, *, since: int | None, initial: Callable[[], tuple[int, list[Event]]],
                     can: Callable[[str], bool], timeout: float, heartbeat: float = HEARTBEAT_SECONDS
                     ) -> AsyncIterator[str]:
    """The event stream of one watch.

    ``initial`` returns the current revision and an ``ADDED`` event per committed placement;
    it is called after the subscription starts, so no change falls between the two.
    """
    loop = asyncio.get_running_loop()
    try:
        sub, past = feed.subscribe(since)
    except TooOld:
        yield _error(410, f"resourceVersion {since} is too old (older than the history kept, or from before a "
                          "restart); list again and watch from the list's metadata.resourceVersion")
        return
    try:
        yield "retry: 2000\n\n"
        seen = since
        if since is None:
            seen, events = initial()
            for event in events:
                if event.visible_to(can):
                    yield event.sse()
        for event in past:
            if event.visible_to(can):
                yield event.sse()
            seen = max(seen or 0, event.revision)
        deadline = loop.time() + timeout
        while True:
            left = deadline - loop.time()
            if left <= 0:
                return
            try:
                event = await asyncio.wait_for(sub.queue.get(), timeout=min(heartbeat, left))
            except TimeoutError:
                yield ": keep-alive\n\n"
                continue
            if event is None:
                yield _error(410, "the client fell too far behind; list again and watch from the list's "
                                  "metadata.resourceVersion")
                return
            if seen is not None and event.revision <= seen:
                continue  # already in the initial state or the history
            if event.visible_to(can):
                yield event.sse()
    finally:
        feed.unsubscribe(sub)


def changes(revision: int, before: dict[str, dict[str, int]], after: dict[str, dict[str, int]],
            keys: Any) -> list[Event]:
    """The events of one change: for each key, whether it was added, modified or deleted."""
    out: list[Event] = []
    for key in sorted(keys):
        old, new = before.get(key), after.get(key)
        if new is None and old is None:
            continue
        kind = "ADDED" if old is None else "DELETED" if new is None else "MODIFIED"
        out.append(Event(revision, kind, key, dict(sorted((new if new is not None else old or {}).items()))))
    return out
