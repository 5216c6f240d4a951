"""The plans a GitOps repository has committed, read from git, and the placement at any commit.

Every commit Berth writes carries ``Berth-Plan:`` (the plan's digest) and
``Berth-Input-Digest:``; a plan is written as a run of consecutive commits (bases,
then one per cluster). :func:`read_history` groups those runs, newest first, so
``berth history`` can list them and ``berth rollback --to`` can name one. The
placement "right after" a plan is read from the tree of its newest commit, with
the same reader as the work tree (:mod:`adapters.gitops.reader`), so a rollback
restores exactly what the clusters were applying then.
"""

from __future__ import annotations

import contextlib
import io
import re
import subprocess
import tarfile
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

from adapters.gitops.layout import CLUSTERS_DIR
from adapters.gitops.reader import read_current
from adapters.gitops.writer import EXTRA_TRAILERS
from engine import GitOpsError, InputError

__all__ = [
    "ROLLBACK_TRAILER",
    "HistoryCommit",
    "PlanRecord",
    "Target",
    "placement_at",
    "read_history",
    "resolve_target",
    "rollback_trailers",
]

#: trailer a rollback commit carries: the plan (``Berth-Plan`` digest) or commit it restores
ROLLBACK_TRAILER = "Berth-Rollback-To"
_HEX = re.compile(r"^(sha256:)?[0-9a-f]{4,64}$")


@dataclass(frozen=True)
class HistoryCommit:
    """One commit of a plan: ``cluster`` is ``None`` for a ``bases/`` commit."""

    sha: str
    date: str
    subject: str
    cluster: str | None


@dataclass
class PlanRecord:
    """One committed plan: its commits (newest first) and what the fleet ran right after it."""

    plan_id: str
    input_digest: str
    commits: list[HistoryCommit] = field(default_factory=list)
    rollback_to: str | None = None
    placement: dict[str, dict[str, int]] = field(default_factory=dict)

    @property
    def last_commit(self) -> str:
        return self.commits[0].sha

    @property
    def date(self) -> str:
        return self.commits[0].date

    @property
    def clusters(self) -> list[str]:
        return sorted({c.cluster for c in self.commits if c.cluster})

    def to_dict(self) -> dict[str, object]:
        return {
            "plan": self.plan_id,
            "inputDigest": self.input_digest,
            "date": self.date,
            "rollbackTo": self.rollback_to,
            "clusters": self.clusters,
            "commits": [{"sha": c.sha, "cluster": c.cluster, "subject": c.subject} for c in self.commits],
            "workloads": len(self.placement),
            "replicas": sum(sum(per.values()) for per in self.placement.values()),
            "placement": self.placement,
        }


@dataclass(frozen=True)
class Target:
    """What ``--to`` named: the commit whose tree is restored, and the plan when one was named."""

    commit: str
    label: str
    plan: PlanRecord | None = None


def _git(repo_dir: Path, *args: str) -> subprocess.CompletedProcess[bytes]:
    return subprocess.run(["git", "-C", str(repo_dir), *args], capture_output=True, check=False)


def _require_repo(repo_dir: Path) -> None:
    if not Path(repo_dir).is_dir():
        raise InputError("no such folder", file=str(repo_dir), field="--gitops-repo")
    proc = _git(repo_dir, "rev-parse", "--git-dir")
    if proc.returncode != 0:
        raise InputError("not a git repository", file=str(repo_dir), field="--gitops-repo")


def _trailer_values(message: str) -> dict[str, str]:
    """``Key: value`` lines of the message's last paragraph (git's trailer block)."""
    last = message.strip().split("\n\n")[-1]
    out: dict[str, str] = {}
    for line in last.splitlines():
        key, sep, value = line.partition(": ")
        if sep and key.startswith("Berth-"):
            out[key] = value.strip()
    return out


def _log(repo_dir: Path) -> list[tuple[HistoryCommit, dict[str, str]]]:
    """First-parent log of HEAD, newest first, with each commit's Berth trailers."""
    if _git(repo_dir, "rev-parse", "--verify", "-q", "HEAD").returncode != 0:
        return []  # no commit yet
    proc = _git(repo_dir, "log", "--first-parent", "--format=%H%x1f%cI%x1f%s%x1f%B%x1e", "HEAD")
    if proc.returncode != 0:
        raise GitOpsError(f"{repo_dir}: git log failed: {proc.stderr.decode(errors='replace').strip()}")
    out: list[tuple[HistoryCommit, dict[str, str]]] = []
    for chunk in proc.stdout.decode("utf-8", errors="replace").split("\x1e"):
        chunk = chunk.strip("\n")
        if not chunk:
            continue
        sha, date, subject, body = [*chunk.split("\x1f", 3), "", "", ""][:4]
        trailers = _trailer_values(body)
        commit = HistoryCommit(sha=sha, date=date, subject=subject, cluster=trailers.get("Berth-Cluster"))
        out.append((commit, trailers))
    return out


