"""Order across clusters: commit a plan in waves along ``dependsOn``, each after its dependencies are ready.

Flux, Argo CD and Config Sync order objects within one cluster only. A rollout splits the
change from what the repository runs now to the target plan into waves by dependency depth
over the whole fleet (wave 0: workloads that depend on nothing; wave k: those whose deepest
dependency is in wave k-1). Wave k is committed only when every workload its workloads depend
on reports, on every cluster the target puts it, at least the replicas the target puts there
as ready (kube-state-metrics, read by the caller's ``ready`` function). Each wave is an ordinary
write of the whole desired state: the workloads of waves up to k at their target placement, the
others as the repository runs them at that moment (re-read before each wave, so another writer's
commits in between are kept).

A wave whose dependencies are not ready within ``wave_timeout`` ends the rollout: what was
committed stays (it is a consistent state), nothing later is written, and the report names each
dependency that was not ready, where, and how many replicas it had.

Nothing here opens a socket: readiness, the clock and sleeping are passed in, so tests drive a
real Prometheus at explicit times.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path

from adapters.gitops.layout import main_kinds
from adapters.gitops.reader import read_current
from adapters.gitops.writer import EXTRA_TRAILERS, CommitInfo, write_plan
from engine import BerthError, Bundle, Placement, Plan

__all__ = ["NotReady", "ReadyFn", "RolloutResult", "RolloutTimeout", "Wave", "plan_waves", "rollout"]

#: ``ready(at)`` -> ``{(cluster, kind, namespace, name): ready replicas}`` at time ``at``
ReadyFn = Callable[[datetime], Mapping[tuple[str, str, str, str], int]]
WAVE_TRAILER = "Berth-Rollout-Wave"


@dataclass(frozen=True)
class NotReady:
    """A dependency that does not yet run what the target puts on one cluster."""

    workload: str
    cluster: str
    ready: int
    wanted: int
    waiting: tuple[str, ...]  # the workloads of the wave that wait for it

    def __str__(self) -> str:
        return (f"{', '.join(self.waiting)} wait(s) for {self.workload} on {self.cluster}: "
                f"{self.ready}/{self.wanted} replica(s) ready")


@dataclass
class Wave:
    """The workloads of one wave and the dependencies (with their target clusters) it waits for."""

    index: int
    workloads: list[str]
    depends_on: dict[str, list[str]] = field(default_factory=dict)  # dependency -> workloads waiting

    def changes(self, target: Mapping[str, Mapping[str, int]], current: Mapping[str, Mapping[str, int]]) -> list[str]:
        return [k for k in self.workloads if dict(target.get(k, {})) != dict(current.get(k, {}))]


@dataclass
class RolloutResult:
    """What a rollout did: the waves committed, their commits, and, on a timeout, what waited."""

    waves: list[Wave]
    committed: list[int] = field(default_factory=list)
    commits: list[CommitInfo] = field(default_factory=list)
    waited: dict[int, float] = field(default_factory=dict)  # wave -> seconds waited for readiness
    timed_out: int | None = None
    not_ready: list[NotReady] = field(default_factory=list)


class RolloutTimeout(BerthError):
    """A wave's dependencies were not ready within the timeout (exit 1); earlier waves stay committed."""

    exit_code = 1

    def __init__(self, message: str, result: RolloutResult) -> None:
        super().__init__(message)
        self.result = result


def plan_waves(bundle: Bundle) -> list[Wave]:
    """Every workload of the bundle by dependency depth across the fleet (``dependsOn`` has no cycle)."""
    by_key = {w.key: w for w in bundle.workloads}
    deps = {w.key: [f"{w.metadata.namespace}/{d}" for d in w.spec.depends_on] for w in bundle.workloads}
    depth: dict[str, int] = {}

    def of(key: str) -> int:
        if key not in depth:
            depth[key] = 1 + max((of(d) for d in deps[key] if d in by_key), default=-1)
        return depth[key]

    for key in sorted(by_key):
        of(key)
    waves = [Wave(i, []) for i in range(1 + max(depth.values(), default=-1))]
    for key in sorted(by_key):
        wave = waves[depth[key]]
        wave.workloads.append(key)
        for d in deps[key]:
            wave.depends_on.setdefault(d, []).append(key)
    return waves


