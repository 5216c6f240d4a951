"""The one list of policy plugins, in the order filters are applied.

Adding a concern is one module plus one line here. Filter order matters only
for explanations: the first filter that excludes a cluster names the reason.
"""

from __future__ import annotations

from functools import cache

import numpy as np

from engine.plan import Reason
from engine.problem import Problem
from policies.base import Candidates, Fits, Pairs, Placed, Plugin
from policies.capacity import CapacityPlugin
from policies.cluster_affinity import ClusterAffinityPlugin
from policies.colocation import CoLocationPlugin
from policies.cost import CostPlugin
from policies.latency import LatencyPlugin
from policies.moves import MovesPlugin
from policies.preferences import PreferencesPlugin
from policies.replicas import ReplicaSchedulingPlugin
from policies.spread import SpreadPlugin
from policies.taints import TaintsPlugin
from policies.tenancy import TenancyPlugin

__all__ = [
    "PLUGINS", "admit", "admit_pairs", "anchored", "dependents", "depends_on", "fewest_clusters",
    "fewest_clusters_all", "fixed_layout", "neighbourhood", "offer", "order", "partners", "plugin_by_name",
    "propose", "rigid", "room", "ties", "why_in_the_way", "why_never", "why_not_alone", "why_not_beside",
]


def _register(*plugins: Plugin) -> tuple[Plugin, ...]:
    names = [p.name for p in plugins]
    duplicates = {n for n in names if names.count(n) > 1}
    if duplicates or "" in names:
        raise RuntimeError(f"plugin names must be unique and non-empty: {sorted(duplicates)}")
    return plugins


PLUGINS: tuple[Plugin, ...] = _register(
    TenancyPlugin(),
    ClusterAffinityPlugin(),
    TaintsPlugin(),
    LatencyPlugin(),
    SpreadPlugin(),
    ReplicaSchedulingPlugin(),
    CapacityPlugin(),
    CoLocationPlugin(),
    PreferencesPlugin(),
    CostPlugin(),
    MovesPlugin(),
)


def plugin_by_name(name: str) -> Plugin:
    """The registered plugin called ``name``."""
    for plugin in PLUGINS:
        if plugin.name == name:
            return plugin
    raise KeyError(name)


# --- the engine asks every concern through these (one call per face, never one per plugin) -----------


@cache
def _with(face: str) -> tuple[Plugin, ...]:
    """The registered plugins that implement ``face`` (the base class's default does nothing)."""
    default = getattr(Plugin, face)
    return tuple(p for p in PLUGINS if getattr(type(p), face) is not default)


def room(problem: Problem, at: Pairs, state: Placed) -> np.ndarray:
    """Replicas each pair of ``at.w`` can take: its bound, narrowed by every concern (residual capacity)."""
    out = problem.pair_ub[at.lo:at.hi].copy()
    for plugin in _with("room"):
        out = plugin.room(problem, at, state, out)
    return out


def admit_pairs(problem: Problem, at: Pairs, state: Placed, room: np.ndarray,
                together: np.ndarray | None = None) -> np.ndarray:
    """(pairs of ``at.w``,) bool: where every concern lets a replica of ``at.w`` go, beside ``state``."""
    ok = np.ones(len(at), dtype=bool)
    for plugin in _with("admit_pairs"):
        mask = plugin.admit_pairs(problem, at, state, room, together)
        if mask is not None:
            ok &= mask
    return ok


def order(problem: Problem, at: Pairs, order: np.ndarray) -> np.ndarray:
    """Candidate pairs of ``at.w`` (indices, best first) as every concern reorders or narrows them."""
    for plugin in _with("order"):
        order = plugin.order(problem, at, order)
    return order


def propose(problem: Problem, at: Pairs, cand: Candidates) -> np.ndarray:
    """Replicas per pair of ``at.w`` by the first concern that shapes them; empty when none can."""
    for plugin in _with("propose"):
        ys = plugin.propose(problem, at, cand)
        if ys is not None:
            return ys
    return np.zeros(0, dtype=np.int64)


def admit(problem: Problem, at: Pairs, ys: np.ndarray, state: Placed) -> bool:
    """Whether every concern allows ``ys`` for ``at.w`` beside what ``state`` holds of the others."""
    return all(plugin.admit(problem, at, ys, state) for plugin in _with("admit"))


