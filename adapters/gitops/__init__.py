"""GitOps outputs: write a plan into a repository that Flux, Argo CD, Azure Arc or
Config Sync apply, and read the repository back as the placement that runs now.

Public API::

    write_plan(bundle, plan, repo_dir, *, fmt="flux", commit=True, push=False,
               remote="origin", max_push_attempts=5) -> WriteResult
    open_clone(repo_dir, *, sync_remote=None) -> GitSession  # context manager; write_plan(session=)
    read_current(repo_dir) -> {"ns/name": {cluster: replicas}}
    read_records(repo_dir) -> {cluster: ClusterRecord}     # for `berth status`
    render_cluster(repo_dir, cluster) -> [objects]         # kubectl kustomize, Flux paths followed

The layout is described in :mod:`adapters.gitops.layout` and docs/gitops.md.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from adapters.gitops.reader import ClusterRecord, RecordEntry, read_current, read_records
    from adapters.gitops.render import render_cluster
    from adapters.gitops.writer import FORMATS, CommitInfo, WriteResult, open_clone, write_plan

__all__ = [
    "FORMATS",
    "ClusterRecord",
    "CommitInfo",
    "RecordEntry",
    "WriteResult",
    "open_clone",
    "read_current",
    "read_records",
    "render_cluster",
    "write_plan",
]

#: where each public name lives; imported on first use (PEP 562), so that a command which only
#: checks a bundle's sources (``adapters.gitops.sources``) does not load git and ruamel.yaml
_HOMES = {
    "ClusterRecord": "reader", "RecordEntry": "reader", "read_current": "reader", "read_records": "reader",
    "render_cluster": "render",
    "FORMATS": "writer", "CommitInfo": "writer", "WriteResult": "writer", "open_clone": "writer",
    "write_plan": "writer",
}


def __getattr__(name: str) -> Any:
    home = _HOMES.get(name)
    if home is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(f"adapters.gitops.{home}"), name)
    globals()[name] = value
    return value