def _wave_plan(target: Plan, current: Mapping[str, Mapping[str, int]], rolled: set[str],
               known: set[str]) -> Plan:
    """The whole desired state after the waves of ``rolled``: those at target, the rest as they run."""
    assignment = {k: dict(v) for k, v in current.items() if k in known and k not in rolled}
    assignment |= {k: v for k, v in target.assignment().items() if k in rolled}
    plan = target.model_copy(deep=True)
    plan.placements = [Placement(workload=k, clusters=v) for k, v in sorted(assignment.items()) if v]
    return plan


def _not_ready(wave: Wave, target: Mapping[str, Mapping[str, int]], kinds: Mapping[str, str],
               ready: Mapping[tuple[str, str, str, str], int]) -> list[NotReady]:
    out: list[NotReady] = []
    for dep, waiting in sorted(wave.depends_on.items()):
        ns, name = dep.split("/", 1)
        for cluster, wanted in sorted(target.get(dep, {}).items()):
            have = ready.get((cluster, kinds.get(dep, "Deployment"), ns, name), 0)
            if wanted > 0 and have < wanted:
                out.append(NotReady(dep, cluster, have, wanted, tuple(waiting)))
    return out


@contextlib.contextmanager
def _wave_trailer(index: int, total: int) -> Iterator[None]:
    token = EXTRA_TRAILERS.set((*EXTRA_TRAILERS.get(), (WAVE_TRAILER, f"{index + 1}/{total}")))
    try:
        yield
    finally:
        EXTRA_TRAILERS.reset(token)


def rollout(
    bundle: Bundle,
    target: Plan,
    repo_dir: Path,
    *,
    ready: ReadyFn,
    now: Callable[[], datetime],
    sleep: Callable[[float], None],
    wave_timeout: float = 600.0,
    poll_interval: float = 10.0,
    fmt: str = "flux",
    push: bool = False,
    report: Callable[[str], None] = lambda _line: None,
) -> RolloutResult:
    """Commit ``target`` into ``repo_dir`` in waves along ``dependsOn``.

    Args:
        bundle: today's bundle (checked against ``target`` by the caller).
        target: the plan to reach.
        repo_dir: the GitOps clone.
        ready: readiness at a time (kube-state-metrics through Prometheus).
        now: the current time; ``sleep``: wait that many seconds (tests pass a simulated clock).
        wave_timeout: seconds a wave waits for its dependencies before the rollout stops.
        poll_interval: seconds between readiness checks.
        fmt, push: as for :func:`adapters.gitops.write_plan`.
        report: receives one line per event (committed, waiting, ready).

    Raises:
        RolloutTimeout: a wave's dependencies were not ready in time; ``.result`` says what waited.
        InputError, GitOpsError, LiveSourceError: as the writer and the readiness source raise them.
    """
    waves = plan_waves(bundle)
    want = target.assignment()
    known = {w.key for w in bundle.workloads}
    kinds = main_kinds(bundle, [d for wave in waves for d in wave.depends_on])
    result = RolloutResult(waves=waves)
    rolled: set[str] = set()
    for wave in waves:
        current = read_current(repo_dir)
        changed = wave.changes(want, current)
        rolled |= set(wave.workloads)
        if not changed:
            report(f"wave {wave.index + 1}/{len(waves)}: nothing changes ({', '.join(wave.workloads)})")
            continue
        if wave.depends_on:
            started = now()
            deadline = started + timedelta(seconds=wave_timeout)
            while True:
                at = now()
                missing = _not_ready(wave, want, kinds, ready(at))
                if not missing:
                    result.waited[wave.index] = (at - started).total_seconds()
                    report(f"wave {wave.index + 1}/{len(waves)}: dependencies ready after "
                           f"{result.waited[wave.index]:g} s")
                    break
                if at >= deadline:
                    result.timed_out, result.not_ready = wave.index, missing
                    lines = "; ".join(str(m) for m in missing)
                    raise RolloutTimeout(
                        f"wave {wave.index + 1}/{len(waves)} ({', '.join(changed)}) not committed: after "
                        f"{wave_timeout:g} s {lines}; waves {', '.join(str(i + 1) for i in result.committed) or 'none'}"
                        " stay committed", result)
                for m in missing:
                    report(f"wave {wave.index + 1}/{len(waves)}: {m}")
                sleep(poll_interval)
        with _wave_trailer(wave.index, len(waves)):
            written = write_plan(bundle, _wave_plan(target, current, rolled, known), repo_dir,
                                 fmt=fmt, commit=True, push=push)
        result.committed.append(wave.index)
        result.commits += written.commits
        report(f"wave {wave.index + 1}/{len(waves)}: committed {', '.join(changed)} "
               f"({len(written.commits)} commit(s))")
    return result
