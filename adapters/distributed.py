"""Running on Dask: what-if scenarios, and the parts of a decomposed placement
(:func:`dask_solver`, ``berth place --dask``). A LocalCluster by default, a remote scheduler when given.

The local cluster runs **2 workers of 1 thread each in this process**
(``processes=False``): it starts in well under a second and CP-SAT releases
the GIL while it solves, so two scenarios really run at once on two cores.
With ``scheduler="tcp://host:8786"`` the tasks go to that cluster; its
workers need Berth installed (``pip install berth``) at the same version.

A scenario that fails (bad edit, engine error, lost worker) is reported with
its error; the others still finish.
"""

from __future__ import annotations

import contextlib
import logging
import time
from collections.abc import Callable, Iterator, Sequence
from typing import Any

import numpy as np

from engine import (
    Bundle,
    InputError,
    PartResult,
    Plan,
    Problem,
    Scenario,
    solve_decomposed,
    solve_part,
    solve_scenario,
)

__all__ = ["DaskSolver", "dask_solver", "run_scenarios"]

Point = tuple[str, Scenario, Any]


def _run_one(bundle: Bundle, scenario: Scenario, current: dict[str, dict[str, int]] | None,
             time_limit: float, baseline: Plan | None) -> dict[str, Any]:
    return solve_scenario(bundle, scenario, current=current, time_limit=time_limit, baseline=baseline)


def run_scenarios(
    bundle: Bundle,
    points: list[Point],
    *,
    current: dict[str, dict[str, int]] | None,
    time_limit: float,
    scheduler: str | None = None,
    workers: int = 2,
    on_done: Callable[[dict[str, Any]], None] | None = None,
    baseline: Plan | None = None,
) -> list[dict[str, Any]]:
    """Solve every point; results in the order of ``points``.

    ``baseline`` (the plan of ``current``) is the result of a point whose edits change nothing.

    Each result is ``{"name", "value", "summary"}`` or ``{"name", "value", "error"}``.

    Raises:
        LiveSourceError: the remote scheduler cannot be reached.
    """
    from dask.distributed import Client, LocalCluster, as_completed

    from engine import LiveSourceError

    cluster = None
    try:
        if scheduler:
            try:
                client = Client(scheduler, timeout="10s")
            except (OSError, TimeoutError) as exc:
                raise LiveSourceError(f"cannot reach the Dask scheduler {scheduler}: {exc}") from None
        else:
            # the scheduler's HTTP server binds a free port: with the default 8787, a second run on
            # the machine (another Dask, another berth whatif) gets a warning and another port anyway
            cluster = LocalCluster(n_workers=workers, threads_per_worker=1, processes=False,
                                   dashboard_address="127.0.0.1:0")
            client = Client(cluster)
        with client:
            shared = client.scatter(bundle, broadcast=True)
            futures = {
                client.submit(_run_one, shared, scenario, current, time_limit, baseline,
                              key=f"berth-scenario-{i}", pure=False): i
                for i, (_, scenario, _) in enumerate(points)
            }
            results: list[dict[str, Any] | None] = [None] * len(points)
            for future in as_completed(futures):
                i = futures[future]
                name, _, value = points[i]
                entry: dict[str, Any] = {"name": name, "value": value}
                try:
                    entry["summary"] = future.result()
                except Exception as exc:  # a failed scenario is a result
                    entry["error"] = f"{type(exc).__name__}: {exc}"
                results[i] = entry
                if on_done is not None:
                    on_done(entry)
            return [r for r in results if r is not None]
    finally:
        if cluster is not None:
            cluster.close()


@contextlib.contextmanager
def _client(scheduler: str | None, workers: int, *, processes: bool) -> Iterator[Any]:
    """A Dask client: of the scheduler at ``scheduler``, else of a LocalCluster of ``workers``
    single-threaded workers (closed on exit). An unreachable or malformed address is bad input."""
    from dask.distributed import Client, LocalCluster

    if scheduler:
        try:
            client = Client(scheduler, timeout="10s")
        except (OSError, TimeoutError, ValueError) as exc:
            raise InputError(f"cannot reach the Dask scheduler {scheduler}: {exc}; expected the address "
                             "of a running scheduler, such as tcp://host:8786", field="--dask-scheduler") from None
        with client:
            yield client
        return
    # separate processes: construction and repairs are Python (the GIL), so threads would take turns
    cluster = LocalCluster(n_workers=workers, threads_per_worker=1, processes=processes,
                           dashboard_address="127.0.0.1:0", silence_logs=logging.ERROR)
    try:
        with Client(cluster) as client:
            yield client
    finally:
        cluster.close()


