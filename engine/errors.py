"""Berth's exception tree.

Only bad input and failing outside sources are exceptions; a workload that
cannot be placed is a *result* (an entry in ``plan.unplaced``), never an error.

::

    BerthError                       base; adapters map it to exit codes / HTTP
    ├── InputError                   the bundle is invalid            (exit 2, HTTP 422)
    │   ├── ReferenceNotFound        a name points at nothing
    │   ├── DuplicateName            two documents share kind + name
    │   └── DependencyCycle          dependsOn forms a cycle
    ├── SourceError                  a live source or remote failed   (exit 3, HTTP 503)
    │   ├── LiveSourceError          Prometheus / Kubernetes API
    │   └── GitOpsError              the deploy repository or its remote
    └── SolveError                   the engine itself failed          (exit 1, HTTP 500)

Context travels as keyword-only attributes (``file``, ``document``, ``field``)
so that callers can render it however they need; ``str()`` gives the one
line a person reads.
"""

from __future__ import annotations

__all__ = [
    "BerthError",
    "DependencyCycle",
    "DuplicateName",
    "GitOpsError",
    "InputError",
    "LiveSourceError",
    "ReferenceNotFound",
    "SolveError",
    "SourceError",
]


class BerthError(Exception):
    """Base of every error Berth raises on purpose."""

    exit_code: int = 1

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message

    def __str__(self) -> str:
        return self.message


class InputError(BerthError):
    """The input bundle (or a request body) is invalid.

    Attributes:
        file: the file the document came from (``None`` for in-memory input).
        document: ``Kind namespace/name`` or ``document #3`` when unnamed.
        field: dotted path of the offending field, e.g. ``spec.replicas``.
        errors: every problem found, as ``(field, message)`` pairs (the first is this one);
            a caller that can show them all (the service's ``errors`` list) reads these.
    """

    exit_code = 2

    def __init__(
        self,
        message: str,
        *,
        file: str | None = None,
        document: str | None = None,
        field: str | None = None,
        errors: list[tuple[str | None, str]] | None = None,
    ) -> None:
        self.file = file
        self.document = document
        self.field = field
        self.errors = errors or [(field, message)]
        parts = [p for p in (file, document) if p]
        where = ": ".join(parts)
        if field:
            where = f"{where}: field {field}" if where else f"field {field}"
        super().__init__(f"{where}: {message}" if where else message)
        self.detail = message


class ReferenceNotFound(InputError):
    """A policy, site, workload or tenant reference names nothing."""


class DuplicateName(InputError):
    """Two documents of one kind share a name (in one namespace)."""


class DependencyCycle(InputError):
    """``dependsOn`` between workloads forms a cycle."""


class SourceError(BerthError):
    """A live source or the GitOps remote failed; nothing was written."""

    exit_code = 3


class LiveSourceError(SourceError):
    """Prometheus or a Kubernetes API could not give usable data."""


class GitOpsError(SourceError):
    """The deploy repository or its remote refused or failed."""


class SolveError(BerthError):
    """The engine failed in a way that is a bug, not a property of the input."""

    exit_code = 1
