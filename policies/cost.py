"""Cost: replicas times requests times the cluster's price per unit-hour."""

from __future__ import annotations

from policies.base import ModelContext, Plugin

__all__ = ["CostPlugin"]


class CostPlugin(Plugin):
    name = "Cost"

    def score(self, m: ModelContext) -> None:
        m.add_pair_term("cost", m.problem.pair_cost)
