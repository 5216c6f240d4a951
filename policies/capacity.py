"""Capacity: per cluster and resource, placed requests fit what is free.

``pods``, when a cluster lists it, counts replicas; a resource a workload
requests but a cluster does not list has capacity 0 there (such pairs are
already removed when the problem is built). At construction time a pair has room for what the
residual capacity of its cluster holds (:meth:`CapacityPlugin.room`); nothing more to admit: a
placement within the room of every pair fits (the pinned path checks a whole committed placement
against the residual capacity at once).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

from engine.lazy import lazy_module
from engine.problem import UNLIMITED, Problem
from policies.base import ModelContext, Pairs, Placed, Plugin

if TYPE_CHECKING:
    from ortools.sat.python import cp_model
else:
    cp_model = lazy_module("ortools.sat.python.cp_model")

__all__ = ["CapacityPlugin"]


class CapacityPlugin(Plugin):
    name = "Capacity"

    def constrain(self, m: ModelContext) -> None:
        # sum_p request[w_p, r] * y[p] <= capacity[c, r] for every cluster c and resource r
        p = m.problem
        if not p.num_pairs:
            return
        order = np.argsort(p.pair_c, kind="stable")
        bounds = np.searchsorted(p.pair_c[order], np.arange(p.num_clusters + 1))
        # only clusters with pairs: a neighbourhood solve keeps the whole fleet's cluster list
        for c in np.nonzero(np.diff(bounds))[0].tolist():
            pairs = order[bounds[c] : bounds[c + 1]]
            for r in range(len(p.resource_names)):
                limit = int(p.capacity[c, r])
                if limit == UNLIMITED:
                    continue
                coeff = p.request[p.pair_w[pairs], r]
                keep = coeff > 0
                if int((coeff * p.pair_ub[pairs]).sum()) <= limit:
                    continue  # even every pair at its bound fits: redundant
                idx = pairs[keep]
                m.model.add(
                    cp_model.LinearExpr.weighted_sum([m.y[i] for i in idx], coeff[keep].tolist())
                    <= limit
                )

    def room(self, problem: Problem, at: Pairs, state: Placed, room: np.ndarray) -> np.ndarray:
        """At most what the residual capacity of each pair's cluster holds, per resource requested."""
        req = problem.request[at.w]
        cap = state.capacity[at.clusters]
        for r in np.nonzero(req > 0)[0].tolist():
            room = np.minimum(room, np.maximum(cap[:, r], 0) // int(req[r]))
        return room
