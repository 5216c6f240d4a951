"""Cluster affinity and tiers: ``clusterAffinity`` filters, ``clusterAffinities`` burst.

With ``clusterAffinities`` a cluster is eligible when it passes any tier; its
tier index is the first tier it passes, and the tier objective (spec section
3, level 2) keeps replicas in earlier tiers until they are full.
"""

from __future__ import annotations

import numpy as np

from engine.documents.selectors import affinity_mask
from engine.problem import BoolArray, CompileContext, Problem
from policies.base import Plugin

__all__ = ["ClusterAffinityPlugin"]

NO_TIER = 1 << 20


def _tiers(ctx: CompileContext) -> np.ndarray:
    """(G, C) tier index of each cluster, ``NO_TIER`` where no tier matches."""
    names = ctx.cluster_names
    out = np.full((ctx.num_groups, ctx.num_clusters), NO_TIER, dtype=np.int64)
    for g, spec in enumerate(ctx.groups):
        if spec.cluster_affinities:
            for t, tier in enumerate(spec.cluster_affinities):
                hit = affinity_mask(tier, names, ctx.label_table) & (out[g] == NO_TIER)
                out[g, hit] = t
        else:
            out[g, affinity_mask(spec.cluster_affinity, names, ctx.label_table)] = 0
    return out


class ClusterAffinityPlugin(Plugin):
    name = "ClusterAffinity"
    reason = "NoMatchingCluster"

    def filter(self, ctx: CompileContext) -> np.ndarray:
        mask: BoolArray = _tiers(ctx) != NO_TIER
        return mask

    def explain(self, ctx: CompileContext, group: int, excluded: np.ndarray) -> str:
        spec = ctx.groups[group]
        what = "any tier of clusterAffinities" if spec.cluster_affinities else "clusterAffinity"
        return f"{len(excluded)} cluster(s) did not match {what}"

    def prepare(self, ctx: CompileContext, problem: Problem) -> None:
        tiers = _tiers(ctx)
        problem.pair_tier = problem.at_pairs(tiers)
        # int16, clipped: read only at eligible clusters (a real tier index); int64 was 295 MB at
        # 50,000 x 5,000 (7,400 groups), in the main process and in every Dask part
        problem.group_tier = np.minimum(tiers, np.iinfo(np.int16).max).astype(np.int16)
