"""Karmada parity (docs/karmada.md): what a PropagationPolicy user expects, through the whole engine.

Every plan comes from ``engine.planner.place``, which raises when the independent verifier
(``engine.verify``) objects; some cases also feed the verifier hand-made plans that break a rule.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from engine.errors import InputError
from engine.verify import codes, verify
from tests.builders import bundle_of, cluster, messages, policy, reasons, solve, where, workload

BERTH = str(Path(sys.executable).parent / "berth")
NOEXEC = [{"key": "drain", "value": "soon", "effect": "NoExecute"}]


def _c(name: str, cpu: str = "8", labels: dict[str, str] | None = None, **spec: Any) -> dict[str, Any]:
    return cluster(name, labels=labels, capacity={"cpu": cpu, "memory": "64Gi"}, **spec)


def _run(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([BERTH, *args], capture_output=True, text=True, timeout=300)


# --- 4. the default replica scheduling is Berth's Divided, not Karmada's Duplicated ----------


def test_no_replica_scheduling_divides_replicas_over_the_fleet() -> None:
    plan = solve(_c("a", "2"), _c("b", "2"), policy("p", clusterAffinity={"clusterNames": ["a", "b"]}),
                 workload("web", 4, policy="p"))
    placed = where(plan, "web")
    assert sum(placed.values()) == 4 and placed != {"a": 4, "b": 4}


# --- 3. tolerationSeconds ----------------------------------------------------------------------


@pytest.mark.parametrize(("toleration", "expected"), [
    ({"key": "drain", "operator": "Exists", "effect": "NoSchedule", "tolerationSeconds": 30},
     "tolerationSeconds applies only to effect NoExecute"),
    ({"key": "drain", "operator": "Exists", "tolerationSeconds": 30},
     "tolerationSeconds applies only to effect NoExecute"),
    ({"key": "drain", "operator": "Exists", "effect": "NoExecute", "tolerationSeconds": -1},
     "greater than or equal to 0"),
    ({"key": "drain", "operator": "Exists", "effect": "NoExecute", "tolerationSeconds": "300"},
     "expected a whole number of seconds"),
    ({"key": "drain", "operator": "Exists", "effect": "NoExecute", "tolerationSeconds": 1.5},
     "expected a whole number of seconds"),
    ({"key": "drain", "operator": "Exists", "effect": "NoExecute", "tolerationSeconds": True},
     "expected a whole number of seconds"),
])
def test_bad_toleration_seconds_is_an_input_error(toleration: dict[str, Any], expected: str) -> None:
    with pytest.raises(InputError) as err:
        bundle_of(_c("a"), policy("p", tolerations=[toleration]), workload("web", 1, policy="p"))
    text = str(err.value)
    assert "PlacementPolicy default/p" in text and "spec.tolerations[0]" in text and expected in text


TIMED = {"key": "drain", "operator": "Equal", "value": "soon", "effect": "NoExecute", "tolerationSeconds": 300}


@pytest.mark.parametrize(("tolerations", "on_tainted"), [
    pytest.param([], 0, id="untolerated"),
    pytest.param([TIMED], 0, id="timed-only: no new replicas"),
    pytest.param([{**TIMED, "tolerationSeconds": 0}], 0, id="zero seconds"),
    pytest.param([{k: v for k, v in TIMED.items() if k != "tolerationSeconds"}], 3, id="untimed"),
    pytest.param([TIMED, {"operator": "Exists"}], 3, id="untimed wildcard wins"),
])
def test_timed_toleration_places_no_new_replicas(tolerations: list[dict[str, Any]], on_tainted: int) -> None:
    # the tainted cluster is free, the other costs: only a full toleration puts replicas there
    docs = [_c("tainted", price={"cpu": "0"}, taints=NOEXEC), _c("other", price={"cpu": "1"}),
            policy("p", tolerations=tolerations), workload("web", 3, policy="p")]
    plan = solve(*docs)
    assert where(plan, "web").get("tainted", 0) == on_tainted
    assert sum(where(plan, "web").values()) == 3
    warned = [w for w in plan.status.warnings if "tolerationSeconds" in w]
    if any("tolerationSeconds" in t for t in tolerations) and on_tainted == 0:
        seconds = tolerations[0]["tolerationSeconds"]
        assert warned and f"for {seconds} s only" in warned[0] and "tainted" in warned[0]
        assert "default/web" in warned[0] and "drain=soon:NoExecute" in warned[0]
    else:
        assert not warned


def test_timed_toleration_is_recorded_and_explained_when_unplaced() -> None:
    from engine.problem import build_problem

    docs = [_c("tainted", taints=NOEXEC), policy("p", tolerations=[TIMED]), workload("web", 2, policy="p")]
    problem = build_problem(bundle_of(*docs))
    assert problem.toleration_seconds == {(0, 0): 300}
    plan = solve(*docs)
    assert reasons(plan, "web") == ["Untolerated"]
    assert "tolerated for 300 s only, so no new replicas" in messages(plan, "web")


def test_verifier_refuses_new_replicas_under_a_timed_toleration() -> None:
    bundle = bundle_of(_c("tainted", taints=NOEXEC), _c("other"), policy("p", tolerations=[TIMED]),
                       workload("web", 2, policy="p"))
    bad = {"placements": [{"workload": "default/web", "clusters": {"tainted": 2}}], "unplaced": []}
    assert "Untolerated" in codes(verify(bundle, bad))
    good = {"placements": [{"workload": "default/web", "clusters": {"other": 2}}], "unplaced": []}
    assert not verify(bundle, good)


def test_cli_records_toleration_seconds_in_the_plan(tmp_path: Path) -> None:
    bundle = tmp_path / "bundle.json"
    bundle.write_text(json.dumps([_c("tainted", taints=NOEXEC), _c("other"), policy("p", tolerations=[TIMED]),
                                  workload("web", 2, policy="p")]))
    out = tmp_path / "plan.json"
    result = _run("place", str(bundle), "--output", str(out))
    assert result.returncode == 0, result.stderr
    plan = json.loads(out.read_text())
    assert plan["placements"][0]["clusters"] == {"other": 2}
    assert any("for 300 s only" in w for w in plan["status"]["warnings"])
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps([_c("a"), policy("p", tolerations=[{**TIMED, "tolerationSeconds": -5}])]))
    refused = _run("place", str(bad), "--output", str(tmp_path / "never.json"))
    assert refused.returncode == 2 and "spec.tolerations[0].tolerationSeconds" in refused.stderr
    assert not (tmp_path / "never.json").exists()
