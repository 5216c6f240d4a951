"""Writing a plan into a GitOps repository: files, one commit per changed cluster, push.

Order of commits (each leaves a tree whose every overlay builds):

1. ``bases/`` added or updated (one commit, if anything changed);
2. one commit per changed ``clusters/<cluster>/`` (sorted by name), touching
   only that folder;
3. ``bases/`` no longer referenced removed (one commit, if any).

Every commit message ends with the trailers ``Berth-Plan:``,
``Berth-Input-Digest:`` and, for a cluster commit, ``Berth-Cluster:``.
Writing the same plan again changes no file and makes no commit. Each file
is written to a temporary file and renamed into place; on any failure the
clone is reset to the commit it was on, with a clean work tree.
"""

from __future__ import annotations

import contextlib
import os
import tempfile
from collections.abc import Callable, Iterable, Iterator
from contextvars import ContextVar
from dataclasses import dataclass, field
from pathlib import Path

from git import GitCommandError

from adapters.gitops import arc, argocd, configsync, flux
from adapters.gitops.context import RenderContext, secret_for
from adapters.gitops.layout import (
    BASES_DIR,
    CLUSTERS_DIR,
    OWNED_DIRS,
    OWNED_FILES,
    ClusterState,
    DesiredState,
    desired_state,
    plan_id,
)
from adapters.gitops.reader import cluster_names, read_records, recorded_names, recorded_namespaces
from adapters.gitops.repo import GitSession, sanitize
from engine import BerthError, Bundle, GitOpsError, InputError, Plan, strip_userinfo

__all__ = ["FORMATS", "CommitInfo", "WriteResult", "open_clone", "write_plan"]

Renderer = Callable[[ClusterState, RenderContext], dict[str, bytes]]

#: further ``(key, value)`` trailers for every commit written in this context (a rollback names
#: the plan it restores with ``Berth-Rollback-To``); set by ``adapters.gitops.history``
EXTRA_TRAILERS: ContextVar[tuple[tuple[str, str], ...]] = ContextVar("berth_extra_trailers", default=())

#: ``--gitops-format`` value -> renderer of one cluster folder.
FORMATS: dict[str, Renderer] = {
    "flux": flux.render,
    "argocd": argocd.render,
    "arc": arc.render,
    "configsync": configsync.render,
}
#: the URL written when files are written without a clone (``commit=False``) and no ``repo_url``
PLACEHOLDER_URL = "https://git.example.com/REPLACE-ME.git"
#: formats that also write files outside the cluster folders (repository-relative paths)
REPO_FILES: dict[str, Callable[[RenderContext], dict[str, bytes]]] = {"argocd": argocd.repo_files}


def _check(fmt: str, state: DesiredState, ctx: RenderContext) -> None:
    """What a format refuses, found before anything is written (exit 2).

    Raises:
        InputError: Azure Arc without a URL Azure can clone, or two workloads whose Arc
            kustomization names collide on a cluster.
    """
    if fmt == "arc":
        arc.check_url(ctx.repo_url)  # files only (commit=False) carry the explicit placeholder URL
        for cluster in state.clusters.values():
            arc.check_names(cluster)


@dataclass(frozen=True)
class CommitInfo:
    """One commit Berth made: ``cluster`` is ``None`` for a ``bases/`` commit."""

    sha: str
    cluster: str | None
    message: str

    @property
    def subject(self) -> str:
        return self.message.split("\n", 1)[0]