def _solve_scattered(item: tuple[Problem, np.ndarray | None], seconds: float, end: float, prove: bool) -> PartResult:
    # ``end`` on the wall clock (the machines' clocks agree to NTP's precision); never more than
    # ``seconds`` from when the task starts, so a worker whose clock runs behind cannot overrun
    part, hint = item
    return solve_part(part, max(min(seconds, end - time.time()), 0.0), hint, prove=prove)


#: what a part's answer takes to come back, as a share of the part's time (its replicas per pair:
#: tens of MB at 50,000 workloads), and at least this many seconds
RETURN_SHARE, RETURN_S = 0.03, 0.5
#: when moving the parts leaves them less than this share of their time, they are not solved apart
#: (``engine.solve_decomposed`` solves the whole problem on this machine with what is left)
MIN_PART_SHARE = 0.25
#: a part that has not come back this long after its time is given up (a lost or stuck worker); its
#: workloads are re-solved on this machine
LATE_S = 5.0

log = logging.getLogger(__name__)


class DaskSolver:
    """A solver for ``engine.place(solver=...)``: the problem cut into ``parts`` parts, solved on the
    workers of ``client`` (``engine.solve_decomposed``); ``place`` verifies the merged plan whole."""

    def __init__(self, client: Any, parts: int) -> None:
        self.client = client
        self.parts = parts

    def _run(self, parts: Sequence[Problem], seconds: float, hints: Sequence[np.ndarray | None],
             prove: bool) -> list[PartResult | None] | None:
        # the parts go to the workers as data first (one each), not inside the task graph; what that
        # takes, and what the answers take to come back, comes out of the parts' time
        from dask.distributed import wait

        start = time.monotonic()
        items = [(part, hint) for part, hint in zip(parts, hints, strict=True)]
        try:
            data = self.client.scatter(items, timeout=max((1 - MIN_PART_SHARE) * seconds, 1.0))
        except (OSError, TimeoutError) as exc:
            log.warning("moving %d parts to the Dask workers failed (%s): solving on this machine", len(parts), exc)
            return None
        left = seconds - (time.monotonic() - start)
        left -= max(RETURN_SHARE * left, RETURN_S)
        if left < MIN_PART_SHARE * seconds:
            log.warning("moving %d parts to the Dask workers took %.1f s of their %.1f s: solving on this machine",
                        len(parts), time.monotonic() - start, seconds)
            self.client.cancel(data)
            return None
        end = time.time() + left
        futures = [self.client.submit(_solve_scattered, item, left, end, prove, key=f"berth-part-{i}", pure=False)
                   for i, item in enumerate(data)]
        with contextlib.suppress(TimeoutError):  # the late ones are given up below
            wait(futures, timeout=left + max(RETURN_SHARE * left, RETURN_S) + LATE_S)
        results: list[PartResult | None] = []
        for i, future in enumerate(futures):
            if future.status == "finished":
                results.append(future.result())
                continue
            # a part that failed (its worker died, a bug) or is late costs its own workloads, not the plan
            reason = repr(future.exception()) if future.status == "error" else f"not back after {left:.1f} s"
            log.warning("part %d of %d on Dask: %s; its workloads are re-solved on this machine", i, len(parts), reason)
            future.cancel()
            results.append(None)
        self.client.cancel(data)
        return results

    def __call__(self, problem: Problem, **kwargs: Any) -> Any:
        return solve_decomposed(problem, run=self._run, parts=self.parts, **kwargs)

    def workers_peak_mb(self) -> float:
        """The sum of the workers' peak resident memory (``VmHWM``), in MB: what the parts cost."""
        def peak() -> float:
            for line in open("/proc/self/status").read().splitlines():  # noqa: SIM115 - Linux only, tiny
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) / 1024
            return 0.0

        try:
            return float(sum(self.client.run(peak).values()))
        except Exception:  # a remote worker that cannot answer: unknown, not a failure
            return float("nan")


@contextlib.contextmanager
def dask_solver(scheduler: str | None = None, *, workers: int = 2, parts: int | None = None) -> Iterator[DaskSolver]:
    """A :class:`DaskSolver` on the scheduler at ``scheduler``, else on a LocalCluster of ``workers``
    worker processes (closed on exit); ``parts`` defaults to one per worker.

    Raises:
        InputError: the remote scheduler cannot be reached (exit 2, nothing written).
    """
    with _client(scheduler, workers, processes=True) as client:
        count = parts or max(1, len(client.scheduler_info().get("workers", {})) or workers)
        yield DaskSolver(client, count)
