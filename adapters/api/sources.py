"""The service's rule for ``source.path``: a tenant deploys only files from its own sources folder.

``source.path`` is resolved against ``sourcesDir`` (as before) and must land,
symlinks followed, inside the token's ``sources`` folder or, without one,
``sourcesDir/<namespace>/`` of the document; the folder must not reach out
of itself (see :mod:`adapters.gitops.sources`). Anything else is 422 naming
``documents[i].spec.source.path``: a tenant's overlay can then never render
another tenant's files into its namespace.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from pydantic import BaseModel

from adapters.api.config import ServiceConfig
from adapters.api.state import Principal
from adapters.gitops.sources import SourceRejected, resolve_contained
from engine import InputError, Workload

__all__ = ["check_sources", "sources_root"]


def sources_root(config: ServiceConfig, principal: Principal, namespace: str) -> Path:
    """The folder ``principal``'s workloads of ``namespace`` may take their sources from."""
    if principal.sources is not None:
        return principal.sources
    return (config.sources_dir or Path.cwd()) / namespace


def check_sources(items: list[tuple[BaseModel, dict[str, Any]]], config: ServiceConfig, principal: Principal) -> None:
    """Refuse a request whose Workloads take a source from outside the caller's folder.

    Raises:
        InputError: 422, field ``documents[i].spec.source.path``.
    """
    base = config.sources_dir or Path.cwd()
    for i, (doc, _) in enumerate(items):
        if not isinstance(doc, Workload) or doc.spec.source is None:
            continue
        root = sources_root(config, principal, str(doc.metadata.namespace or "default"))
        try:
            resolve_contained(doc.spec.source.path, base, [root])
        except SourceRejected as exc:
            # the message names the caller's own folder only, relative to sourcesDir when it is inside
            shown = root.name if root.parent == base else str(root)
            detail = str(exc).replace(str(root.resolve()), shown)
            raise InputError(detail, document=f"Workload {doc.key}",
                             field=f"documents[{i}].spec.source.path") from None
