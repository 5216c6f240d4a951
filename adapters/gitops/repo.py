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
import shutil
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from types import TracebackType

from filelock import FileLock, Timeout
from git import GitCommandError, InvalidGitRepositoryError, NoSuchPathError, Repo
from tenacity import Retrying, retry_if_exception_type, stop_after_attempt, wait_exponential

from engine import GitOpsError, redact, strip_userinfo

__all__ = ["DEFAULT_AUTHOR", "GitSession", "PushOutcome", "sanitize"]

DEFAULT_AUTHOR = ("Berth", "berth@localhost")
LOCK_NAME = "berth.lock"
#: Beside the lock while a Berth holds the clone: its pid (left behind when it is killed).
HOLDER_NAME = "berth.holder"
#: How long a writer waits for another writer of the same clone to finish.
LOCK_WAIT_SECONDS = 30.0
#: Present while a write is in progress: ``<head sha or empty> <branch>``.
WRITE_MARKER = "berth-write-in-progress"
#: The folders Berth owns in a clone (what a restore cleans).
OWNED = ("clusters", "bases")


def sanitize(text: str) -> str:
    """``text`` with the userinfo of every URL in it replaced by ``***`` (:func:`engine.redaction.redact`)."""
    return redact(text)


def _git_error(action: str, exc: GitCommandError) -> GitOpsError:
    detail = (exc.stderr or exc.stdout or "").strip().replace("stderr: ", "")
    detail = " ".join(detail.split())
    return GitOpsError(sanitize(f"{action} failed: {detail or exc}"))


