"""Group commit: accepted placements that arrive while a commit is in flight share the next one.

Why: a commit costs the same for one placement as for twenty (one write-ahead record,
one git commit per changed cluster, one push), and requests that reserve are serialised.
So a placement is *reserved* under the writer lock (solved against everything committed
or reserved before it, then added to the open group), and *committed* by whichever member
of the group gets the commit lock first: the whole group in one durable step (write-ahead
record of every member, git, done; :meth:`ServiceState._apply`). Each request is answered
only after its group is durable (and pushed with ``push: true``). While one group commits,
the next one fills up: under load the groups grow by themselves, and one request alone
commits at once (no timer).

If a group fails (state file, git), every member gets the error and nothing of it stays
reserved; a group reserved on top of it fails too (it was solved beside capacity that is
not taken after all), with 503 and ``Retry-After``.

Deletes and updates change what others were solved against, so they run alone
(:meth:`CommitGroups.exclusive`): no group open, the commit lock and the writer lock held.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from adapters.api.journal import KindKey, Pending, Spread
from adapters.api.problems import Problem

if TYPE_CHECKING:
    from adapters.api.state import ServiceState, Snapshot

__all__ = ["CommitGroups", "Group"]


@dataclass(eq=False)
class Group:
    """Placements reserved together; committed in one step."""

    new: Snapshot | None = None  # the snapshot after every member
    after: dict[str, Spread | None] = field(default_factory=dict)
    added: list[KindKey] = field(default_factory=list)
    members: int = 0
    done: threading.Event = field(default_factory=threading.Event)
    error: BaseException | None = None
    git: dict[str, Any] | None = None


class CommitGroups:
    """The open group, the reservations not yet durable, and the one commit lock of a service."""

    def __init__(self, state: ServiceState) -> None:
        self.state = state
        self.commit_lock = threading.Lock()
        self.open: Group | None = None
        self.reserved: Snapshot | None = None  # newest snapshot with reservations not yet durable

    def base(self) -> Snapshot:
        """What a reserving request is solved against (the caller holds the writer lock)."""
        return self.reserved or self.state.snap

    def reserve(self, new: Snapshot, after: dict[str, Spread], added: list[KindKey]) -> Group:
        """Add a solved request to the open group (the caller holds the writer lock)."""
        group = self.open or Group()
        self.open = group
        group.new = new
        group.after.update(after)
        group.added += [k for k in added if k not in group.added]
        group.members += 1
        self.reserved = new
        self.state.fast.changed(new, after)  # the warm residual takes the reservation now
        return group

    def wait(self, group: Group) -> dict[str, Any] | None:
        """Commit ``group`` (with whatever joined it) unless another member already does; its git result.

        Raises:
            BaseException: what made the group's commit fail (Problem 503, GitOpsError...).
        """
        with self.commit_lock:
            if not group.done.is_set():
                self._commit_open()
        group.done.wait()
        if group.error is not None:
            raise group.error
        return group.git

    def _commit_open(self) -> None:
        """Commit the open group in one durable step; the caller holds the commit lock."""
        state = self.state
        with state.lock:
            group, self.open = self.open, None
        if group is None or group.new is None:
            return
        state.metrics.commit_group.observe(group.members)
        try:
            pending = Pending("place", before=dict.fromkeys(group.after), after=dict(group.after), added=group.added)
            group.git = state._apply(state.snap, group.new, pending)
        except BaseException as exc:
            group.error = exc
            self._drop(group)
        else:
            with state.lock:
                if self.open is None:
                    self.reserved = None  # nothing reserved beyond what is now durable
        finally:
            group.done.set()

    def _drop(self, failed: Group) -> None:
        """Undo the reservations of a failed group and of any group reserved on top of it."""
        state = self.state
        with state.lock:
            later, self.open = self.open, None
            self.reserved = None
            keys = set(failed.after) | (set(later.after) if later else set())
            state.fast.changed(state.snap, keys)  # back to what is durable
        if later is not None:
            later.error = Problem(503, "a placement committed together with this one failed; nothing was reserved "
                                       "or committed; send it again", headers={"Retry-After": "1"},
                                  title="Commit failed")
            later.done.set()

    @contextmanager
    def exclusive(self) -> Iterator[None]:
        """Hold the commit lock and the writer lock with nothing reserved (deletes, updates)."""
        with self.commit_lock:
            while True:
                self._commit_open()
                self.state.lock.acquire()
                if self.open is None:
                    break
                self.state.lock.release()  # a placement reserved meanwhile: commit it first
            try:
                self.reserved = None
                yield
            finally:
                self.state.lock.release()