def fewest_clusters(problem: Problem, w: int) -> int:
    """The fewest clusters any placement of ``w`` uses, over every concern."""
    fewest = 1
    for plugin in _with("fewest_clusters"):
        fewest = max(fewest, plugin.fewest_clusters(problem, w))
    return fewest


def fewest_clusters_all(problem: Problem) -> np.ndarray:
    """(W,) :func:`fewest_clusters` of every workload."""
    return np.array([fewest_clusters(problem, w) for w in range(problem.num_workloads)], dtype=np.int64)


def depends_on(problem: Problem, w: int) -> list[int]:
    """Workloads ``w`` can run only beside (co-location partners it follows)."""
    return sorted({v for plugin in _with("depends_on") for v in plugin.depends_on(problem, w)})


def dependents(problem: Problem, w: int) -> list[int]:
    """Workloads that can run only beside ``w``."""
    return sorted({v for plugin in _with("dependents") for v in plugin.dependents(problem, w)})


def partners(problem: Problem, w: int) -> list[int]:
    """Workloads tied to ``w`` either way by some concern, sorted (kept in one part with it)."""
    return sorted({v for plugin in _with("partners") for v in plugin.partners(problem, w)})


def neighbourhood(problem: Problem, w: int, placed: np.ndarray) -> list[int]:
    """``w`` and the workloads a repair must solve with it, sorted."""
    hood = {w}
    for plugin in _with("neighbourhood"):
        hood.update(plugin.neighbourhood(problem, w, placed))
    return sorted(hood)


def _any(face: str, problem: Problem, *args: np.ndarray) -> np.ndarray:
    out = np.zeros(problem.num_workloads, dtype=bool)
    for plugin in _with(face):
        mask = getattr(plugin, face)(problem, *args)
        if mask is not None:
            out |= mask
    return out


def anchored(problem: Problem, placed: np.ndarray) -> np.ndarray:
    """(W,) workloads that may not move alone while those in ``placed`` stay."""
    return _any("anchored", problem, placed)


def ties(problem: Problem) -> np.ndarray:
    """(W,) workloads whose admitted pairs depend on where other workloads are."""
    return _any("ties", problem)


def rigid(problem: Problem) -> np.ndarray:
    """(W,) workloads whose replicas are not a free split over their pairs: the CP-SAT model gives their
    pairs a "used" Boolean, the cost LP keeps their clusters, explanations solve their fit exactly."""
    return _any("rigid", problem)


def fixed_layout(problem: Problem) -> np.ndarray:
    """(W,) workloads whose replicas per cluster the cost LP keeps exactly."""
    return _any("fixed_layout", problem)


def offer(problem: Problem, at: Pairs, order: np.ndarray) -> np.ndarray:
    """Pairs (indices into ``at``'s pairs) every concern needs offered to a small exact solve."""
    parts = [o for plugin in _with("offer") if (o := plugin.offer(problem, at, order)) is not None]
    return np.concatenate(parts) if parts else np.zeros(0, dtype=np.int64)


def why_never(problem: Problem, w: int) -> Reason | None:
    """The first concern's reason why no placement of ``w`` exists on its eligible pairs."""
    return next((r for plugin in _with("why_never") if (r := plugin.why_never(problem, w)) is not None), None)


def why_not_alone(problem: Problem, w: int, fits: Fits) -> Reason | None:
    """The first concern's reason why ``w`` does not fit the empty fleet."""
    return next((r for plugin in _with("why_not_alone") if (r := plugin.why_not_alone(problem, w, fits)) is not None),
                None)


def why_not_beside(problem: Problem, w: int, y: np.ndarray, placed: np.ndarray) -> list[Reason]:
    """Every concern's reasons why ``w`` cannot run beside the placed workloads it depends on."""
    return [r for plugin in _with("why_not_beside") for r in plugin.why_not_beside(problem, w, y, placed)]


def why_in_the_way(problem: Problem, w: int, y: np.ndarray, placed: np.ndarray, room: np.ndarray,
                   fits: Fits) -> Reason | None:
    """The first concern's reason why where its partners run blocks ``w``."""
    return next((r for plugin in _with("why_in_the_way")
                 if (r := plugin.why_in_the_way(problem, w, y, placed, room, fits)) is not None), None)
