"""Tenancy: a tenant's clusterSelector narrows its clusters; its quota caps its total.

A namespace with no Tenant document may use every cluster, without quota. At construction time a
workload is admitted only when its replicas fit what its tenant's quota has left.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

from engine.documents.selectors import affinity_mask
from engine.lazy import lazy_module
from engine.problem import UNLIMITED, CompileContext, Problem
from policies.base import ModelContext, Pairs, Placed, Plugin

if TYPE_CHECKING:
    from ortools.sat.python import cp_model
else:
    cp_model = lazy_module("ortools.sat.python.cp_model")

__all__ = ["TenancyPlugin"]


class TenancyPlugin(Plugin):
    name = "Tenancy"
    reason = "TenantRestricted"

    def filter(self, ctx: CompileContext) -> np.ndarray:
        names = ctx.cluster_names
        out = np.ones((ctx.num_groups, ctx.num_clusters), dtype=bool)
        cache: dict[str, np.ndarray] = {}
        for g, ns in enumerate(ctx.group_namespace):
            tenant = ctx.tenants.get(ns)
            if tenant is None or tenant.spec.cluster_selector is None:
                continue
            if ns not in cache:
                cache[ns] = affinity_mask(tenant.spec.cluster_selector, names, ctx.label_table)
            out[g] = cache[ns]
        return out

    def explain(self, ctx: CompileContext, group: int, excluded: np.ndarray) -> str:
        ns = ctx.group_namespace[group]
        return f"{len(excluded)} cluster(s) are outside the clusterSelector of tenant {ns}"

    def constrain(self, m: ModelContext) -> None:
        # sum over a tenant's pairs of request * y <= quota, per resource with a quota
        p = m.problem
        if not len(p.tenant_names):
            return
        pair_tenant = p.tenant[p.pair_w]
        for t in range(len(p.tenant_names)):
            pairs = np.nonzero(pair_tenant == t)[0]
            for r in range(len(p.resource_names)):
                limit = int(p.quota[t, r])
                if limit == UNLIMITED:
                    continue
                coeff = p.request[p.pair_w[pairs], r]
                keep = coeff > 0
                if int((coeff * p.pair_ub[pairs]).sum()) <= limit:
                    continue  # cannot bind
                m.model.add(
                    cp_model.LinearExpr.weighted_sum(
                        [m.y[i] for i in pairs[keep]], coeff[keep].tolist()
                    )
                    <= limit
                )

    def admit(self, problem: Problem, at: Pairs, ys: np.ndarray, state: Placed) -> bool:
        """Within what the tenant's quota has left (every replica counts, every copy too)."""
        t = int(problem.tenant[at.w])
        return t < 0 or not bool((int(ys.sum()) * problem.request[at.w] > state.quota[t]).any())
