"""The service's state file: accepted definitions plus at most one write-ahead record.

Why: a placement is two writes (git, and the workload definition the service needs to
keep reserving its capacity). Either alone is a lie after a crash: git without the
definition is an orphan the next write would remove; a definition without git is a
promise nobody runs. So every change goes:

1. write-ahead: the file gets the definitions *after* the change plus a ``pending``
   record (what changes, before and after) -- atomically (temp file, fsync, rename,
   fsync of the folder). If this fails, nothing else happens (503).
2. git commit (and push);
3. mark done: the file without ``pending``.

On start, a ``pending`` record is resolved against git: if git holds the "after"
spreads the change is replayed (kept), otherwise it is rolled back (the definitions it
added are dropped, those it would have removed kept). The file is a YAML stream: the
accepted documents, then (without git) a ``BerthPlacements`` document, then the
``BerthPendingChange`` record while a change is in flight.
"""

from __future__ import annotations

import json
import os
import stat
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from engine import InputError

__all__ = ["Journal", "Pending", "Saved", "StateFileError"]

PLACEMENTS_KIND = "BerthPlacements"  # without git: what was placed over the API
PENDING_KIND = "BerthPendingChange"  # the write-ahead record
_Loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)  # libyaml when built with it: the file grows
_Dumper = getattr(yaml, "CSafeDumper", yaml.SafeDumper)

Spread = dict[str, int]
KindKey = tuple[str, str]


class StateFileError(Exception):
    """The state file cannot be written; the change must not reach git."""


@dataclass
class Pending:
    """One change in flight: which spreads it moves from ``before`` to ``after``.

    ``None`` as a spread means "not placed". ``added`` are definitions the change brings
    (dropped on roll-back); ``removed`` are definitions it ends (dropped when done);
    ``restore`` are the documents an update replaced (put back on roll-back).
    """

    op: str
    before: dict[str, Spread | None]
    after: dict[str, Spread | None]
    added: list[KindKey] = field(default_factory=list)
    removed: list[KindKey] = field(default_factory=list)
    restore: dict[KindKey, dict[str, Any]] = field(default_factory=dict)
    id: str = field(default_factory=lambda: uuid.uuid4().hex)

    def to_json(self) -> dict[str, Any]:
        out = {"id": self.id, "op": self.op, "before": self.before, "after": self.after,
               "added": [list(k) for k in self.added], "removed": [list(k) for k in self.removed]}
        if self.restore:
            out["restore"] = [{"kind": k[0], "key": k[1], "document": d} for k, d in sorted(self.restore.items())]
        return out

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Pending:
        return cls(op=str(data["op"]), before=dict(data["before"]), after=dict(data["after"]),
                   added=[(str(a), str(b)) for a, b in data.get("added", [])],
                   removed=[(str(a), str(b)) for a, b in data.get("removed", [])],
                   restore={(str(r["kind"]), str(r["key"])): dict(r["document"]) for r in data.get("restore", [])},
                   id=str(data.get("id", "")))


@dataclass
class Saved:
    """What the file holds: raw documents by (kind, key), placements without git, a pending record."""

    documents: dict[KindKey, dict[str, Any]] = field(default_factory=dict)
    placements: dict[str, Spread] = field(default_factory=dict)
    pending: Pending | None = None


def _key(raw: dict[str, Any]) -> KindKey:
    meta = raw.get("metadata") or {}
    return str(raw.get("kind")), f"{meta.get('namespace') or 'default'}/{meta.get('name')}"