@contextlib.contextmanager
def _tree_of(repo_dir: Path, rev: str) -> Iterator[Path]:
    """A temporary folder holding ``clusters/`` as it is in commit ``rev``."""
    with tempfile.TemporaryDirectory(prefix="berth-history-") as tmp:
        root = Path(tmp)
        if _git(repo_dir, "cat-file", "-e", f"{rev}:{CLUSTERS_DIR}").returncode == 0:
            proc = _git(repo_dir, "archive", "--format=tar", rev, "--", CLUSTERS_DIR)
            if proc.returncode != 0:
                raise GitOpsError(f"{repo_dir}: git archive {rev} failed: "
                                  f"{proc.stderr.decode(errors='replace').strip()}")
            with tarfile.open(fileobj=io.BytesIO(proc.stdout)) as tar:
                tar.extractall(root, filter="data")
        yield root


def placement_at(repo_dir: Path, rev: str) -> dict[str, dict[str, int]]:
    """``{"ns/name": {cluster: replicas}}`` as the tree of commit ``rev`` says (overlays applied)."""
    with _tree_of(repo_dir, rev) as root:
        return read_current(root)


def read_history(repo_dir: Path, *, with_placement: bool = True) -> list[PlanRecord]:
    """The plans committed on HEAD's first-parent line, newest first.

    A run of consecutive commits with the same ``Berth-Plan`` (and rollback trailer)
    is one plan; a commit without the trailer (a person's edit) ends a run.

    Raises:
        InputError: ``repo_dir`` is missing or not a git repository.
    """
    _require_repo(repo_dir)
    plans: list[PlanRecord] = []
    previous: tuple[str, str | None] | None = None
    for commit, trailers in _log(repo_dir):
        pid = trailers.get("Berth-Plan")
        if pid is None:
            previous = None
            continue
        key = (pid, trailers.get(ROLLBACK_TRAILER))
        if key != previous:
            plans.append(PlanRecord(plan_id=pid, input_digest=trailers.get("Berth-Input-Digest", ""),
                                    rollback_to=trailers.get(ROLLBACK_TRAILER)))
            previous = key
        plans[-1].commits.append(commit)
    if with_placement:
        for plan in plans:
            plan.placement = placement_at(repo_dir, plan.last_commit)
    return plans


def resolve_target(repo_dir: Path, to: str) -> Target:
    """The commit ``--to`` names: a plan digest (``sha256:...`` or a unique prefix of its hex)
    restores the tree right after that plan's newest commit; otherwise a commit (sha, tag, ``HEAD~2``).

    Raises:
        InputError: no committed plan and no commit matches, or a digest prefix is ambiguous.
    """
    _require_repo(repo_dir)
    wanted = to.strip().lower()
    if _HEX.match(wanted):
        hex_part = wanted.removeprefix("sha256:")
        plans = read_history(repo_dir, with_placement=False)
        ids = sorted({p.plan_id for p in plans if p.plan_id.removeprefix("sha256:").startswith(hex_part)})
        if len(ids) > 1:
            shown = ", ".join(i[:19] for i in ids)
            raise InputError(f"{to!r} matches more than one committed plan ({shown}); give more digits",
                             field="--to")
        if ids:
            plan = next(p for p in plans if p.plan_id == ids[0])  # newest time it was committed
            plan.placement = placement_at(repo_dir, plan.last_commit)
            return Target(commit=plan.last_commit, label=plan.plan_id, plan=plan)
    proc = None if to.startswith("-") else _git(repo_dir, "rev-parse", "--verify", "-q", f"{to}^{{commit}}")
    if proc is None or proc.returncode != 0:
        raise InputError(f"{to!r} is neither a committed plan's digest (see `berth history`) nor a commit",
                         file=str(repo_dir), field="--to")
    sha = proc.stdout.decode().strip()
    return Target(commit=sha, label=sha)


@contextlib.contextmanager
def rollback_trailers(target: Target) -> Iterator[None]:
    """Every commit written inside carries ``Berth-Rollback-To: <plan digest or commit>``."""
    token = EXTRA_TRAILERS.set((*EXTRA_TRAILERS.get(), (ROLLBACK_TRAILER, target.label)))
    try:
        yield
    finally:
        EXTRA_TRAILERS.reset(token)
