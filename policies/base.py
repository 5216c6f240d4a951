"""The small protocol every policy plugin follows.

A plugin is one concern of the spec (taints, latency, spread, ...), with every face of it. It may:

* **filter** — narrow eligibility, vectorised over (policy group × cluster),
  and explain what it excluded in a sentence with numbers;
* **constrain** — add hard constraints to the CP-SAT model;
* **score** — contribute per-pair coefficients to a term of the weighted
  objective (spec section 3);
* **admit** — answer the heuristics' questions at construction time: how many replicas a pair
  has room for (:meth:`Plugin.room`), which pairs may take one beside what is placed
  (:meth:`Plugin.admit_pairs`, vectorised), how to order and shape a workload's replicas
  (:meth:`Plugin.order`, :meth:`Plugin.propose`), and "may these replicas go there?"
  (:meth:`Plugin.admit`); plus what a repair must solve together and may not move alone;
* **cut** — tell the cost LP which workloads it may not split freely or move at all, and the
  fewest clusters a placement uses (:meth:`Plugin.rigid`, :meth:`Plugin.fixed_layout`,
  :meth:`Plugin.fewest_clusters`);
* **explain** — say why an unplaced workload is unplaced when this concern is the cause
  (the ``why_*`` faces), in the order a person asks.

A plugin implements only the hooks it needs (the base class gives no-op
defaults). Plugins never import each other; shared maths lives in
:mod:`engine.documents.selectors`. The engine, not the plugin, applies the weights. The engine
asks every plugin through :mod:`policies.registry` (one call per face, never one per plugin),
so no solver re-implements a concern.

Workloads that share a namespace and a PlacementPolicy share one *group*:
filters are computed once per group, so a fleet with 10,000 workloads and 40
policies evaluates selectors 40 × C times, not 10,000 × C.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, ClassVar, Protocol

import numpy as np

from engine.problem import CompileContext

if TYPE_CHECKING:
    from ortools.sat.python import cp_model

    from engine.plan import Reason
    from engine.problem import Problem

__all__ = ["Candidates", "CompileContext", "Fits", "ModelContext", "Pairs", "Placed", "Plugin"]

class Fits(Protocol):
    """"Would the workload fit alone with these overrides?" (room ``capacity`` (C, R) and ``quota``
    (T, R) instead of the fleet's, or without its spread constraints)."""

    def __call__(self, *, capacity: np.ndarray | None = None, quota: np.ndarray | None = None,
                 drop_spread: bool = False) -> bool: ...


class Placed(Protocol):
    """What a heuristic places against (the solvers' ``Residual``): what is left of capacity (C, R) and
    quota (T, R) in solver units (a limit that is not there: a huge number), and replicas per pair so far."""

    capacity: np.ndarray
    quota: np.ndarray
    y: np.ndarray


@dataclass(frozen=True)
class Pairs:
    """One workload's pairs: workload ``w``, their slice ``lo:hi`` of the problem's pairs, their clusters."""

    w: int
    lo: int
    hi: int
    clusters: np.ndarray

    @classmethod
    def of(cls, problem: Problem, w: int) -> Pairs:
        sl = problem.pairs_of(w)
        return cls(w, sl.start, sl.stop, problem.pair_c[sl.start:sl.stop])

    def __len__(self) -> int:
        return self.hi - self.lo


@dataclass
class Candidates:
    """What construction offers the concerns that shape a workload's replicas (:meth:`Plugin.propose`).

    Attributes:
        order: indices into the workload's pairs that may take replicas, best first.
        room: replicas each of its pairs can take (bounds and residual capacity).
        ok: the pairs every concern admits (:meth:`Plugin.admit_pairs`).
        score: preference per pair of the workload, lower first.
        fewest: the fewest clusters any placement of it uses (:meth:`Plugin.fewest_clusters`).
    """

    order: np.ndarray
    room: np.ndarray
    ok: np.ndarray
    score: np.ndarray
    fewest: int


@dataclass
class ModelContext:
    """What constraint and score hooks see while the model is built.

    Attributes:
        model: the CP-SAT model.
        problem: the normalised problem (arrays).
        y: replica variable per eligible pair ``p`` (list, index ``p``).
        used: Boolean "pair has at least one replica" per pair, or ``None``
            where the engine proved it unnecessary (see :mod:`engine.solvers.model`).
        placed: Boolean per workload.
        pair_terms: per-pair coefficient arrays by objective term name.
        terms: other objective terms by name; each a list of (expression, coefficient).
    """

    model: cp_model.CpModel
    problem: Problem
    y: list[cp_model.IntVar]
    used: list[cp_model.IntVar | None]
    placed: list[cp_model.IntVar]
    pair_terms: dict[str, np.ndarray] = field(default_factory=dict)
    terms: dict[str, list[tuple[cp_model.IntVar, float]]] = field(default_factory=dict)

    def uses(self, pair: int) -> cp_model.IntVar:
        """The "used" Boolean of ``pair``; only for the workloads whose pairs have one
        (:func:`engine.solvers.model.needs_used`), which the concerns that ask for it guarantee."""
        used = self.used[pair]
        if used is None:
            raise ValueError(f"pair {pair} has no 'used' variable: its workload does not need one")
        return used

    def add_pair_term(self, name: str, per_replica: np.ndarray) -> None:
        """Add ``sum_p per_replica[p] * y[p]`` to objective term ``name`` (natural units)."""
        if name in self.pair_terms:
            self.pair_terms[name] = self.pair_terms[name] + per_replica
        else:
            self.pair_terms[name] = per_replica.astype(float)

    def add_term(self, name: str, expr: cp_model.IntVar, coefficient: float) -> None:
        """Add ``coefficient * expr`` to objective term ``name`` (natural units; one variable per term,
        which the objective addresses by index)."""
        self.terms.setdefault(name, []).append((expr, coefficient))


class Plugin:
    """Base of every policy plugin; override only the hooks you need."""

    #: Unique name; the registry refuses duplicates.
    name: ClassVar[str] = ""
    #: Reason code used for clusters this plugin filters out.
    reason: ClassVar[str] = ""

    def filter(self, ctx: CompileContext) -> np.ndarray | None:
        """Eligibility of every (group, cluster).

        Returns:
            A ``(G, C)`` bool array, ``True`` where allowed, or ``None`` when
            this plugin does not filter.
        """
        return None

    def filter_running(self, ctx: CompileContext) -> np.ndarray | None:
        """Eligibility of every (group, cluster) for replicas that run there today.

        Returns:
            A ``(G, C)`` bool array, or ``None`` when it is the same as :meth:`filter`
            (only taints differ: ``NoSchedule`` keeps running replicas, spec 2.2).
        """
        return None

    def explain(self, ctx: CompileContext, group: int, excluded: np.ndarray) -> str:
        """One sentence on why this plugin excluded ``excluded`` (cluster indices)."""
        return f"{len(excluded)} cluster(s) excluded by {self.name}"

    def prepare(self, ctx: CompileContext, problem: Problem) -> None:
        """Fill this plugin's arrays of ``problem`` once its pairs are known."""

    def constrain(self, m: ModelContext) -> None:
        """Add hard constraints to ``m.model``."""

    def score(self, m: ModelContext) -> None:
        """Add objective terms with ``m.add_term``."""

    # --- construction: what the heuristics ask (engine.solvers: construct, repair, pinned, the fast path)

    def room(self, problem: Problem, at: Pairs, state: Placed, room: np.ndarray) -> np.ndarray:
        """Narrow ``room``, the replicas each pair of ``at.w`` can take, by what ``state`` leaves (vectorised)."""
        return room

    def admit_pairs(self, problem: Problem, at: Pairs, state: Placed, room: np.ndarray,
                    together: np.ndarray | None = None) -> np.ndarray | None:
        """Which pairs of ``at.w`` may hold a replica beside the other workloads in ``state`` (a bool per
        pair), or ``None`` when this concern restricts none. ``together``: (W,) workloads placed in the
        same solve as ``at.w`` (a repair's neighbourhood): where ``state`` has them does not count."""
        return None

    def order(self, problem: Problem, at: Pairs, order: np.ndarray) -> np.ndarray:
        """Reorder or drop candidate pairs (indices into ``at``'s pairs, best first) for construction."""
        return order

    def propose(self, problem: Problem, at: Pairs, cand: Candidates) -> np.ndarray | None:
        """Replicas per pair of ``at.w`` built from ``cand`` when this concern shapes them (an empty
        array: this rule finds no placement), or ``None`` to leave the shape to the next plugin."""
        return None

    def admit(self, problem: Problem, at: Pairs, ys: np.ndarray, state: Placed) -> bool:
        """Whether this concern allows ``ys``, replicas per pair of ``at.w``, beside what ``state`` holds
        of the other workloads (``state`` holds nothing of ``at.w`` itself)."""
        return True

    def fewest_clusters(self, problem: Problem, w: int) -> int:
        """The fewest clusters any placement of ``w`` uses under this concern: how widely construction
        spreads a fill, and a cut of the cost bound (engine refine ``cost_bound_at``)."""
        return 1

    def depends_on(self, problem: Problem, w: int) -> list[int]:
        """Workloads ``w`` can run only beside: it cannot stay where it is when they move or leave."""
        return []

    def dependents(self, problem: Problem, w: int) -> list[int]:
        """Workloads that depend on ``w`` (:meth:`depends_on` the other way round)."""
        return []

    def partners(self, problem: Problem, w: int) -> list[int]:
        """Workloads whose placement this concern ties to ``w``'s either way (a solve in parts keeps them
        in ``w``'s part)."""
        return []

    def neighbourhood(self, problem: Problem, w: int, placed: np.ndarray) -> list[int]:
        """Workloads a repair must solve together with ``w`` (placed ones may move with it)."""
        return []

    def anchored(self, problem: Problem, placed: np.ndarray) -> np.ndarray | None:
        """(W,) workloads that may not move alone while the workloads in ``placed`` stay (a partner
        with placed followers), or ``None`` when this concern anchors none."""
        return None

    def ties(self, problem: Problem) -> np.ndarray | None:
        """(W,) workloads whose admitted pairs depend on where other workloads are, or ``None``."""
        return None

    def offer(self, problem: Problem, at: Pairs, order: np.ndarray) -> np.ndarray | None:
        """Pairs (indices into ``at``'s pairs, from ``order``, best first) a small exact solve must be
        offered so that this concern can be met, besides the cheapest ones; ``None``: nothing more."""
        return None

    # --- the cost LP (engine refine) --------------------------------------------------------------

    def rigid(self, problem: Problem) -> np.ndarray | None:
        """(W,) workloads whose replicas this concern does not let the LP split freely over their pairs
        (they keep their set of clusters), or ``None``."""
        return None

    def fixed_layout(self, problem: Problem) -> np.ndarray | None:
        """(W,) workloads whose replicas per cluster the LP must keep exactly, or ``None``."""
        return None

    # --- explanations (engine explain), in the order a person asks --------------------------------

    def why_never(self, problem: Problem, w: int) -> Reason | None:
        """Why this concern alone rules out every placement of ``w`` on its eligible pairs, or ``None``."""
        return None

    def why_not_alone(self, problem: Problem, w: int, fits: Fits) -> Reason | None:
        """Why ``w`` does not fit the empty fleet when this concern is the cause, or ``None``; ``fits``
        answers "would it fit with these overrides?" (``drop_spread``, ``capacity``, ``quota``)."""
        return None

    def why_not_beside(self, problem: Problem, w: int, y: np.ndarray, placed: np.ndarray) -> list[Reason]:
        """Reasons ``w`` cannot be placed beside the placed workloads it depends on, or ``[]``."""
        return []

    def why_in_the_way(self, problem: Problem, w: int, y: np.ndarray, placed: np.ndarray, room: np.ndarray,
                       fits: Fits) -> Reason | None:
        """Why ``w`` (which fits the room ``room`` left by every placed workload) is blocked by where this
        concern's partners run, or ``None``."""
        return None