class _Refused(Exception):
    """One refused push, retried by tenacity; ``error`` says why, for when every attempt failed."""

    def __init__(self, error: GitOpsError) -> None:
        super().__init__(str(error))
        self.error = error


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
        self._lock: FileLock | None = None
        self.previous_died = False
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
        try:
            self.path.mkdir(parents=True, exist_ok=True)
            return Repo.init(self.path, initial_branch="main")
        except GitCommandError as exc:
            raise _git_error(f"git init {self.path}", exc) from None
        except OSError as exc:
            raise GitOpsError(f"cannot create the repository {self.path}: {exc.strerror or exc}") from None

    def _take_lock(self) -> None:
        """Hold ``.git/berth.lock`` (``flock``: the kernel lets go when the holder dies, even by kill -9)."""
        lock = FileLock(Path(self.repo.git_dir) / LOCK_NAME, timeout=LOCK_WAIT_SECONDS)
        try:
            lock.acquire()
        except Timeout:
            raise GitOpsError(
                f"another Berth writer holds {lock.lock_file} for more than {LOCK_WAIT_SECONDS:g}s; "
                "try again when it is done"
            ) from None
        except OSError as exc:
            raise GitOpsError(f"cannot lock {lock.lock_file}: {exc.strerror or exc}; nothing was written") from None
        self._lock = lock
        # a holder note left behind means the Berth that held the clone before died in it
        holder = self.git_dir / HOLDER_NAME
        self.previous_died = _stale(Path(lock.lock_file))
        tmp = holder.with_name(HOLDER_NAME + ".tmp")
        try:
            tmp.write_text(str(os.getpid()), encoding="utf-8")
            os.replace(tmp, holder)
        except OSError as exc:
            lock.release()
            self._lock = None
            raise GitOpsError(f"cannot write {holder}: {exc.strerror or exc}; nothing was written") from None

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
            (self.git_dir / HOLDER_NAME).unlink(missing_ok=True)
            self._lock.release()
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

    def require_writable(self, paths: list[str]) -> None:
        """Refuse a clone Berth cannot write (read-only file system, permissions) before any write."""
        folders = [self.path, self.git_dir, self.git_dir / "objects"]
        folders += [self.path / p for p in paths if (self.path / p).is_dir()]
        for folder in folders:
            try:
                fd, probe = tempfile.mkstemp(prefix=".berth-check-", dir=folder)
                os.close(fd)
                os.unlink(probe)
            except OSError as exc:
                raise GitOpsError(
                    f"{self.path} is not writable ({folder}: {exc.strerror or exc}); nothing was written"
                ) from None

    def prepare(self, paths: list[str]) -> None:
        """Ready for a write of ``paths``: a killed write undone, nothing uncommitted there, writable."""
        self.recover_interrupted_write()
        self.require_clean(paths)
        self.require_writable(paths)

    def sync_with_remote(self, remote: str, branch: str) -> None:
        """Fast-forward the clone to ``remote``'s ``branch``, so that a plan starts from what it holds.

        A remote without the branch holds nothing yet: the clone stays as it is (its commits are
        the first to be pushed). The work is marked like a write, so a kill is undone.

        Raises:
            GitOpsError: the remote cannot be read, or the clone has commits the remote lacks
                (local work that was never pushed: Berth will not plan over it or drop it).
        """
        git = self.repo.git
        tracking = f"refs/remotes/{remote}/{branch}"
        try:
            listed = git.ls_remote(remote, f"refs/heads/{branch}").strip()
        except GitCommandError as exc:
            raise _git_error(f"git ls-remote {remote}", exc) from None
        if not listed:
            return
        head = self.head()
        self.begin_write(head, branch)
        try:
            git.fetch("-q", remote, f"+refs/heads/{branch}:{tracking}")
            remote_head = git.rev_parse(tracking)
            if head is not None and head != remote_head:
                ahead = int(git.rev_list("--count", f"{tracking}..HEAD"))
                if ahead:
                    raise GitOpsError(
                        f"{self.path} has {ahead} commit(s) on {branch} that {remote} does not have; "
                        f"push them or drop them (git reset --hard {remote}/{branch}) first; nothing was written"
                    )
            if head != remote_head:
                git.merge("--ff-only", "-q", tracking)
        except GitCommandError as exc:
            self.undo(head, branch)
            raise _git_error(f"updating {self.path} from {remote}/{branch}", exc) from None
        except BaseException:
            self.undo(head, branch)
            raise
        self.end_write()

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
        """Put the clone back to ``head`` with a clean work tree (after any failure).

        Raises:
            GitOpsError: git could not do it (the reason is git's); the caller keeps its marker.
        """
        git = self.repo.git
        try:
            for marker in ("rebase-merge", "rebase-apply"):
                if (self.git_dir / marker).exists():
                    with contextlib.suppress(GitCommandError):
                        git.rebase("--abort")
                    shutil.rmtree(self.git_dir / marker, ignore_errors=True)
            if head is not None:
                git.reset("-q", "--hard", head)
            else:
                with contextlib.suppress(GitCommandError):  # absent when nothing was committed
                    git.update_ref("-d", f"refs/heads/{branch}")
                git.read_tree("--empty")
            git.clean("-q", "-f", "-d", "--", *OWNED)
        except GitCommandError as exc:
            raise _git_error(f"restoring {self.path} to {head or 'its empty branch'}", exc) from None

    def is_restored(self, head: str | None) -> bool:
        """Whether the clone is exactly at ``head``: nothing staged, nothing changed or stray in what Berth owns."""
        if self.head() != head or any((self.git_dir / m).exists() for m in ("rebase-merge", "rebase-apply")):
            return False
        out = self.repo.git.status("--porcelain", "--untracked-files=all")
        return all(line[0] in " ?" and not line[3:].startswith(OWNED) for line in out.splitlines() if line)

    def undo(self, head: str | None, branch: str) -> None:
        """Restore ``head`` and only then drop the write marker: a marker outlives any failed restore.

        Raises:
            GitOpsError: the clone could not be verified clean at ``head``; the marker stays, so
                the next run tries again.
        """
        self.restore(head, branch)
        if not self.is_restored(head):
            raise GitOpsError(f"{self.path} could not be put back to {head or 'its empty branch'}; "
                              f"it keeps .git/{WRITE_MARKER} so that the next run tries again")
        self.end_write()

    def begin_write(self, head: str | None, branch: str) -> None:
        """Note that a write starts from ``head``, so that a crash can be undone (the note is atomic)."""
        marker = self.git_dir / WRITE_MARKER
        tmp = marker.with_name(marker.name + ".tmp")
        tmp.write_text(f"{head or ''} {branch} {os.getpid()}\n", encoding="utf-8")
        os.replace(tmp, marker)

    def end_write(self) -> None:
        (self.git_dir / WRITE_MARKER).unlink(missing_ok=True)

    def recover_interrupted_write(self) -> bool:
        """Undo a write that a kill interrupted (its marker is still there), at any instant.

        Holding ``berth.lock`` proves the marker's writer is gone. Git processes it left running in
        the clone are waited for (up to :data:`LOCK_WAIT_SECONDS`); lock files git left behind
        (``index.lock``, ``HEAD.lock``, ref locks) are then stale and removed. The clone goes back
        to the commit the interrupted write started from: its commits that were not pushed and its
        half-written files are dropped. The marker is removed only once the clone is verified
        clean. Returns whether there was anything to recover.

        Raises:
            GitOpsError: the clone could not be recovered (the marker stays).
        """
        marker = self.git_dir / WRITE_MARKER
        (self.git_dir / (WRITE_MARKER + ".tmp")).unlink(missing_ok=True)
        if self.previous_died or marker.is_file():
            self._clear_git_locks()
        if not marker.is_file():
            return False
        # "<head or nothing> <branch> <pid>" (older Berth: no pid); an empty head is an unborn branch
        head, branch = [*marker.read_text(encoding="utf-8").rstrip("\n").split(" "), "", ""][:2]
        self.undo(head or None, branch or self.branch())
        return True

    def _clear_git_locks(self) -> None:
        """After a Berth died in this clone: wait for the git it ran, then drop the locks git left."""
        deadline = time.monotonic() + LOCK_WAIT_SECONDS
        while _git_processes_in(self.path) and time.monotonic() < deadline:
            time.sleep(0.1)
        for stale in [self.git_dir / "index.lock", self.git_dir / "HEAD.lock", self.git_dir / "packed-refs.lock",
                      *(self.git_dir / "refs").rglob("*.lock")]:
            stale.unlink(missing_ok=True)

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
        attempts = max(1, max_attempts)
        state = {"attempt": 0, "rebased": False}

        def attempt() -> PushOutcome:
            state["attempt"] += 1
            n = state["attempt"]
            if n > 1:  # the last push was refused: catch up with the remote first
                state["rebased"] |= self._catch_up(remote, branch, tracking, owned, redo)
            try:
                git.push("--porcelain", remote, f"HEAD:refs/heads/{branch}")
            except GitCommandError as exc:
                raise _Refused(_git_error(f"git push to {remote} (attempt {n}/{attempts})", exc)) from None
            return PushOutcome(n, bool(state["rebased"]))

        retrying = Retrying(stop=stop_after_attempt(attempts), wait=wait_exponential(multiplier=0.2, max=2.0),
                            retry=retry_if_exception_type(_Refused), sleep=sleep, reraise=True)
        try:
            return retrying(attempt)
        except _Refused as refused:
            raise refused.error from None

    def _catch_up(self, remote: str, branch: str, tracking: str, owned: tuple[str, ...],
                  redo: Callable[[], None]) -> bool:
        """After a refused push: fetch, then rebase onto the remote or write the plan again on top of
        it (see :meth:`push`). False when the fetch failed (the next push is tried as it is)."""
        git = self.repo.git
        try:
            git.fetch("-q", remote, f"+refs/heads/{branch}:{tracking}")
        except GitCommandError:
            return False
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
        return True

    def _remote_touched(self, tracking: str, owned: tuple[str, ...]) -> bool:
        """Whether commits on ``tracking`` that HEAD lacks change any of ``owned``."""
        git = self.repo.git
        try:
            base = git.merge_base("HEAD", tracking)
        except GitCommandError:
            return True  # unrelated histories: start over on top of the remote
        return bool(git.diff("--name-only", base, tracking, "--", *owned).strip())


