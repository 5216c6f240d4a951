"""Soft preferences: ``preferredClusters`` terms, like preferredDuringScheduling.

Each replica on a cluster matching a term earns ``weight / 100``; the engine
subtracts ``preference * P`` from the weighted cost.
"""

from __future__ import annotations

import numpy as np

from engine.documents.selectors import affinity_mask
from engine.problem import CompileContext, Problem
from policies.base import ModelContext, Plugin

__all__ = ["PreferencesPlugin"]


class PreferencesPlugin(Plugin):
    name = "Preferences"

    def prepare(self, ctx: CompileContext, problem: Problem) -> None:
        names = ctx.cluster_names
        pref = np.zeros((ctx.num_groups, ctx.num_clusters), dtype=float)
        for g, spec in enumerate(ctx.groups):
            for term in spec.preferred_clusters:
                pref[g] += affinity_mask(term, names, ctx.label_table) * (term.weight / 100.0)
        problem.pair_preference = problem.at_pairs(pref)

    def score(self, m: ModelContext) -> None:
        m.add_pair_term("preference", m.problem.pair_preference)
