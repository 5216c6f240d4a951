"""Latency to a site: a hard ``maxMs`` filter and the latency cost term.

A cluster missing from the site's ``latencyMs`` is unreachable from it.
"""

from __future__ import annotations

import numpy as np

from engine.problem import BoolArray, CompileContext, Problem
from policies.base import ModelContext, Plugin

__all__ = ["LatencyPlugin"]


def _latency(ctx: CompileContext) -> np.ndarray:
    """(G, C) latency in ms from each group's site; inf when unreachable, 0 without latency."""
    out = np.zeros((ctx.num_groups, ctx.num_clusters), dtype=float)
    by_site: dict[str, np.ndarray] = {}  # one row per site, however many groups use it
    for g, spec in enumerate(ctx.groups):
        if spec.latency is None:
            continue
        site = spec.latency.site
        if site not in by_site:
            row = np.full(ctx.num_clusters, np.inf)
            for name, ms in ctx.sites[site].spec.latency_ms.items():
                c = ctx.cluster_index.get(name)
                if c is not None:
                    row[c] = ms
            by_site[site] = row
        out[g] = by_site[site]
    return out


class LatencyPlugin(Plugin):
    name = "Latency"
    reason = "LatencyUnreachable"

    def filter(self, ctx: CompileContext) -> np.ndarray:
        lat = _latency(ctx)
        limit = np.array(
            [
                (s.latency.max_ms if s.latency and s.latency.max_ms is not None else np.inf)
                if s.latency
                else np.inf
                for s in ctx.groups
            ]
        )
        ok = lat <= limit[:, None]
        # with a site but no maxMs, only reachable clusters qualify
        mask: BoolArray = ok & np.isfinite(lat)
        return mask

    def explain(self, ctx: CompileContext, group: int, excluded: np.ndarray) -> str:
        spec = ctx.groups[group]
        assert spec.latency is not None
        table = ctx.sites[spec.latency.site].spec.latency_ms
        reachable = [table[c.metadata.name] for c in ctx.clusters if c.metadata.name in table]
        nearest = f"nearest is {min(reachable):g} ms" if reachable else "no cluster is reachable"
        if spec.latency.max_ms is None:
            return f"{len(excluded)} cluster(s) are unreachable from {spec.latency.site}"
        return (
            f"no cluster within {spec.latency.max_ms:g} ms of {spec.latency.site} "
            f"among {len(excluded)} excluded: {nearest}"
        )

    def prepare(self, ctx: CompileContext, problem: Problem) -> None:
        lat = _latency(ctx)
        values = problem.at_pairs(lat)
        problem.pair_latency = np.where(np.isfinite(values), values, 0.0)

    def score(self, m: ModelContext) -> None:
        m.add_pair_term("latency", m.problem.pair_latency)
