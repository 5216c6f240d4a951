"""One home per concern: "where is spread enforced?" has one module name for an answer.

The solvers ask the policy plugins (through ``policies.registry``) instead of reading a concern's
arrays and re-implementing its rule. Only the problem's types, the build step that fills them and
the independent verifier (which checks the spec's text on its own, on purpose) may name them.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
#: the arrays and types a concern's rule is read from, and the plugin that is its home
CONCERNS = {
    "spread": (r"\bgroup_spread\b|\bSpreadRule\b|\bmin_groups\b|\bmax_skew\b", "policies/spread.py"),
    "co-location": (r"\baffinity_from\b|\baffinity_to\b|\banti_a\b|\banti_b\b", "policies/colocation.py"),
}
#: where the types are declared and filled, and the verifier
ANYWHERE = ("engine/problem.py", "engine/build.py", "engine/documents/", "engine/verif")
#: the replica shape (Duplicated copies, per-cluster bounds, cluster counts): the solvers and the
#: running-workload rule ask :mod:`policies.replica_shape` (beside the plugin, policies/replicas.py)
#: instead of reading these arrays
REPLICA_SHAPE = r"\bduplicated\b|\bmin_per\b|\bmax_per\b|\bcount_min\b|\bcount_max\b"
SOLVERS = ("engine/solvers/", "engine/keep.py")


def _engine_modules() -> list[Path]:
    return sorted(p for p in (ROOT / "engine").rglob("*.py") if not str(p.relative_to(ROOT)).startswith(ANYWHERE))


@pytest.mark.parametrize("concern", list(CONCERNS))
def test_no_solver_reimplements_the_concern(concern: str) -> None:
    pattern, home = CONCERNS[concern]
    offenders = [str(p.relative_to(ROOT)) for p in _engine_modules() if re.search(pattern, p.read_text())]
    assert offenders == [], f"{concern} is read outside {home} (ask the plugin through policies.registry)"
    assert re.search(pattern, (ROOT / home).read_text())


def test_no_solver_reimplements_the_replica_shape() -> None:
    solvers = [p for p in _engine_modules() if str(p.relative_to(ROOT)).startswith(SOLVERS)]
    assert len(solvers) > 10  # the solver modules are found
    offenders = [str(p.relative_to(ROOT)) for p in solvers if re.search(REPLICA_SHAPE, p.read_text())]
    assert offenders == [], "the replica shape is read outside policies/ (ask policies.replica_shape)"
    for home in ("policies/replicas.py", "policies/replica_shape.py"):
        assert re.search(REPLICA_SHAPE, (ROOT / home).read_text())


def test_the_recipe_for_a_new_concern_is_written_down() -> None:
    import policies

    doc = policies.__doc__ or ""
    assert "Adding a concern" in doc and "policies.registry" in doc and "CASES" in doc
