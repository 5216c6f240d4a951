"""Co-location: ``affinity`` (follow another workload) and ``antiAffinity`` (avoid it).

Affinity: if ``w`` has a replica on ``c``, every workload it names has one
there too. Anti-affinity is symmetric: the two never share a cluster.
"""

from __future__ import annotations

import numpy as np

from policies.base import ModelContext, Plugin

__all__ = ["CoLocationPlugin"]


class CoLocationPlugin(Plugin):
    name = "CoLocation"

    def constrain(self, m: ModelContext) -> None:
        p = m.problem
        # affinity: used[w, c] => used[v, c]; impossible where (v, c) is not a pair
        for w, v in zip(p.affinity_from.tolist(), p.affinity_to.tolist(), strict=True):
            pairs = np.arange(*p.pairs_of(w).indices(p.num_pairs))
            partner = p.pair_index(np.full(len(pairs), v), p.pair_c[pairs])
            for i, j in zip(pairs.tolist(), partner.tolist(), strict=True):
                if j < 0:
                    m.model.add(m.y[i] == 0)
                else:
                    m.model.add_implication(m.used[i], m.used[j])
        # anti-affinity: used[a, c] + used[b, c] <= 1
        for a, b in zip(p.anti_a.tolist(), p.anti_b.tolist(), strict=True):
            pairs = np.arange(*p.pairs_of(a).indices(p.num_pairs))
            partner = p.pair_index(np.full(len(pairs), b), p.pair_c[pairs])
            for i, j in zip(pairs.tolist(), partner.tolist(), strict=True):
                if j >= 0:
                    m.model.add_bool_or([m.used[i].Not(), m.used[j].Not()])