class Journal:
    """Reads and writes the state file at ``path`` (``None``: keep nothing on disk)."""

    def __init__(self, path: Path | None) -> None:
        self.path = path
        #: YAML of each document already written, by (kind, key): accepted documents do not
        #: change, so a save renders only the new ones (the file grows with the fleet)
        self._texts: dict[KindKey, tuple[dict[str, Any], str]] = {}
        self._spreads: dict[str, str] = {}  # the JSON line of each placement's spread, as last saved

    def _text(self, key: KindKey, doc: dict[str, Any]) -> str:
        cached = self._texts.get(key)
        if cached is None or cached[0] is not doc:
            cached = (doc, yaml.dump(doc, Dumper=_Dumper, sort_keys=False))
            self._texts[key] = cached
        return cached[1]

    def _placements(self, placements: dict[str, Spread], changed: set[str] | None) -> str:
        """The ``BerthPlacements`` document as JSON (which is YAML, flow style), each spread rendered once.

        With ``changed`` (the keys whose spread may differ from the last save) only those are rendered
        again: a save costs the change, plus joining the fleet's cached lines, not a second of YAML.
        """
        cache = self._spreads
        for _ in range(2):
            if changed is None or not cache:
                cache.clear()  # the first save, or a full one: render everything
                changed = set(placements)
            for key in changed:
                spread = placements.get(key)
                if spread is None:
                    cache.pop(key, None)
                else:
                    cache[key] = f"{json.dumps(key)}: {json.dumps(spread)}"
            if len(cache) == len(placements):
                break
            changed = None  # the cache was not of the last save after all: render everything
        return f'{{"kind": "{PLACEMENTS_KIND}", "placements": {{{", ".join(cache.values())}}}}}\n'

    def load(self) -> Saved:
        """The file's content; an empty :class:`Saved` when there is no file.

        Raises:
            InputError: the file is not a state file Berth wrote.
        """
        path = self.path
        if path is None or not path.is_file():
            return Saved()
        self._sweep()
        try:
            docs = [d for d in yaml.load_all(path.read_text(encoding="utf-8"), Loader=_Loader) if d]
        except (UnicodeDecodeError, yaml.YAMLError) as exc:
            raise InputError(f"not a Berth state file: {exc}", file=str(path)) from None
        saved = Saved()
        for i, doc in enumerate(docs):
            if not isinstance(doc, dict):
                raise InputError("expected a mapping", file=str(path), document=f"#{i}")
            if doc.get("kind") == PLACEMENTS_KIND:
                saved.placements = {k: dict(v) for k, v in (doc.get("placements") or {}).items()}
            elif doc.get("kind") == PENDING_KIND:
                saved.pending = Pending.from_json(doc)
            else:
                saved.documents[_key(doc)] = doc
        return saved

    def save(self, saved: Saved, changed: set[str] | None = None) -> None:
        """Replace the file atomically and durably; ``changed``: the placements that differ from the last save.

        Raises:
            StateFileError: it cannot be written (read-only, full, not a regular file).
        """
        path = self.path
        if path is None:
            return
        texts = [self._text(k, saved.documents[k]) for k in sorted(saved.documents)]
        if saved.placements:
            texts.append(self._placements(saved.placements, changed))
        if saved.pending is not None:
            texts.append(json.dumps({"kind": PENDING_KIND, **saved.pending.to_json()}) + "\n")
        text = "---\n".join(texts)
        from adapters.cli.common import atomic_write

        try:
            if path.exists() and not stat.S_ISREG(path.lstat().st_mode):
                self._spreads.clear()
                raise StateFileError(f"state file {path} is not a regular file")
            atomic_write(path, text)  # temp file, fsync, rename
            folder = os.open(path.parent, os.O_RDONLY)  # and the rename itself survives a power cut
            try:
                os.fsync(folder)
            finally:
                os.close(folder)
        except OSError as exc:
            self._spreads.clear()  # it holds what was not written: the next save renders everything
            raise StateFileError(f"cannot write the state file {path}: {exc.strerror or exc}") from None

    def _sweep(self) -> None:
        """Remove temporary files a killed writer left beside the state file."""
        assert self.path is not None
        for leftover in self.path.parent.glob(f".{self.path.name}.*"):
            leftover.unlink(missing_ok=True)
