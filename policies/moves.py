"""Moves: replicas removed from where they run today cost ``moves`` and obey ``maxMoves``.

``moved[w, c] >= current[w, c] - y[w, c]``; replicas on clusters or of
workloads that left the problem are removed for sure (``Problem.fixed_moves``).
"""

from __future__ import annotations

from ortools.sat.python import cp_model

from policies.base import ModelContext, Plugin

__all__ = ["MovesPlugin"]


class MovesPlugin(Plugin):
    name = "Moves"

    def constrain(self, m: ModelContext) -> None:
        p = m.problem
        if not len(p.current_w) and p.max_moves is None:
            return
        fixed = p.fixed_moves
        pair = p.pair_index(p.current_w, p.current_c) if len(p.current_w) else []
        moved: list[cp_model.IntVar] = []
        for k, j in enumerate(list(pair)):
            n = int(p.current_n[k])
            if j < 0:
                fixed += n  # no longer eligible there: every replica moves
                continue
            # moved >= current - y, moved >= 0
            mv = m.model.new_int_var(0, n, f"moved_{j}")
            m.model.add(mv >= n - m.y[j])
            moved.append(mv)
            m.add_term("moves", mv, 1.0)
        if p.max_moves is not None:
            m.model.add(cp_model.LinearExpr.sum(moved) <= p.max_moves - fixed)