def _stale(lock: Path) -> bool:
    """Whether the Berth that held the clone of ``lock`` died holding it (its holder note, beside
    the lock, names a process that is gone)."""
    holder = lock.with_name(HOLDER_NAME)
    try:
        pid = int(holder.read_text(encoding="utf-8").strip() or "0")
    except FileNotFoundError:
        return False
    except (OSError, ValueError):
        return True
    if pid <= 0 or pid == os.getpid():
        return pid <= 0
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    except PermissionError:
        return False
    return False


def _git_processes_in(work_tree: Path) -> list[int]:
    """Git processes (other than this one's) whose working folder is inside ``work_tree`` (Linux ``/proc``)."""
    found: list[int] = []
    root = str(work_tree.resolve())
    for entry in Path("/proc").glob("[0-9]*"):
        try:
            if int(entry.name) == os.getpid() or not (entry / "comm").read_text().startswith("git"):
                continue
            cwd = os.readlink(entry / "cwd")
        except (OSError, ValueError):
            continue
        if cwd == root or cwd.startswith(root + "/"):
            found.append(int(entry.name))
    return found


@contextlib.contextmanager
def session(path: Path, *, create: bool) -> Iterator[GitSession]:
    """``with session(path, create=True) as s:`` — a :class:`GitSession` that is always closed."""
    s = GitSession(path, create=create)
    try:
        yield s
    finally:
        s.close()
