"""Berth's engine: the public API. Adapters and benchmarks import engine things from here only.

The rooms, bottom to top (imports point down only; ``make test`` checks it with import-linter,
see ``docs/architecture.md``):

* ``errors``, ``limits``, ``quantity``, ``redact``: leaf helpers;
* ``documents/``: the pydantic kinds (one static registry), bundle loading, selectors;
* ``problem`` (the arrays' types), ``plan`` (the output), ``moves`` and ``objective`` (spec
  section 3, once);
* ``policies/`` (a package beside the engine): one plugin per concern;
* ``build``: bundle -> problem through the policy registry;
* ``solvers/``: the strategies and the one ``dispatch`` that chooses among them;
* ``explain`` and ``verify`` (independent of every solver), ``keep``, ``planner`` (``place``);
* ``scenario``, ``reoptimize``, ``live``: the three uses and live inputs, as pure functions.

The functions ``verify`` and ``redact`` share their module's name: import the modules'
other names as ``from engine import ...`` too (both modules' public names are here).
"""

from __future__ import annotations

from engine.build import build_problem
from engine.decompose import PartResult, solve_decomposed, solve_part
from engine.documents.bundle import Bundle, Origin
from engine.documents.durations import parse_duration
from engine.documents.fields import API_VERSION
from engine.documents.kinds import Cluster, ObjectiveWeights, Tenant, Workload
from engine.documents.live import (
    ClusterPrometheus,
    HttpClientSettings,
    MetricsSource,
    MetricsSourceSpec,
    SecretRef,
)
from engine.documents.load import load_bundle, load_documents, parse_document
from engine.documents.overrides import ImageOverrider, ListOverrider, MapOverrider, OverridePolicy, Overriders
from engine.documents.policy import PlacementPolicy
from engine.documents.promql import sanitize_label
from engine.documents.references import check_references
from engine.documents.scenario import Scenario
from engine.documents.selection import match_priority
from engine.documents.selectors import affinity_mask
from engine.errors import (
    BerthError,
    DependencyCycle,
    DuplicateName,
    GitOpsError,
    InputError,
    LiveSourceError,
    ReferenceNotFound,
    SolveError,
    SourceError,
)
from engine.fast import FastPlacer, fast_reason
from engine.lazy import load_now
from engine.limits import MAX_DEPTH, MAX_LATENCY_MS, MAX_REPLICAS, echo
from engine.live import ClusterLive, LatencyLive, LiveFleet, LiveReport, apply_live, find_source, merge_fleets
from engine.objective import evaluate
from engine.plan import (
    NotApplied,
    ObjectiveValues,
    Placement,
    Plan,
    PlanMetadata,
    PlanStatus,
    Reason,
    Unplaced,
    diff_moves,
    requested_by_cluster,
)
from engine.planner import place, plan_from_solution
from engine.problem import UNLIMITED, Problem, restrict
from engine.quantity import (
    QuantityError,
    format_quantity,
    is_byte_resource,
    max_quantity,
    natural_per_base,
    parse_quantity,
)
from engine.redaction import has_credentials, is_ssh, redact, strip_userinfo
from engine.reoptimize import assignment_values, diff_summary
from engine.scenario import expand, solve_scenario
from engine.solvers.bound import bound_over_plans, cost_bound_at
from engine.solvers.construct import Residual, place_one
from engine.solvers.dispatch import LARGE_PAIRS, solve_problem
from engine.solvers.large import solve_large
from engine.solvers.lp import solve_lp
from engine.solvers.pinned import pinned_placement
from engine.solvers.progress import Progress, ProgressCallback
from engine.solvers.solution import Deadline, LevelResult, Solution
from engine.summary import compare, summarize
from engine.verification import verify
from engine.verification.violations import Violation
from engine.warm import WarmFleet

__all__ = [
    "API_VERSION",
    "LARGE_PAIRS",
    "MAX_DEPTH",
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
    "FastPlacer",
    "GitOpsError",
    "HttpClientSettings",
    "ImageOverrider",
    "InputError",
    "LatencyLive",
    "LevelResult",
    "ListOverrider",
    "LiveFleet",
    "LiveReport",
    "LiveSourceError",
    "MapOverrider",
    "MetricsSource",
    "MetricsSourceSpec",
    "NotApplied",
    "ObjectiveValues",
    "ObjectiveWeights",
    "Origin",
    "OverridePolicy",
    "Overriders",
    "PartResult",
    "Placement",
    "PlacementPolicy",
    "Plan",
    "PlanMetadata",
    "PlanStatus",
    "Problem",
    "Progress",
    "ProgressCallback",
    "QuantityError",
    "Reason",
    "ReferenceNotFound",
    "Residual",
    "Scenario",
    "SecretRef",
    "Solution",
    "SolveError",
    "SourceError",
    "Tenant",
    "Unplaced",
    "Violation",
    "WarmFleet",
    "Workload",
    "affinity_mask",
    "apply_live",
    "assignment_values",
    "bound_over_plans",
    "build_problem",
    "check_references",
    "compare",
    "cost_bound_at",
    "diff_moves",
    "diff_summary",
    "echo",
    "evaluate",
    "expand",
    "fast_reason",
    "find_source",
    "format_quantity",
    "has_credentials",
    "is_byte_resource",
    "is_ssh",
    "load_bundle",
    "load_documents",
    "load_now",
    "match_priority",
    "max_quantity",
    "merge_fleets",
    "natural_per_base",
    "parse_document",
    "parse_duration",
    "parse_quantity",
    "pinned_placement",
    "place",
    "place_one",
    "plan_from_solution",
    "redact",
    "requested_by_cluster",
    "restrict",
    "sanitize_label",
    "solve_decomposed",
    "solve_large",
    "solve_lp",
    "solve_part",
    "solve_problem",
    "solve_scenario",
    "strip_userinfo",
    "summarize",
    "verify",
]
