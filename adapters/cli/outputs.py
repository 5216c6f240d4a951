"""Files a command writes: checked before anything is written, never half-written, never replacing
what is not a regular file.

A command checks each output when it starts (:meth:`Output.check`: exit 2 naming the option if the
path cannot be written), stages the text once it has it (:meth:`Output.stage`: a full temporary
file beside the target, so a full disk fails *before* anything reaches git) and publishes it last
(:meth:`Output.publish`: one rename). ``-`` is standard output. A path that is (or links to) a
character device or a FIFO, such as ``/dev/stdout`` or ``/dev/null``, is written through, never
replaced by a regular file; a folder, a block device or a socket is refused.
"""

from __future__ import annotations

import contextlib
import os
import stat
import sys
import tempfile
from pathlib import Path
from typing import Literal

from engine import BerthError, InputError

__all__ = ["STDOUT", "Output", "atomic_write"]

#: The value of ``--output`` that means standard output.
STDOUT = "-"
Kind = Literal["stdout", "stream", "file"]


def _reason(exc: OSError) -> str:
    return exc.strerror or str(exc)


def _file_mode(existing: Path) -> int:
    """The mode a replaced file keeps, or what ``open()`` would give a new one (0666 less umask)."""
    try:
        return stat.S_IMODE(existing.stat().st_mode)
    except OSError:
        umask = os.umask(0)
        os.umask(umask)
        return 0o666 & ~umask


class Output:
    """One output of a command, as checked at the start of the run.

    Attributes:
        option: the command-line option that named it (for messages), e.g. ``--output``.
        kind: ``stdout``; ``stream`` (a character device or FIFO, written through); ``file``
            (a regular file, new or replaced by a rename).
        target: where the bytes go (symlinks to a regular file resolved: the link stays).
    """

    def __init__(self, option: str, kind: Kind, target: Path | None, shown: str) -> None:
        self.option, self.kind, self.target, self.shown = option, kind, target, shown
        self._text: str | None = None
        self._tmp: Path | None = None

    @classmethod
    def check(cls, value: Path | str | None, option: str) -> Output | None:
        """The output ``value`` names, or ``None`` when not given.

        Raises:
            InputError: the path is a folder, a block device or a socket, its folder does not
                exist, or nothing can be created there (read-only, ``/proc``, no permission).
        """
        if value is None:
            return None
        if str(value) == STDOUT:
            return cls(option, "stdout", None, "standard output")
        path = Path(value)
        shown = str(path)
        try:
            st = path.stat()  # follows symlinks, including /dev/stdout -> /proc/self/fd/1
        except FileNotFoundError:
            st = None
        except OSError as exc:
            raise InputError(f"cannot use {shown}: {_reason(exc)}", field=option) from None
        if st is not None and stat.S_ISDIR(st.st_mode):
            raise InputError(f"{shown} is a folder; give the path of a file", field=option)
        if st is not None and (stat.S_ISCHR(st.st_mode) or stat.S_ISFIFO(st.st_mode)):
            if not os.access(path, os.W_OK):
                raise InputError(f"cannot write to {shown}: permission denied", field=option)
            return cls(option, "stream", path, shown)
        if st is not None and not stat.S_ISREG(st.st_mode):
            raise InputError(f"{shown} is neither a regular file nor a character device or FIFO; "
                             "it is left alone", field=option)
        target = Path(os.path.realpath(path))
        if st is not None and not (target.exists() and os.path.samestat(target.stat(), st)):
            return cls(option, "stream", path, shown)  # a magic link (/proc/self/fd/N) to a file
        if not target.parent.is_dir():
            raise InputError(f"the folder {target.parent} does not exist; create it first", field=option)
        try:  # can a file be created beside the target (read-only file system, /proc, permissions)?
            fd, probe = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".check", dir=target.parent)
            os.close(fd)
            os.unlink(probe)
        except OSError as exc:
            raise InputError(f"cannot write {shown}: {_reason(exc)}", field=option) from None
        if st is not None and not os.access(target, os.W_OK):
            raise InputError(f"cannot write {shown}: permission denied", field=option)
        return cls(option, "file", target, shown)

    def stage(self, text: str) -> None:
        """Hold ``text`` to be published; for a file, written in full to a temporary file now.

        Raises:
            BerthError: the temporary file cannot be written (a full disk): exit 1, and the
                temporary file is gone.
        """
        self.discard()
        self._text = text
        if self.kind != "file":
            return
        assert self.target is not None
        fd, name = tempfile.mkstemp(prefix=f".{self.target.name}.", suffix=".tmp", dir=self.target.parent)
        tmp = Path(name)
        try:
            with os.fdopen(fd, "w", encoding="utf-8") as handle:
                handle.write(text)
                handle.flush()
                os.fsync(handle.fileno())
            os.chmod(tmp, _file_mode(self.target))
        except OSError as exc:
            tmp.unlink(missing_ok=True)
            raise BerthError(f"cannot write {self.shown} ({self.option}): {_reason(exc)}; "
                             "nothing was committed") from None
        except BaseException:
            tmp.unlink(missing_ok=True)
            raise
        self._tmp = tmp

    def publish(self) -> None:
        """Put the staged text in place: one rename for a file, a plain write otherwise."""
        text = self._text
        if text is None:
            raise RuntimeError("Output.publish before Output.stage")
        try:
            if self.kind == "stdout":
                sys.stdout.write(text)
                sys.stdout.flush()
            elif self.kind == "stream":
                assert self.target is not None
                with open(self.target, "w", encoding="utf-8") as handle:
                    handle.write(text)
            else:
                assert self.target is not None and self._tmp is not None
                os.replace(self._tmp, self.target)
                self._tmp = None
        except OSError as exc:
            self.discard()
            raise BerthError(f"cannot write {self.shown} ({self.option}): {_reason(exc)}") from None
        self._text = None

    def write(self, text: str) -> None:
        """Stage and publish at once (when nothing else is written in between)."""
        self.stage(text)
        self.publish()

    def discard(self) -> None:
        """Drop what was staged (the run failed after staging)."""
        if self._tmp is not None:
            with contextlib.suppress(OSError):
                self._tmp.unlink()
            self._tmp = None
        self._text = None


def atomic_write(path: Path, text: str) -> None:
    """Write ``text`` to ``path`` via a temporary file and a rename: never half-written.

    A missing parent folder is created (the service's state file). A path that is, or links to, a
    character device or FIFO is written through; a folder or other special file is refused
    (``InputError``): a rename never replaces what is not a regular file.
    """
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    out = Output.check(path, str(path))
    assert out is not None
    out.write(text)
