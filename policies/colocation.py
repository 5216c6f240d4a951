"""Co-location: ``affinity`` (follow another workload) and ``antiAffinity`` (avoid it).

Affinity: if ``w`` has a replica on ``c``, every workload it names has one
there too. Anti-affinity is symmetric: the two never share a cluster.

Every face of the rule lives here: the CP-SAT constraints, the construction's per-pair admission
(follow placed partners, avoid anti-affine ones), the repairs' neighbourhoods and anchors (a
partner with placed followers does not move alone), and the explanations.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from engine.plan import Reason
from engine.problem import CompileContext, Problem
from policies.base import Fits, ModelContext, Pairs, Placed, Plugin

__all__ = ["CoLocationPlugin"]

_MAX_NAMES = 12


@dataclass
class _Links:
    """Per workload: the workloads it follows, those it avoids (both ways), and its followers."""

    follow: list[list[int]]
    avoid: list[list[int]]
    followers: list[list[int]]
    tied: np.ndarray  # (W,) in any link


def _links(p: Problem) -> _Links:
    """The problem's links per workload, computed once per problem (a problem's links never change)."""
    cached = p.__dict__.get("_colocation_links")
    if isinstance(cached, _Links) and len(cached.follow) == p.num_workloads:
        return cached
    n = p.num_workloads
    follow: list[list[int]] = [[] for _ in range(n)]
    avoid: list[list[int]] = [[] for _ in range(n)]
    followers: list[list[int]] = [[] for _ in range(n)]
    for a, b in zip(p.affinity_from.tolist(), p.affinity_to.tolist(), strict=True):
        follow[a].append(b)
        followers[b].append(a)
    for a, b in zip(p.anti_a.tolist(), p.anti_b.tolist(), strict=True):
        avoid[a].append(b)
    for a, b in zip(p.anti_a.tolist(), p.anti_b.tolist(), strict=True):
        avoid[b].append(a)
    tied = np.zeros(n, dtype=bool)
    for arr in (p.affinity_from, p.affinity_to, p.anti_a, p.anti_b):
        tied[arr] = True
    links = _Links(follow, avoid, followers, tied)
    p.__dict__["_colocation_links"] = links
    return links


def _clusters_of(p: Problem, state: Placed, v: int) -> np.ndarray:
    sl = p.pairs_of(v)
    return p.pair_c[sl][state.y[sl] > 0]


class CoLocationPlugin(Plugin):
    name = "CoLocation"

    def prepare(self, ctx: CompileContext, problem: Problem) -> None:
        """The links by workload index: ``affinity_from[k]`` follows ``affinity_to[k]``; each anti-affine
        pair once, ``anti_a < anti_b`` (a workload naming itself is no link)."""
        p = problem
        index = {k: i for i, k in enumerate(p.workload_keys)}
        aff_from: list[int] = []
        aff_to: list[int] = []
        anti: set[tuple[int, int]] = set()
        for w, key in enumerate(p.workload_keys):
            spec = p.group_specs[p.group[w]]
            ns = key.split("/", 1)[0]
            for name in spec.affinity.workloads if spec.affinity else []:
                v = index[f"{ns}/{name}"]
                if v != w:
                    aff_from.append(w)
                    aff_to.append(v)
            for name in spec.anti_affinity.workloads if spec.anti_affinity else []:
                v = index[f"{ns}/{name}"]
                if v != w:
                    anti.add((min(w, v), max(w, v)))
        p.affinity_from = np.array(aff_from, dtype=np.int32)
        p.affinity_to = np.array(aff_to, dtype=np.int32)
        pairs = sorted(anti)
        p.anti_a = np.array([a for a, _ in pairs], dtype=np.int32)
        p.anti_b = np.array([b for _, b in pairs], dtype=np.int32)

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
                    m.model.add_implication(m.uses(i), m.uses(j))
        # anti-affinity: used[a, c] + used[b, c] <= 1
        for a, b in zip(p.anti_a.tolist(), p.anti_b.tolist(), strict=True):
            pairs = np.arange(*p.pairs_of(a).indices(p.num_pairs))
            partner = p.pair_index(np.full(len(pairs), b), p.pair_c[pairs])
            for i, j in zip(pairs.tolist(), partner.tolist(), strict=True):
                if j >= 0:
                    m.model.add_bool_or([m.uses(i).Not(), m.uses(j).Not()])

    # --- construction -----------------------------------------------------------------------------

    def admit_pairs(self, problem: Problem, at: Pairs, state: Placed, room: np.ndarray,
                    together: np.ndarray | None = None) -> np.ndarray | None:
        """Only clusters where every partner it follows runs, none where an anti-affine one runs."""
        links = _links(problem)
        follow, avoid = links.follow[at.w], links.avoid[at.w]
        if not follow and not avoid:
            return None
        ok = np.ones(len(at), dtype=bool)
        for v in follow:
            if together is None or not together[v]:
                ok &= np.isin(at.clusters, _clusters_of(problem, state, v))
        for v in avoid:
            if together is None or not together[v]:
                ok &= ~np.isin(at.clusters, _clusters_of(problem, state, v))
        return ok

    def admit(self, problem: Problem, at: Pairs, ys: np.ndarray, state: Placed) -> bool:
        links = _links(problem)
        follow, avoid = links.follow[at.w], links.avoid[at.w]
        if not follow and not avoid:
            return True
        used = at.clusters[ys > 0]
        return (all(np.isin(used, _clusters_of(problem, state, v)).all() for v in follow)
                and not any(np.isin(used, _clusters_of(problem, state, v)).any() for v in avoid))

    def depends_on(self, problem: Problem, w: int) -> list[int]:
        """The workloads it follows."""
        return list(_links(problem).follow[w])

    def dependents(self, problem: Problem, w: int) -> list[int]:
        """The workloads that follow it."""
        return list(_links(problem).followers[w])

    def partners(self, problem: Problem, w: int) -> list[int]:
        """Every workload linked to it: those it follows, its followers, those it avoids."""
        links = _links(problem)
        return [*links.follow[w], *links.followers[w], *links.avoid[w]]

    def neighbourhood(self, problem: Problem, w: int, placed: np.ndarray) -> list[int]:
        """The partners it follows, and their placed followers (they move with the partners)."""
        links = _links(problem)
        hood = list(links.follow[w])
        for v in links.follow[w]:
            hood += [f for f in links.followers[v] if placed[f]]
        return hood

    def anchored(self, problem: Problem, placed: np.ndarray) -> np.ndarray | None:
        """Partners with a follower among ``placed``: moving one alone would strand its followers."""
        if not len(problem.affinity_from):
            return None
        out = np.zeros(problem.num_workloads, dtype=bool)
        out[problem.affinity_to[placed[problem.affinity_from]]] = True
        return out

    def ties(self, problem: Problem) -> np.ndarray | None:
        links = _links(problem)
        return links.tied if links.tied.any() else None

    # --- the cost LP and the CP-SAT model ---------------------------------------------------------

    def rigid(self, problem: Problem) -> np.ndarray | None:
        """Linked workloads keep their clusters (a partner's clusters bind them)."""
        return self.ties(problem)

    # --- explanations -----------------------------------------------------------------------------

    def why_not_beside(self, problem: Problem, w: int, y: np.ndarray, placed: np.ndarray) -> list[Reason]:
        """``AffinityUnsatisfied`` per partner it follows: unplaced, or where it runs is full."""
        p = problem
        out = []
        for v in _links(p).follow[w]:
            if not placed[v]:
                out.append(Reason(code="AffinityUnsatisfied", message=(
                    f"must run beside {p.workload_keys[v]}, which is unplaced")))
                continue
            vs = p.pairs_of(v)
            where = [p.cluster_names[c] for c in p.pair_c[vs][y[vs] > 0].tolist()][:_MAX_NAMES]
            out.append(Reason(code="AffinityUnsatisfied", message=(
                f"must run beside {p.workload_keys[v]}, which runs on {', '.join(where)}; it does not fit there"),
                clusters=where))
        return out

    def why_in_the_way(self, problem: Problem, w: int, y: np.ndarray, placed: np.ndarray, room: np.ndarray,
                       fits: Fits) -> Reason | None:
        """``AntiAffinityConflict`` when the clusters its anti-affine partners occupy are the room it needs."""
        p = problem
        partners = [v for v in _links(p).avoid[w] if placed[v]]
        if not partners:
            return None
        blocked = room.copy()
        taken: set[int] = set()
        for v in partners:
            vs = p.pairs_of(v)
            taken.update(p.pair_c[vs][y[vs] > 0].tolist())
        blocked[sorted(taken)] = 0
        if fits(capacity=blocked):
            return None
        return Reason(code="AntiAffinityConflict", message=(
            "must not share a cluster with " + ", ".join(p.workload_keys[v] for v in partners)
            + f", which occupy {len(taken)} cluster(s) it would need"),
            clusters=[p.cluster_names[c] for c in sorted(taken)][:_MAX_NAMES])