@dataclass
class WriteResult:
    """What :func:`write_plan` did.

    Attributes:
        commits: the commits made, oldest first (after a rebase: their final ids).
        changed_clusters: clusters whose folder changed.
        bases_changed: whether ``bases/`` changed.
        plan_id: the ``Berth-Plan`` trailer value.
        pushed: whether the commits reached the remote.
        push_attempts: pushes tried (0 without ``push``).
    """

    repo_dir: Path
    fmt: str
    plan_id: str
    commits: list[CommitInfo] = field(default_factory=list)
    changed_clusters: list[str] = field(default_factory=list)
    bases_changed: bool = False
    pushed: bool = False
    push_attempts: int = 0

    def summary(self) -> str:
        """One line for people: what was committed (and pushed) where."""
        if not self.commits and not self.changed_clusters and not self.bases_changed:
            text = f"{self.repo_dir}: already up to date ({self.fmt}), nothing committed"
        else:
            clusters = ", ".join(self.changed_clusters) or "none"
            what = f"{len(self.commits)} commit(s)" if self.commits else "files written"
            text = f"{self.repo_dir}: {what} ({self.fmt}); clusters changed: {clusters}"
        if self.pushed:
            text += f"; pushed after {self.push_attempts} attempt(s)"
        return text


# --- files on disk ---------------------------------------------------------------------


def _atomic_write(path: Path, data: bytes, tmp_dir: Path | None) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=tmp_dir or path.parent, prefix=".berth-")
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        os.chmod(tmp, 0o644)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def _files_under(folder: Path) -> dict[str, Path]:
    """Regular files below ``folder`` (relative path -> path), skipping dot-entries."""
    if not folder.is_dir():
        return {}
    out: dict[str, Path] = {}
    for path in sorted(folder.rglob("*")):
        rel = path.relative_to(folder)
        if any(part.startswith(".") for part in rel.parts) or not path.is_file():
            continue
        out[rel.as_posix()] = path
    return out


def _prune_empty_dirs(folder: Path, stop: Path) -> None:
    """Remove empty folders from ``folder`` upwards, never ``stop`` itself."""
    for sub in sorted((p for p in folder.rglob("*") if p.is_dir()), reverse=True):
        if not any(sub.iterdir()):
            sub.rmdir()
    current = folder
    while current != stop and current.is_dir() and not any(current.iterdir()):
        current.rmdir()
        current = current.parent


def _sync_files(
    folder: Path, desired: dict[str, bytes], owned: dict[str, Path], tmp_dir: Path | None
) -> bool:
    """Make ``folder`` hold ``desired``; delete ``owned`` files not desired. True if changed."""
    changed = False
    for rel, data in sorted(desired.items()):
        path = folder / rel
        if path.is_file() and path.read_bytes() == data:
            continue
        _atomic_write(path, data, tmp_dir)
        changed = True
    for rel, path in sorted(owned.items()):
        if rel not in desired:
            path.unlink()
            changed = True
    return changed


def _owned_cluster_files(folder: Path) -> dict[str, Path]:
    owned = {n: folder / n for n in OWNED_FILES if (folder / n).is_file()}
    for sub in OWNED_DIRS:
        owned |= {f"{sub}/{rel}": p for rel, p in _files_under(folder / sub).items()}
    return owned


# --- commit messages ------------------------------------------------------------------


def _trailers(state: DesiredState, cluster: str | None) -> str:
    lines = [f"Berth-Plan: {state.plan_id}", f"Berth-Input-Digest: {state.input_digest}"]
    if cluster is not None:
        lines.append(f"Berth-Cluster: {cluster}")
    lines += [f"{key}: {value}" for key, value in EXTRA_TRAILERS.get()]
    return "\n".join(lines)


def _cluster_message(
    cluster: str, before: dict[str, int], after: dict[str, int], fmt: str, state: DesiredState
) -> str:
    added = [k for k in sorted(after) if k not in before]
    removed = [k for k in sorted(before) if k not in after]
    scaled = [k for k in sorted(after) if k in before and before[k] != after[k]]
    parts = [f"add {k} ({after[k]})" for k in added]
    parts += [f"scale {k} {before[k]}->{after[k]}" for k in scaled]
    parts += [f"remove {k} ({before[k]})" for k in removed]
    subject = f"berth: {cluster}: " + ", ".join(parts) if parts else ""
    if not parts:
        subject = f"berth: {cluster}: update {fmt} manifests"
    elif len(subject) > 72:
        counts = [(len(added), "added"), (len(scaled), "scaled"), (len(removed), "removed")]
        subject = f"berth: {cluster}: " + ", ".join(f"{n} {w}" for n, w in counts if n)
    body = "\n".join(f"- {p}" for p in parts) or f"- re-render the {fmt} layout"
    runs = ", ".join(f"{k}={n}" for k, n in sorted(after.items())) or "nothing"
    return f"{subject}\n\n{body}\n\nNow runs: {runs}\n\n{_trailers(state, cluster)}\n"


