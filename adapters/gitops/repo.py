"""The local clone: open or create it, commit paths, push with bounded retries, restore.

Every function takes a :class:`GitSession`, which owns one gitpython ``Repo``
for the duration of one ``with`` block (gitpython leaks ``git cat-file``
processes unless a Repo is closed; a session is never shared across threads)
and holds ``.git/berth.lock`` so that two Berth writers never interleave in
one clone. Git runs with ``GIT_TERMINAL_PROMPT=0`` (never waits for a
password) and, where no identity is configured, as ``Berth <berth@localhost>``.
Messages that reach the user pass through :func:`sanitize`, which strips
credentials from URLs.
"""

from __future__ import annotations

import contextlib
import os
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from types import TracebackType

from git import GitCommandError, InvalidGitRepositoryError, NoSuchPathError, Repo

from engine.errors import GitOpsError
from engine.redact import redact, strip_userinfo

__all__ = ["DEFAULT_AUTHOR", "GitSession", "PushOutcome", "sanitize"]

DEFAULT_AUTHOR = ("Berth", "berth@localhost")
LOCK_NAME = "berth.lock"
#: How long a writer waits for another writer of the same clone to finish.
LOCK_WAIT_SECONDS = 30.0
#: Present while a write is in progress: ``<head sha or empty> <branch>``.
WRITE_MARKER = "berth-write-in-progress"


def sanitize(text: str) -> str:
    """``text`` with the userinfo of every URL in it replaced by ``***`` (:func:`engine.redact.redact`)."""
    return redact(text)


def _git_error(action: str, exc: GitCommandError) -> GitOpsError:
    detail = (exc.stderr or exc.stdout or "").strip().replace("stderr: ", "")
    detail = " ".join(detail.split())
    return GitOpsError(sanitize(f"{action} failed: {detail or exc}"))


class PushOutcome:
    """What a push did: the attempts it took and the upstream it landed on."""

    def __init__(self, attempts: int, rebased: bool) -> None:
        self.attempts = attempts
        self.rebased = rebased


