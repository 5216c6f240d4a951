"""``berth`` loads a bundle and builds its problem without OR-Tools, SciPy, pandas, git or Dask.

Those imports took most of a command's first two seconds (issue 15); they now load on first use
(``engine.lazy``, PEP 562 in ``adapters.gitops``). A module imported at the top of a file again
would bring them back silently: this runs the command's imports and the load and build in a fresh
interpreter and lists what got imported, then checks that solving still loads what it needs.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from tests.builders import cluster, workload

HEAVY = ["pandas", "scipy.optimize._linprog", "scipy.sparse._csr", "ortools.sat.python.cp_model_helper",
         "ortools.linear_solver.python.model_builder_helper", "git", "dask", "distributed", "fastapi", "ruamel.yaml"]

SCRIPT = """
import json, sys
import adapters.cli.app
from engine import build_problem, load_bundle, place
problem = build_problem(load_bundle([sys.argv[1]]))
before = [m for m in json.loads(sys.argv[2]) if m in sys.modules]
plan = place(load_bundle([sys.argv[1]]), time_limit=5)
print(json.dumps({"before": before, "after": "ortools.sat.python.cp_model_helper" in sys.modules,
                  "placed": len(plan.placements), "pairs": problem.num_pairs}))
"""


def test_load_and_build_import_no_solver(tmp_path: Path) -> None:
    bundle = tmp_path / "bundle.json"
    bundle.write_text(json.dumps([cluster("a"), cluster("b"), workload("web", 2)]))
    out = subprocess.run([sys.executable, "-c", SCRIPT, str(bundle), json.dumps(HEAVY)], check=True,
                         capture_output=True, text=True, cwd=Path(__file__).resolve().parents[1]).stdout
    got = json.loads(out.strip().splitlines()[-1])
    assert got["before"] == [], f"imported before any solve: {got['before']}"
    assert got["pairs"] == 2
    assert got["after"] and got["placed"] == 1  # the lazy modules load when the solve needs them
