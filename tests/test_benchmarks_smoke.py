"""Smoke test of the benchmark runner on a tiny instance (no timing is asserted)."""

from __future__ import annotations

from pathlib import Path

from benchmarks.generate import Instance
from benchmarks.run import bench_instance


def test_quick_benchmark_berth_beats_greedy(tmp_path: Path) -> None:
    row = bench_instance(Instance("tiny", "edge", 30, 10, 0.9, seed=3), tmp_path, 5.0, with_lp=True)
    berth, greedy = row["results"]["berth"], row["results"]["greedy"]
    assert berth["n_violations"] == 0, berth["violations"]
    assert greedy["n_violations"] == 0, greedy["violations"]
    assert berth["bound"] <= berth["weighted"] + 1e-6
    # the LP over every plan with these replicas per priority and tier lies below the LP at this placement
    assert berth["bound_all"] is not None and berth["bound_all"] <= berth["bound"] + 1e-6
    if berth["plan_bound"] is not None:
        assert berth["plan_bound"] <= berth["weighted"] + 1e-6
    # on exactly greedy's workloads (equal work), Berth places them all, in tiers no later, and
    # (at equal tiers) pays no more: this instance is small enough for the exact CP-SAT solve
    same = row["same_workloads"]
    assert same["n_violations"] == 0
    assert same["greedy_weighted"] == greedy["weighted"]
    assert same["placed"] == greedy["placed"]
    assert same["tier"] <= same["greedy_tier"]
    if same["tier"] == same["greedy_tier"]:
        assert same["weighted"] <= same["greedy_weighted"] + 1e-6
    for level in sorted(berth["placed"], key=int, reverse=True):
        assert berth["placed"][level] >= greedy["placed"][level], level
        if berth["placed"][level] > greedy["placed"][level]:
            return  # strictly better at a higher level: cost is not comparable
    assert berth["tier"] <= greedy["tier"]
    if berth["tier"] == greedy["tier"]:
        assert berth["weighted"] <= greedy["weighted"] + 1e-6
