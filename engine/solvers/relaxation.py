"""The LP relaxation of a :class:`~engine.problem.Problem`, without a matrix over every pair.

Variables are the replicas ``y[p]`` of every eligible pair (continuous in ``[0, pair_ub]``) plus,
with a current placement, ``moved[k] >= current - y``. Rows: per workload ``sum y <= replicas``
(``replicas * copies`` for Duplicated), capacity per (cluster, resource), quota per (tenant,
resource), the moves rows, and optionally one row per priority and one for the tier sum
(:meth:`Relaxation.fix_levels`). Booleans are relaxed away: cluster counts, spread, co-location and
all-or-nothing disappear, and an Aggregated workload pays ``clusters * y / ub`` for its clusters.
Every plan of spec section 2 is a point of this LP, so its optimum bounds every level.

Why no matrix: at 10,000 x 1,000 there are 6.3M eligible pairs and a sparse matrix over all of them
(a row entry per pair and resource) took longer to build than the few seconds a bound gets, so the
bound there used to be the LP-free one (28% gap). Column generation needs only two things of the
matrix: its columns over the few pairs in the restricted LP (:meth:`Relaxation.columns`), and
``A^T duals`` over every pair to price them (:meth:`Relaxation.price`). Both are gathers over the
problem's arrays, as cheap at millions of pairs as the problem itself.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

from engine.lazy import lazy_module
from engine.moves import scale_down_credit
from engine.objective import most_copies, pair_weights
from engine.problem import UNLIMITED, FloatArray, IntArray, Problem
from policies import replica_shape

if TYPE_CHECKING:
    import scipy.sparse as sp
else:
    sp = lazy_module("scipy.sparse")

__all__ = ["Relaxation"]


class Relaxation:
    """The LP's columns, their bounds and its rows, with the matrix made on demand per column set.

    Row layout: ``W`` workload rows, then capacity ``R x C`` (resource-major), quota ``R x T``, the
    ``M`` moves rows, and the level rows of :meth:`fix_levels` (one per priority value, then the
    tier row when some pair has a tier).
    """

    def __init__(self, problem: Problem, keep: int = 8) -> None:
        p = problem
        n_p = p.num_pairs
        self.p = p
        # moved[k] >= current[k] - y[j] for current pairs that are still eligible, of Divided
        # workloads: they move ``sum moved - credit * placed`` (spec 3.3), linear with
        # placed = sum y / replicas; a Duplicated one moves min(removed, added) >= 0, relaxed to 0
        self.credit = np.zeros(n_p)
        self.constant_moves = 0.0
        if len(p.current_total):
            j = p.pair_index(p.current_w, p.current_c)
            split = replica_shape.divided(p)
            divided = split[p.current_w]
            self.cur_pair = j[(j >= 0) & divided]
            self.cur_n = p.current_n[(j >= 0) & divided].astype(float)
            gone = p.current_gone.astype(float) + np.bincount(
                p.current_w[(j < 0) & divided], weights=p.current_n[(j < 0) & divided], minlength=p.num_workloads)
            self.constant_moves = p.weights.moves * float(gone[split].sum())
            per = scale_down_credit(p) / np.maximum(p.replicas, 1)
            self.credit = np.where(split[p.pair_w], -p.weights.moves * per[p.pair_w], 0.0)
        else:
            self.cur_pair = np.zeros(0, np.int64)
            self.cur_n = np.zeros(0)
        order = np.argsort(self.cur_pair, kind="stable")
        self._cur_sorted, self._cur_order = self.cur_pair[order], order
        n_m = len(self.cur_pair)
        self.n_cols = n_p + n_m
        self.lb = np.zeros(self.n_cols)
        self.ub = np.concatenate([p.pair_ub.astype(float), self.cur_n])
        self.w_cap = (p.replicas * most_copies(p)).astype(float)

        n_w, n_c, n_t, n_r = p.num_workloads, p.num_clusters, len(p.tenant_names), len(p.resource_names)
        self._cap_row0 = n_w
        self._quota_row0 = n_w + n_r * n_c
        self._moved_row0 = self._quota_row0 + n_r * n_t
        self._level_row0 = self._moved_row0 + n_m
        self._limited_c = p.capacity != UNLIMITED  # (C, R)
        self._limited_t = p.quota != UNLIMITED if n_t else np.zeros((0, n_r), dtype=bool)
        self._level_of_pair: IntArray | None = None
        self._n_levels = 0
        self._tiered = False
        lo = [np.zeros(n_w)]
        hi = [self.w_cap]
        for r in range(n_r):
            lo.append(np.full(n_c, -np.inf))
            hi.append(np.where(self._limited_c[:, r], p.capacity[:, r].astype(float), np.inf))
        for r in range(n_r):
            lo.append(np.full(n_t, -np.inf))
            hi.append(np.where(self._limited_t[:, r], p.quota[:, r].astype(float), np.inf) if n_t else np.zeros(0))
        lo.append(self.cur_n)
        hi.append(np.full(n_m, np.inf))
        self.row_lo = np.concatenate(lo)
        self.row_hi = np.concatenate(hi)
        self.n_rows = len(self.row_lo)
        self.batch = max(2000, 2 * p.num_workloads)
        self._keep = keep
        self._active: np.ndarray | None = None

    @property
    def active(self) -> np.ndarray:
        """(columns,) bool: the columns of the restricted LP, at first the ``keep`` cheapest pairs of
        each workload and the current pairs; made on first use (a sort over every pair: a bound that
        runs no LP round never needs it)."""
        if self._active is None:
            self._active = self._initial_columns(self._keep)
        return self._active

    @property
    def num_workload_rows(self) -> int:
        """The first rows of the layout: one per workload (the Lagrangian keeps them in its subproblem)."""
        return self.p.num_workloads

    @property
    def level_rows(self) -> slice:
        """The rows of :meth:`fix_levels` per priority (empty before it)."""
        return slice(self._level_row0, self._level_row0 + self._n_levels)

    @property
    def tier_row(self) -> int | None:
        """The tier row of :meth:`fix_levels`, if any."""
        return self._level_row0 + self._n_levels if self._tiered else None

    def fix_levels(self, level_of_pair: IntArray, counts: FloatArray, tier_sum: float | None) -> None:
        """Add one equality row per level (``sum y over pairs of level k = counts[k]``) and, with
        ``tier_sum``, one for the tier sum (``sum tier * y = tier_sum``)."""
        self._level_of_pair = level_of_pair.astype(np.int64)
        self._n_levels = len(counts)
        self._tiered = tier_sum is not None
        extra = [counts.astype(float)] + ([np.array([float(tier_sum)])] if tier_sum is not None else [])
        values = np.concatenate(extra)
        self.row_lo = np.concatenate([self.row_lo[: self._level_row0], values])
        self.row_hi = np.concatenate([self.row_hi[: self._level_row0], values])
        self.n_rows = len(self.row_lo)

    def _initial_columns(self, keep: int) -> np.ndarray:
        """The ``keep`` cheapest pairs of each workload (all of a broadcast one), and current pairs."""
        p = self.p
        active = np.zeros(self.n_cols, dtype=bool)
        active[p.num_pairs :] = True
        active[self.cur_pair] = True
        score = p.pair_tier * 1e9 + pair_weights(p)
        order = np.lexsort((score, p.pair_w))  # by workload, then cheapest first
        starts = np.searchsorted(p.pair_w[order], np.arange(p.num_workloads))
        rank = np.arange(p.num_pairs) - starts[p.pair_w[order]]
        need = replica_shape.lp_columns(p, keep)
        active[order[rank < need[p.pair_w[order]]]] = True
        return active

    def columns(self, cols: IntArray) -> sp.csc_matrix:
        """The matrix restricted to the columns ``cols`` (sorted indices), ``n_rows x len(cols)``."""
        p = self.p
        n_c, n_t = p.num_clusters, len(p.tenant_names)
        pos = np.arange(len(cols))
        is_pair = cols < p.num_pairs
        j, at = cols[is_pair], pos[is_pair]
        w = p.pair_w[j]
        rows = [w.astype(np.int64)]
        cols_out = [at]
        vals = [np.ones(len(j))]
        tenant = p.tenant[w]
        for r in range(len(p.resource_names)):
            req = p.request[w, r].astype(float)
            ok = (req > 0) & self._limited_c[p.pair_c[j], r]
            rows.append(self._cap_row0 + r * n_c + p.pair_c[j][ok].astype(np.int64))
            cols_out.append(at[ok])
            vals.append(req[ok])
            if n_t:
                okt = (req > 0) & (tenant >= 0)
                okt[okt] &= self._limited_t[tenant[okt], r]
                rows.append(self._quota_row0 + r * n_t + tenant[okt].astype(np.int64))
                cols_out.append(at[okt])
                vals.append(req[okt])
        if len(self.cur_pair):
            # a current pair has a 1 in its moves row; a moves column a 1 in its own
            k = np.searchsorted(self._cur_sorted, j)
            hit = (k < len(self._cur_sorted)) & (self._cur_sorted[np.minimum(k, len(self._cur_sorted) - 1)] == j)
            rows.append(self._moved_row0 + self._cur_order[k[hit]])
            cols_out.append(at[hit])
            vals.append(np.ones(int(hit.sum())))
            m = cols[~is_pair] - p.num_pairs
            rows.append(self._moved_row0 + m)
            cols_out.append(pos[~is_pair])
            vals.append(np.ones(len(m)))
        if self._level_of_pair is not None:
            rows.append(self._level_row0 + self._level_of_pair[j])
            cols_out.append(at)
            vals.append(np.ones(len(j)))
            if self._tiered:
                tiered = p.pair_tier[j] > 0
                rows.append(np.full(int(tiered.sum()), self._level_row0 + self._n_levels))
                cols_out.append(at[tiered])
                vals.append(p.pair_tier[j][tiered].astype(float))
        return sp.csc_matrix((np.concatenate(vals), (np.concatenate(rows), np.concatenate(cols_out))),
                             shape=(self.n_rows, len(cols)))

    def price(self, duals: FloatArray) -> FloatArray:
        """``A^T duals`` over every column (what each column's reduced cost subtracts from its cost)."""
        p = self.p
        n_p, n_c, n_t = p.num_pairs, p.num_clusters, len(p.tenant_names)
        out = np.zeros(self.n_cols)
        pairs = out[:n_p]
        pairs += duals[: p.num_workloads][p.pair_w]
        tenant = p.tenant[p.pair_w]
        has_t = tenant >= 0
        for r in range(len(p.resource_names)):
            at_c = self._cap_row0 + r * n_c
            per_c = np.where(self._limited_c[:, r], duals[at_c: at_c + n_c], 0.0)
            per = per_c[p.pair_c]
            if n_t:
                at_t = self._quota_row0 + r * n_t
                per_t = np.where(self._limited_t[:, r], duals[at_t: at_t + n_t], 0.0)
                per[has_t] += per_t[tenant[has_t]]
            pairs += p.request[p.pair_w, r] * per
        n_m = len(self.cur_pair)
        if n_m:
            moved = duals[self._moved_row0: self._moved_row0 + n_m]
            pairs[self.cur_pair] += moved
            out[n_p:] = moved
        if self._level_of_pair is not None:
            pairs += duals[self._level_row0 + self._level_of_pair]
            if self._tiered:
                pairs += duals[self._level_row0 + self._n_levels] * p.pair_tier
        return out