def _bases_message(
    added: list[str], updated: list[str], removed: list[str], state: DesiredState
) -> str:
    groups = [("add", added), ("update", updated), ("remove", removed)]
    subject = "berth: bases: " + "; ".join(f"{v} {', '.join(n)}" for v, n in groups if n)
    if len(subject) > 72:
        subject = "berth: bases: " + ", ".join(f"{v} {len(n)}" for v, n in groups if n)
    body = "\n".join(f"- {v} {name}" for v, names in groups for name in names)
    return f"{subject}\n\n{body}\n\n{_trailers(state, None)}\n"


def _repo_message(fmt: str, paths: list[str], state: DesiredState) -> str:
    subject = f"berth: {fmt}: write {', '.join(paths)}"
    body = "\n".join(f"- {p}: what a hub applies to follow every cluster folder" for p in paths)
    return f"{subject}\n\n{body}\n\n{_trailers(state, None)}\n"


# --- the write -------------------------------------------------------------------------


class _Writer:
    """Applies one plan to a work tree, committing through ``session`` when given."""

    def __init__(
        self,
        bundle: Bundle,
        plan: Plan,
        repo_dir: Path,
        fmt: str,
        ctx_factory: Callable[[], RenderContext],
        session: GitSession | None,
        only: frozenset[str] | None = None,
    ) -> None:
        self.bundle, self.plan, self.repo_dir, self.fmt = bundle, plan, repo_dir, fmt
        self.ctx_factory, self.session, self.only = ctx_factory, session, only
        self.tmp_dir: Path | None = None
        if session is not None:
            self.tmp_dir = session.git_dir / "berth-tmp"
            self.tmp_dir.mkdir(exist_ok=True)
            for leftover in self.tmp_dir.iterdir():  # from a writer that was killed
                leftover.unlink(missing_ok=True)

    def desired(self) -> DesiredState:
        if self.only is None:
            return desired_state(self.bundle, self.plan, cluster_names(self.repo_dir),
                                 recorded_names(self.repo_dir), recorded_namespaces(self.repo_dir))
        # Only these folders change: render the workloads that run there (their whole
        # spread, so each folder is complete) and keep every other folder as it is.
        only = self.only
        touching = self.plan.model_copy()
        touching.placements = [p for p in self.plan.placements if only & p.clusters.keys()]
        state = desired_state(self.bundle, touching, only, recorded_names(self.repo_dir),
                              recorded_namespaces(self.repo_dir), whole=self.plan)
        state.clusters = {name: c for name, c in state.clusters.items() if name in only}
        state.plan_id = plan_id(self.plan)
        return state

    def kept_bases(self, state: DesiredState) -> set[str]:
        """Bases still referenced by the whole plan (not only by the folders rendered)."""
        if self.only is None:
            return set(state.bases)
        by_key = {w.key: w for w in self.bundle.workloads}
        return {f"{BASES_DIR}/{by_key[k].metadata.namespace}/{by_key[k].metadata.name}"
                for k in self.plan.assignment() if k in by_key and by_key[k].spec.source is not None}

    def run(self, state: DesiredState, result: WriteResult) -> None:
        ctx = self.ctx_factory()
        _check(self.fmt, state, ctx)
        records = read_records(self.repo_dir, self.only)
        before = {c: r.assignment() for c, r in records.items()}
        # 0. files outside the cluster folders (the Argo CD hub's ApplicationSets)
        repo_files = REPO_FILES.get(self.fmt, lambda _ctx: {})(ctx)
        if _sync_files(self.repo_dir, repo_files, {}, self.tmp_dir):
            paths = sorted(repo_files)
            self._commit(paths, None, _repo_message(self.fmt, paths, state), result)
        # 1. bases added or updated
        added, updated = [], []
        for rel, source in sorted(state.bases.items()):
            existed = (self.repo_dir / rel).is_dir()
            if self._copy_base(rel, source):
                (updated if existed else added).append(rel.removeprefix(BASES_DIR + "/"))
        if added or updated:
            result.bases_changed = True
            message = _bases_message(added, updated, [], state)
            self._commit([BASES_DIR], None, message, result)
        # 2. one commit per changed cluster
        renderer = FORMATS[self.fmt]
        for name, cluster in sorted(state.clusters.items()):
            folder = self.repo_dir / CLUSTERS_DIR / name
            files = renderer(cluster, ctx)
            if not _sync_files(folder, files, _owned_cluster_files(folder), self.tmp_dir):
                continue
            _prune_empty_dirs(folder, folder)
            result.changed_clusters.append(name)
            message = _cluster_message(
                name, before.get(name, {}), cluster.assignment(), self.fmt, state
            )
            self._commit([f"{CLUSTERS_DIR}/{name}"], name, message, result)
        # 3. bases nobody references any more
        gone = self._remove_unused_bases(self.kept_bases(state))
        if gone:
            result.bases_changed = True
            names = [rel.removeprefix(BASES_DIR + "/") for rel in gone]
            self._commit([BASES_DIR], None, _bases_message([], [], names, state), result)

    def _copy_base(self, rel: str, source: Path) -> bool:
        target = self.repo_dir / rel
        desired = {r: p.read_bytes() for r, p in _files_under(source).items()}
        changed = _sync_files(target, desired, _files_under(target), self.tmp_dir)
        if changed:
            _prune_empty_dirs(target, target)
        return changed

    def _remove_unused_bases(self, keep: set[str]) -> list[str]:
        root = self.repo_dir / BASES_DIR
        if not root.is_dir():
            return []
        gone: list[str] = []
        for ns_dir in sorted(p for p in root.iterdir() if p.is_dir()):
            for base in sorted(p for p in ns_dir.iterdir() if p.is_dir()):
                rel = f"{BASES_DIR}/{ns_dir.name}/{base.name}"
                if rel in keep:
                    continue
                for path in _files_under(base).values():
                    path.unlink()
                _prune_empty_dirs(base, root)
                gone.append(rel)
        return gone

    def _commit(self, paths: list[str], cluster: str | None, msg: str, result: WriteResult) -> None:
        if self.session is None:
            return
        sha = self.session.commit_paths(paths, msg)
        if sha is not None:
            result.commits.append(CommitInfo(sha=sha, cluster=cluster, message=msg))


