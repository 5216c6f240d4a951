"""The small protocol every policy plugin follows.

A plugin is one concern of the spec (taints, latency, spread, ...). It may:

* **filter** — narrow eligibility, vectorised over (policy group × cluster),
  and explain what it excluded in a sentence with numbers;
* **constrain** — add hard constraints to the CP-SAT model;
* **score** — contribute per-pair coefficients to a term of the weighted
  objective (spec section 3).

A plugin implements only the hooks it needs (the base class gives no-op
defaults). Plugins never import each other; shared maths lives in
:mod:`engine.documents.selectors`. The engine, not the plugin, applies the weights.

Workloads that share a namespace and a PlacementPolicy share one *group*:
filters are computed once per group, so a fleet with 10,000 workloads and 40
policies evaluates selectors 40 × C times, not 10,000 × C.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, ClassVar

import numpy as np

from engine.problem import CompileContext

if TYPE_CHECKING:
    from ortools.sat.python import cp_model

    from engine.problem import Problem

__all__ = ["CompileContext", "ModelContext", "Plugin"]


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
    terms: dict[str, list[tuple[cp_model.LinearExprT, float]]] = field(default_factory=dict)

    def add_pair_term(self, name: str, per_replica: np.ndarray) -> None:
        """Add ``sum_p per_replica[p] * y[p]`` to objective term ``name`` (natural units)."""
        if name in self.pair_terms:
            self.pair_terms[name] = self.pair_terms[name] + per_replica
        else:
            self.pair_terms[name] = per_replica.astype(float)

    def add_term(self, name: str, expr: cp_model.LinearExprT, coefficient: float) -> None:
        """Add ``coefficient * expr`` to objective term ``name`` (natural units)."""
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
