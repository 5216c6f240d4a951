"""Moves: replicas moved from where they run today cost ``moves`` and obey ``maxMoves``.

Spec 3.3: for a workload that stays placed, ``sum_c max(0, cur - y) - max(0, sum cur - sum y)``
(a scale-down is not a move); every replica when it becomes unplaced. ``moved[w, c] >= cur - y``
on the pairs where it runs today; replicas on pairs that are no longer eligible, or on clusters
that left the fleet, are removed for sure (a constant the model leaves out, see
``engine.planner``). A Divided workload then moves ``sum moved - credit * placed`` with the
constant credit ``max(0, sum cur - replicas)`` (:func:`engine.moves.scale_down_credit`); a
Duplicated one moves ``min(removed, added)``, chosen by one Boolean.
"""

from __future__ import annotations

from collections import defaultdict
from typing import TYPE_CHECKING

import numpy as np

from engine.lazy import lazy_module
from engine.moves import scale_down_credit
from policies.base import ModelContext, Plugin

if TYPE_CHECKING:
    from ortools.sat.python import cp_model
else:
    cp_model = lazy_module("ortools.sat.python.cp_model")

__all__ = ["MovesPlugin"]


class MovesPlugin(Plugin):
    name = "Moves"

    def constrain(self, m: ModelContext) -> None:
        p = m.problem
        if not len(p.current_w) and p.max_moves is None:
            return
        fixed = int(p.current_gone.sum()) if len(p.current_gone) else 0
        pair = p.pair_index(p.current_w, p.current_c) if len(p.current_w) else np.zeros(0, np.int64)
        constant: dict[int, int] = defaultdict(int)  # per workload: removed for sure
        moved: dict[int, list[cp_model.IntVar]] = defaultdict(list)
        kept_pairs: dict[int, dict[int, int]] = defaultdict(dict)
        for k, j in enumerate(pair.tolist()):
            w, n = int(p.current_w[k]), int(p.current_n[k])
            if j < 0:
                fixed += n  # no longer eligible there: every replica is removed
                constant[w] += n
                continue
            # moved >= current - y, moved >= 0
            mv = m.model.new_int_var(0, n, f"moved_{j}")
            m.model.add(mv >= n - m.y[j])
            moved[w].append(mv)
            kept_pairs[w][j] = n
        credit = scale_down_credit(p)
        terms: list[tuple[cp_model.IntVar, int]] = []
        running = np.nonzero(p.current_total > 0)[0].tolist() if len(p.current_total) else []
        for w in running:
            removed = cp_model.LinearExpr.sum(moved[w])
            if not p.duplicated[w]:
                # placed: moves = removed - credit (sum y = replicas); unplaced: removed
                terms += [(mv, 1) for mv in moved[w]]
                if credit[w]:
                    terms.append((m.placed[w], -int(credit[w])))
                continue
            # Duplicated: moves = min(removed, added) when placed, removed when not
            sl = p.pairs_of(w)
            total = int(p.current_total[w])
            other = int(p.current_gone[w]) + constant[w]
            added = []
            for i in range(sl.start, sl.stop):
                n = kept_pairs[w].get(i, 0)
                if n == 0:
                    added.append(m.y[i])
                    continue
                # added >= y - current, added >= 0
                ad = m.model.new_int_var(0, int(p.pair_ub[i]), f"added_{i}")
                m.model.add(ad >= m.y[i] - n)
                added.append(ad)
            mv = m.model.new_int_var(-other, total, f"moves_{w}")
            take_removed = m.model.new_bool_var(f"moves_removed_{w}")
            m.model.add(mv >= removed).only_enforce_if(take_removed)
            m.model.add(mv >= cp_model.LinearExpr.sum(added) - other).only_enforce_if(~take_removed)
            m.model.add_bool_or([take_removed, m.placed[w]])  # unplaced: every replica is removed
            terms.append((mv, 1))
        for var, coefficient in terms:
            m.add_term("moves", var, float(coefficient))
        if p.max_moves is not None:
            m.model.add(
                cp_model.LinearExpr.weighted_sum([v for v, _ in terms], [c for _, c in terms]) <= p.max_moves - fixed
            )
