"""Running what-if scenarios on Dask: a LocalCluster by default, a remote scheduler when given.

The local cluster runs **2 workers of 1 thread each in this process**
(``processes=False``): it starts in well under a second and CP-SAT releases
the GIL while it solves, so two scenarios really run at once on two cores.
With ``scheduler="tcp://host:8786"`` the tasks go to that cluster; its
workers need Berth installed (``pip install berth``) at the same version.

A scenario that fails (bad edit, engine error, lost worker) is reported with
its error; the others still finish.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from engine import Bundle, Plan, Scenario, solve_scenario

__all__ = ["run_scenarios"]

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
