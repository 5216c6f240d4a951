"""The engine's public API is a decision: adding or removing a name changes this list on purpose.

Adapters and benchmarks import engine things only from ``engine`` (import-linter enforces it in
``make test``); this pins what they may import.
"""

from __future__ import annotations

import engine

EXPECTED = [
    "API_VERSION",
    "LARGE_PAIRS",
    "MAX_LATENCY_MS",
    "MAX_REPLICAS",
    "UNLIMITED",
    "BerthError",
    "Bundle",
    "Cluster",
    "ClusterLive",
    "ClusterPrometheus",
    "Deadline",
    "DependencyCycle",
    "DuplicateName",
    "GitOpsError",
    "HttpClientSettings",
    "Incremental",
    "InputError",
    "LatencyLive",
    "LevelResult",
    "LiveFleet",
    "LiveReport",
    "LiveSourceError",
    "MetricsSource",
    "MetricsSourceSpec",
    "NotApplied",
    "ObjectiveValues",
    "ObjectiveWeights",
    "Origin",
    "Placement",
    "PlacementPolicy",
    "Plan",
    "PlanMetadata",
    "PlanStatus",
    "Problem",
    "QuantityError",
    "Reason",
    "ReferenceNotFound",
    "Residual",
    "Scenario",
    "SecretRef",
    "Solution",
    "SolveError",
    "SourceError",
    "Unplaced",
    "Violation",
    "Workload",
    "apply_live",
    "assignment_values",
    "build_problem",
    "check_references",
    "compare",
    "cost_bound_at",
    "diff_moves",
    "diff_summary",
    "echo",
    "evaluate",
    "expand",
    "find_source",
    "format_quantity",
    "has_credentials",
    "is_byte_resource",
    "is_ssh",
    "load_bundle",
    "load_documents",
    "max_quantity",
    "merge_fleets",
    "natural_per_base",
    "parse_document",
    "parse_duration",
    "parse_quantity",
    "place",
    "place_one",
    "plan_from_solution",
    "redact",
    "requested_by_cluster",
    "restrict",
    "sanitize_label",
    "solve_large",
    "solve_lp",
    "solve_problem",
    "solve_scenario",
    "strip_userinfo",
    "summarize",
    "verify",
]


def test_engine_all_is_pinned() -> None:
    assert engine.__all__ == EXPECTED


def test_every_public_name_is_defined() -> None:
    missing = [name for name in engine.__all__ if not hasattr(engine, name)]
    assert not missing
