"""``berth serve`` as a real process (its own session, so that a kill takes its git children too).

For the crash-injection test and the service load benchmark: start the server on a free
port of 127.0.0.1, wait until it answers, kill it with SIGKILL (the whole process group,
as a container crash does), or stop it.
"""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx

__all__ = ["ServerProcess", "free_port"]

BERTH = Path(sys.executable).with_name("berth")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class ServerProcess:
    """One ``berth serve --config CONFIG`` process; ``env`` is added to the environment."""

    def __init__(self, config: Path, log: Path, env: dict[str, str] | None = None, code: Path | None = None) -> None:
        """``code``: run Berth from that source tree instead of the installed one (benchmarks: before/after)."""
        self.config, self.log_path, self.env, self.code = config, log, env or {}, code
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self, timeout: float = 60.0) -> ServerProcess:
        log = self.log_path.open("ab")
        command = [str(BERTH)]
        env = {**os.environ, **self.env}
        if self.code is not None:
            command = [sys.executable, "-c", "from adapters.cli.app import main; main()"]
            env["PYTHONPATH"] = str(self.code)
        self.proc = subprocess.Popen(
            [*command, "serve", "--config", str(self.config), "--port", str(self.port)],
            stdout=log, stderr=subprocess.STDOUT, start_new_session=True, env=env, cwd=self.config.parent,
        )
        log.close()
        deadline = time.monotonic() + timeout
        while True:
            if self.proc.poll() is not None:
                raise RuntimeError(f"berth serve exited {self.proc.returncode}: " + self.tail())
            try:
                if httpx.get(self.url + "/healthz", timeout=1).status_code == 200:
                    return self
            except httpx.HTTPError:
                pass
            if time.monotonic() > deadline:
                self.kill()
                raise RuntimeError("berth serve did not answer: " + self.tail())
            time.sleep(0.05)

    @property
    def pgid(self) -> int:
        assert self.proc is not None
        return self.proc.pid  # start_new_session: the process leads its own group

    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def kill(self) -> None:
        """SIGKILL the server and every process of its group (git included)."""
        if self.proc is None:
            return
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.pgid, signal.SIGKILL)
        self.proc.wait(timeout=30)

    def stop(self) -> None:
        """A clean shutdown (SIGTERM), then SIGKILL if it hangs."""
        if self.proc is None or self.proc.poll() is not None:
            return
        self.proc.terminate()
        try:
            self.proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            self.kill()

    def tail(self) -> str:
        try:
            return self.log_path.read_text(errors="replace")[-3000:]
        except OSError:
            return ""