def write_plan(
    bundle: Bundle,
    plan: Plan,
    repo_dir: Path,
    *,
    fmt: str = "flux",
    commit: bool = True,
    push: bool = False,
    remote: str = "origin",
    max_push_attempts: int = 5,
    repo_url: str | None = None,
    branch: str | None = None,
    clusters: Iterable[str] | None = None,
    credentials_secret: str | None = None,
    session: GitSession | None = None,
) -> WriteResult:
    """Materialise ``plan`` in the GitOps repository at ``repo_dir``.

    Args:
        bundle: the bundle the plan was made from (sources, ``dependsOn``).
        plan: the plan; it is the desired state of every cluster in the bundle and
            in the repository (a cluster it leaves empty is emptied).
        repo_dir: a local clone; created (``git init -b main``) if missing.
        fmt: ``flux`` (default), ``argocd``, ``arc`` or ``configsync``.
        commit: commit the change (one commit per changed cluster). With
            ``False`` the files are only written (``repo_dir`` need not be a
            repository).
        push: push to ``remote`` afterwards (fetch, rebase and retry when the
            remote moved on; never force). Requires ``commit``.
        remote: the remote to push to.
        max_push_attempts: pushes tried before giving up.
        repo_url: URL written into Argo CD / Config Sync / Arc objects; default:
            the URL of ``remote`` without credentials.
        branch: branch those objects follow; default: the checked-out branch.
        clusters: when given, only these cluster folders (and the bases of the
            workloads on them) are rendered; every other folder is trusted to be
            up to date already (the service passes the clusters a request changes,
            so that the cost of a commit does not grow with the fleet).
        credentials_secret: the Secret those objects reference for the repository's
            credentials; default ``$BERTH_GIT_CREDENTIALS_SECRET``, else
            ``berth-git-credentials`` when the remote URL carries credentials or is
            SSH. Credentials themselves are never written.
        session: a clone opened with :func:`open_clone` (the caller planned inside it); by
            default one is opened here.

    Returns:
        The commits made and the clusters that changed.

    Raises:
        InputError: ``fmt`` is unknown, or the plan and bundle disagree, or a
            ``source.path`` is not a kustomize folder; nothing is written.
        GitOpsError: git or the remote failed; the clone is back on the commit it
            was on, with a clean work tree, and nothing was pushed.
        ValueError: ``push`` without ``commit``.
    """
    if fmt not in FORMATS:
        raise InputError(
            f"unknown GitOps format {fmt!r}; expected one of {', '.join(FORMATS)}",
            field="--gitops-format",
        )
    if push and not commit:
        raise ValueError("push=True needs commit=True")
    repo_dir = Path(repo_dir)
    only = None if clusters is None else frozenset(clusters)
    secret = credentials_secret or os.environ.get("BERTH_GIT_CREDENTIALS_SECRET") or None

    if not commit:
        url = repo_url or PLACEHOLDER_URL
        ctx = RenderContext(repo_dir, strip_userinfo(url), branch or "main", secret_for(url, secret))
        writer = _Writer(bundle, plan, repo_dir, fmt, lambda: ctx, None, only)
        state = writer.desired()
        _check(fmt, state, ctx)
        repo_dir.mkdir(parents=True, exist_ok=True)
        result = WriteResult(repo_dir=repo_dir, fmt=fmt, plan_id=state.plan_id)
        writer.run(state, result)
        return result

    if session is not None:
        return _commit_plan(session, bundle, plan, repo_dir, fmt, push, remote, max_push_attempts,
                            repo_url, branch, only, secret)
    with open_clone(repo_dir) as own:
        return _commit_plan(own, bundle, plan, repo_dir, fmt, push, remote, max_push_attempts, repo_url, branch,
                            only, secret)


