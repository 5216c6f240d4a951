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