class GitSession:
    """One writer's hold on a clone, as a context manager.

    Args:
        path: the clone. Created (``git init -b main``) when ``create`` is true and
            it is missing or an empty folder.
        create: whether to initialise a missing repository.

    Raises:
        GitOpsError: the folder is not a repository (and may not be created), or
            another Berth writer holds the lock.
    """

    def __init__(self, path: Path, *, create: bool) -> None:
        self.path = Path(path)
        self.repo = self._open(create)
        self._lock: Path | None = None
        try:
            self._take_lock()
            self._configure()
        except BaseException:
            self.repo.close()
            raise

    # --- lifecycle ---------------------------------------------------------------

    def _open(self, create: bool) -> Repo:
        try:
            return Repo(self.path)
        except (InvalidGitRepositoryError, NoSuchPathError):
            pass
        if not create:
            raise GitOpsError(f"{self.path} is not a git repository")
        if self.path.exists() and any(self.path.iterdir()):
            raise GitOpsError(
                f"{self.path} is a non-empty folder that is not a git repository; "
                "give an existing clone or a new path"
            )
        self.path.mkdir(parents=True, exist_ok=True)
        try:
            return Repo.init(self.path, initial_branch="main")
        except GitCommandError as exc:
            raise _git_error(f"git init {self.path}", exc) from None

    def _take_lock(self) -> None:
        lock = Path(self.repo.git_dir) / LOCK_NAME
        deadline = time.monotonic() + LOCK_WAIT_SECONDS
        while True:
            try:
                fd = os.open(lock, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644)
            except FileExistsError:
                if _stale(lock):
                    lock.unlink(missing_ok=True)
                    continue
                if time.monotonic() >= deadline:
                    raise GitOpsError(
                        f"another Berth writer holds {lock}; wait for it, or remove the file "
                        "if no Berth process is running"
                    ) from None
                time.sleep(0.1)
                continue
            with os.fdopen(fd, "w") as handle:
                handle.write(str(os.getpid()))
            self._lock = lock
            return

    def _configure(self) -> None:
        env = {"GIT_TERMINAL_PROMPT": "0", "GIT_EDITOR": "true"}
        reader = self.repo.config_reader()
        try:
            has_name = reader.has_option("user", "name")
            has_email = reader.has_option("user", "email")
        finally:
            reader.release()
        if not (has_name and has_email):
            name, email = DEFAULT_AUTHOR
            env |= {
                "GIT_AUTHOR_NAME": name,
                "GIT_AUTHOR_EMAIL": email,
                "GIT_COMMITTER_NAME": name,
                "GIT_COMMITTER_EMAIL": email,
            }
        self.repo.git.update_environment(**env)

    def close(self) -> None:
        if self._lock is not None:
            self._lock.unlink(missing_ok=True)
            self._lock = None
        self.repo.close()

    def __enter__(self) -> GitSession:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    # --- state --------------------------------------------------------------------

    @property
    def git_dir(self) -> Path:
        return Path(self.repo.git_dir)

    def head(self) -> str | None:
        """The commit HEAD points at, ``None`` on an unborn branch."""
        try:
            return self.repo.git.rev_parse("--verify", "-q", "HEAD")
        except GitCommandError:
            return None

    def branch(self) -> str:
        """The checked-out branch (also when it has no commit yet)."""
        try:
            return self.repo.git.symbolic_ref("--short", "-q", "HEAD")
        except GitCommandError:
            raise GitOpsError(
                f"{self.path} has a detached HEAD; check out the branch Berth should write to"
            ) from None

    def remote_url(self, remote: str) -> str | None:
        """The fetch URL of ``remote`` without credentials, ``None`` if there is none."""
        try:
            return strip_userinfo(self.repo.git.remote("get-url", remote))
        except GitCommandError:
            return None

    def require_clean(self, paths: list[str]) -> None:
        """Refuse to write over uncommitted work: nothing staged, nothing changed in ``paths``."""
        out = self.repo.git.status("--porcelain", "--untracked-files=all")
        problems: list[str] = []
        for line in out.splitlines():
            if len(line) < 4:
                continue
            staged, path = line[0], line[3:].strip('"')
            inside = any(path == p or path.startswith(p.rstrip("/") + "/") for p in paths)
            if staged not in " ?" or inside:
                problems.append(path)
        if problems:
            shown = ", ".join(sorted(problems)[:10])
            raise GitOpsError(
                f"{self.path} has uncommitted changes ({shown}); commit or discard them first"
            )

    # --- writing ----------------------------------------------------------------

    def commit_paths(self, paths: list[str], message: str) -> str | None:
        """Stage everything under ``paths`` and commit it; ``None`` when nothing changed."""
        try:
            self.repo.git.add("-A", "--", *paths)
            if self.head() is not None:
                with contextlib.suppress(GitCommandError):
                    self.repo.git.diff("--cached", "--quiet")
                    return None  # exit status 0: nothing staged
            elif not self.repo.git.ls_files("--cached").strip():
                return None
            message_file = self.git_dir / "BERTH_COMMIT_MSG"
            message_file.write_text(message, encoding="utf-8")
            try:
                self.repo.git.commit("-q", "--cleanup=strip", "-F", str(message_file))
            finally:
                message_file.unlink(missing_ok=True)
            return self.repo.git.rev_parse("HEAD")
        except GitCommandError as exc:
            raise _git_error("git commit", exc) from None

    def restore(self, head: str | None, branch: str) -> None:
        """Put the clone back to ``head`` with a clean work tree (after any failure)."""
        git = self.repo.git
        for marker in ("rebase-merge", "rebase-apply"):
            if (self.git_dir / marker).exists():
                with contextlib.suppress(GitCommandError):
                    git.rebase("--abort")
        with contextlib.suppress(GitCommandError):
            if head is not None:
                git.reset("-q", "--hard", head)
            else:
                with contextlib.suppress(GitCommandError):
                    git.update_ref("-d", f"refs/heads/{branch}")
                git.read_tree("--empty")
        with contextlib.suppress(GitCommandError):
            git.clean("-q", "-f", "-d", "--", "clusters", "bases")

    def begin_write(self, head: str | None, branch: str) -> None:
        """Note that a write starts from ``head``, so that a crash can be undone."""
        (self.git_dir / WRITE_MARKER).write_text(f"{head or ''} {branch}\n", encoding="utf-8")

    def end_write(self) -> None:
        (self.git_dir / WRITE_MARKER).unlink(missing_ok=True)

    def recover_interrupted_write(self) -> bool:
        """Undo a write that a crash interrupted (its marker is still there).

        Its commits that were not pushed and its half-written files are dropped:
        the clone goes back to the commit the interrupted write started from.
        Returns whether there was anything to recover.
        """
        marker = self.git_dir / WRITE_MARKER
        if not marker.is_file():
            return False
        head, _, branch = marker.read_text(encoding="utf-8").rstrip("\n").partition(" ")
        self.restore(head.strip() or None, branch.strip() or self.branch())
        marker.unlink(missing_ok=True)
        return True

    # --- pushing ------------------------------------------------------------------

    def push(
        self,
        remote: str,
        branch: str,
        *,
        max_attempts: int,
        redo: Callable[[], None],
        owned: tuple[str, ...] = ("clusters", "bases"),
        sleep: Callable[[float], None] = time.sleep,
    ) -> PushOutcome:
        """Push ``branch`` to ``remote``; never force.

        When the push is refused, fetch the remote branch and try again, up to
        ``max_attempts`` pushes. If the remote's new commits touch none of the
        ``owned`` paths, the local commits are rebased onto them. If they do (or
        the rebase conflicts), the local branch is moved to the remote one and
        ``redo`` writes and commits the plan again on top of it: the plan is the
        desired state of those folders, and a textual merge of two plans is a
        placement nobody solved. Either way the other writer's commits stay in
        the history.

        Raises:
            GitOpsError: every attempt failed; the message says why the last one did.
        """
        git = self.repo.git
        tracking = f"refs/remotes/{remote}/{branch}"
        last: GitOpsError | None = None
        rebased = False
        for attempt in range(1, max(1, max_attempts) + 1):
            try:
                git.push("--porcelain", remote, f"HEAD:refs/heads/{branch}")
                return PushOutcome(attempt, rebased)
            except GitCommandError as exc:
                last = _git_error(f"git push to {remote} (attempt {attempt}/{max_attempts})", exc)
            if attempt >= max_attempts:
                break
            sleep(min(2.0, 0.1 * 2**attempt))
            try:
                git.fetch("-q", remote, f"+refs/heads/{branch}:{tracking}")
            except GitCommandError as exc:
                last = _git_error(f"git fetch from {remote}", exc)
                continue
            if self._remote_touched(tracking, owned):
                git.reset("-q", "--hard", tracking)
                redo()
            else:
                try:
                    git.rebase("-q", tracking)
                except GitCommandError:
                    with contextlib.suppress(GitCommandError):
                        git.rebase("--abort")
                    git.reset("-q", "--hard", tracking)
                    redo()
            rebased = True
        assert last is not None
        raise last

    def _remote_touched(self, tracking: str, owned: tuple[str, ...]) -> bool:
        """Whether commits on ``tracking`` that HEAD lacks change any of ``owned``."""
        git = self.repo.git
        try:
            base = git.merge_base("HEAD", tracking)
        except GitCommandError:
            return True  # unrelated histories: start over on top of the remote
        return bool(git.diff("--name-only", base, tracking, "--", *owned).strip())


def _stale(lock: Path) -> bool:
    """A lock whose writer process is gone (or unreadable) is stale."""
    try:
        pid = int(lock.read_text().strip() or "0")
    except (OSError, ValueError):
        return True
    if pid <= 0:
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    except PermissionError:
        return False
    return False


@contextlib.contextmanager
def session(path: Path, *, create: bool) -> Iterator[GitSession]:
    """``with session(path, create=True) as s:`` — a :class:`GitSession` that is always closed."""
    s = GitSession(path, create=create)
    try:
        yield s
    finally:
        s.close()