@contextlib.contextmanager
def open_clone(repo_dir: Path, *, sync_remote: str | None = None) -> Iterator[GitSession]:
    """The clone at ``repo_dir``, ready for :func:`write_plan` (``session=``), held for one writer.

    It is created when missing, locked, a killed write is undone, nothing uncommitted is under
    ``clusters/`` or ``bases/``, and it is writable; with ``sync_remote`` it is fast-forwarded
    to that remote's branch. A caller reads the current placement and plans inside the block,
    so that nothing changes the clone in between.

    Raises:
        GitOpsError: any of the above cannot be had; nothing was written.
    """
    with GitSession(Path(repo_dir), create=True) as session:
        session.prepare([CLUSTERS_DIR, BASES_DIR])
        if sync_remote is not None:
            if session.remote_url(sync_remote) is None:
                raise GitOpsError(f"{repo_dir} has no remote {sync_remote!r} to push to")
            session.sync_with_remote(sync_remote, session.branch())
        yield session


def _commit_plan(
    session: GitSession,
    bundle: Bundle,
    plan: Plan,
    repo_dir: Path,
    fmt: str,
    push: bool,
    remote: str,
    max_push_attempts: int,
    repo_url: str | None,
    branch: str | None,
    only: frozenset[str] | None,
    secret: str | None,
) -> WriteResult:
    """Commit (and push) ``plan`` through a prepared ``session``; on any failure, undo it all."""
    head = session.head()
    on_branch = session.branch()
    if push and session.remote_url(remote) is None:
        raise GitOpsError(f"{repo_dir} has no remote {remote!r} to push to")

    def ctx_factory() -> RenderContext:
        raw = repo_url or _raw_remote_url(session, remote) or f"file://{repo_dir.resolve()}"
        return RenderContext(repo_dir, strip_userinfo(raw), branch or on_branch, secret_for(raw, secret))

    writer = _Writer(bundle, plan, repo_dir, fmt, ctx_factory, session, only)
    state = writer.desired()  # InputError here: nothing written yet
    _check(fmt, state, ctx_factory())
    result = WriteResult(repo_dir=repo_dir, fmt=fmt, plan_id=state.plan_id)
    session.begin_write(head, on_branch)
    try:
        writer.run(state, result)
        if push:
            _push(session, writer, result, remote, on_branch, max_push_attempts)
    except BaseException as exc:
        try:
            session.undo(head, on_branch)
        except GitOpsError as failed:
            raise GitOpsError(f"{_describe(exc, repo_dir)}; then {failed}") from None
        if isinstance(exc, BerthError):
            raise
        if isinstance(exc, GitCommandError | OSError):
            raise GitOpsError(_describe(exc, repo_dir)) from None
        raise
    session.end_write()
    return result


