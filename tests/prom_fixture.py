"""A real Prometheus for tests: backfill OpenMetrics with promtool, serve it, stop it.

Not a conftest (the lead owns ``tests/conftest.py``): test modules import
:func:`running_prometheus` and :class:`OpenMetrics` and wrap them in their own
fixtures. Prometheus listens on 127.0.0.1 on a free port with a temporary
storage directory; it scrapes nothing, so the only data is what was
backfilled. Queries must pass an explicit evaluation time at the data's time.
"""

from __future__ import annotations

import contextlib
import shutil
import socket
import subprocess
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest

__all__ = ["OpenMetrics", "free_port", "require_prometheus", "running_prometheus"]


def require_prometheus() -> None:
    """Skip (never silently pass) when the Prometheus binaries are not installed."""
    for tool in ("prometheus", "promtool"):
        if shutil.which(tool) is None:
            pytest.skip(f"{tool} is not installed (apt-get install prometheus)")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class OpenMetrics:
    """Build an OpenMetrics text of gauges, one family at a time, for ``promtool``."""

    def __init__(self) -> None:
        self._families: dict[str, list[str]] = {}

    def add(
        self,
        metric: str,
        labels: dict[str, str],
        value: float,
        times: list[float] | range,
    ) -> OpenMetrics:
        """One series with the same ``value`` at every timestamp (seconds) in ``times``."""
        self.series(metric, labels, [(t, value) for t in times])
        return self

    def series(self, metric: str, labels: dict[str, str], points: list[tuple[float, float]]) -> None:
        """One series with the given ``(timestamp, value)`` points."""
        text = ",".join(f'{k}="{v}"' for k, v in sorted(labels.items()) if v != "")
        lines = self._families.setdefault(metric, [])
        for t, v in points:
            lines.append(f"{metric}{{{text}}} {v!r} {t:.3f}")

    def text(self) -> str:
        out: list[str] = []
        for metric, lines in self._families.items():
            out.append(f"# TYPE {metric} gauge")
            out.extend(lines)
        out.append("# EOF")
        return "\n".join(out) + "\n"


@contextlib.contextmanager
def running_prometheus(openmetrics: str, workdir: Path, *, ready_timeout: float = 30.0) -> Iterator[str]:
    """Backfill ``openmetrics`` into a fresh TSDB, start Prometheus on it, yield its URL.

    The process is killed (and waited for) when the block exits.
    """
    require_prometheus()
    data = workdir / "tsdb"
    data.mkdir(parents=True, exist_ok=True)
    source = workdir / "data.om"
    source.write_text(openmetrics)
    backfill = subprocess.run(
        ["promtool", "tsdb", "create-blocks-from", "openmetrics", str(source), str(data)],
        capture_output=True,
        text=True,
        timeout=120,
    )
    if backfill.returncode != 0:
        raise RuntimeError(f"promtool failed: {backfill.stderr.strip()[-2000:]}")
    config = workdir / "prometheus.yml"
    config.write_text("global:\n  scrape_interval: 1h\nscrape_configs: []\n")
    port = free_port()
    log = (workdir / "prometheus.log").open("w")
    proc = subprocess.Popen(
        [
            "prometheus",
            f"--config.file={config}",
            f"--storage.tsdb.path={data}",
            f"--web.listen-address=127.0.0.1:{port}",
            "--storage.tsdb.retention.time=3650d",
        ],
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + ready_timeout
        while True:
            if proc.poll() is not None:
                raise RuntimeError(
                    "prometheus exited: " + (workdir / "prometheus.log").read_text()[-2000:]
                )
            try:
                with urllib.request.urlopen(f"{url}/-/ready", timeout=1) as resp:
                    if resp.status == 200:
                        break
            except OSError:
                pass
            if time.monotonic() > deadline:
                raise RuntimeError(f"prometheus not ready after {ready_timeout} s")
            time.sleep(0.2)
        yield url
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=10)
        log.close()