def _describe(exc: BaseException, repo_dir: Path) -> str:
    """One line for what failed in a write (git's own words, without credentials)."""
    if isinstance(exc, GitCommandError):
        return sanitize("git failed: " + " ".join(str(exc.stderr or exc).split()))
    if isinstance(exc, OSError):
        return f"writing {repo_dir} failed: {exc}"
    return str(exc) or type(exc).__name__


def _raw_remote_url(session: GitSession, remote: str) -> str | None:
    """The remote's URL as configured, credentials included: only to decide which Secret to name."""
    try:
        return str(session.repo.git.remote("get-url", remote))
    except GitCommandError:
        return None


def _push(
    session: GitSession,
    writer: _Writer,
    result: WriteResult,
    remote: str,
    branch: str,
    max_attempts: int,
) -> None:
    """Push, then report the commits as they are on the remote (rebasing changes ids)."""
    start = session.head()

    def redo() -> None:
        # the rebase conflicted: write the plan again on top of the remote branch
        fresh = WriteResult(repo_dir=result.repo_dir, fmt=result.fmt, plan_id=result.plan_id)
        writer.run(writer.desired(), fresh)
        result.commits = fresh.commits
        result.changed_clusters = fresh.changed_clusters
        result.bases_changed = fresh.bases_changed

    outcome = session.push(remote, branch, max_attempts=max_attempts, redo=redo)
    result.pushed = True
    result.push_attempts = outcome.attempts
    if result.commits and (outcome.rebased or session.head() != start):
        result.commits = _commits_of(session, result.plan_id, len(result.commits))


def _commits_of(session: GitSession, plan_id: str, limit: int) -> list[CommitInfo]:
    """The newest ``limit`` commits if they carry ``Berth-Plan: plan_id`` (stops at the first
    that does not: a rebase drops commits the remote already had), oldest first."""
    sep = "\x1e"
    log = session.repo.git.log(f"-{limit}", f"--format=%H%x00%B{sep}")
    found: list[CommitInfo] = []
    for chunk in log.split(sep):
        chunk = chunk.strip("\n")
        if not chunk:
            continue
        sha, _, message = chunk.partition("\x00")
        if f"Berth-Plan: {plan_id}" not in message:
            break
        cluster = None
        for line in message.splitlines():
            if line.startswith("Berth-Cluster: "):
                cluster = line.removeprefix("Berth-Cluster: ").strip()
        found.append(CommitInfo(sha=sha.strip(), cluster=cluster, message=message.strip() + "\n"))
    return list(reversed(found))
