"""Fuzzing ``berth place`` with mutated example bundles: a clear input error or a plan that verifies.

Each example takes the documents of ``examples/telco-mec``, applies a few random
mutations (delete a field, swap a value's type, a huge number, an odd string,
deep nesting, unicode, a YAML alias bomb), writes the result as one bundle file
and runs the real ``berth place`` command in-process (typer's CliRunner, the
code path of the CLI). Allowed outcomes:

* exit 2, with the file, a document (``document #N``) and a field in the message,
  and no plan file written;
* exit 0 or 4, with a plan file that the independent verifier accepts.

Anything else (a traceback, exit 1, another exit code) fails the test.
"""

from __future__ import annotations

import copy
import json
import re
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from typer.testing import CliRunner

from adapters.cli.app import app
from engine.documents.load import load_bundle
from engine.verification import verify

EXAMPLE = Path(__file__).resolve().parent.parent / "examples" / "telco-mec"


def _example_documents() -> list[dict[str, Any]]:
    docs: list[dict[str, Any]] = []
    for path in sorted(EXAMPLE.glob("*.yaml")):
        docs += [d for d in yaml.safe_load_all(path.read_text(encoding="utf-8")) if d is not None]
    for d in docs:  # the bundle is written elsewhere: its kustomize bases stay behind
        d.get("spec", {}).pop("source", None)
    return docs


BASE = _example_documents()

ODD_VALUES = [
    None, True, 0, -1, 1.5, 10**20, 2**63, -(2**63) - 1, 1e308, float("nan"), float("inf"), "", " ",
    "x" * 300, "web\n", "team.alpha", "Ünïcödé-名前", "\x00", "../../etc", "/abs", "1e999999999", "1Ei",
    "-5", "5Qi", "0x10", [], [1, "a"], {}, {"a": {"b": [1]}}, "500m", "4Gi", "NoSchedule",
]


def _paths(value: Any, prefix: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    """Every path to a value inside ``value`` (mapping keys and list indices)."""
    out = [prefix]
    if isinstance(value, dict):
        for key, item in value.items():
            out += _paths(item, (*prefix, key))
    elif isinstance(value, list):
        for i, item in enumerate(value):
            out += _paths(item, (*prefix, i))
    return out


def _get(root: Any, path: tuple[Any, ...]) -> Any:
    for part in path:
        root = root[part]
    return root


def _deep(levels: int) -> Any:
    value: Any = 1
    for _ in range(levels):
        value = [value]
    return value


@st.composite
def mutated(draw: st.DrawFn) -> list[Any]:
    docs: list[Any] = copy.deepcopy(BASE)
    for _ in range(draw(st.integers(1, 4))):
        i = draw(st.integers(0, len(docs) - 1))
        paths = _paths(docs[i])
        path = draw(st.sampled_from(paths))
        op = draw(st.sampled_from(["delete", "replace", "replace", "number", "nest", "rename", "drop-doc"]))
        if op == "drop-doc":
            docs.pop(i)
            continue
        if not path:
            docs[i] = draw(st.sampled_from(ODD_VALUES))
            continue
        parent, last = _get(docs[i], path[:-1]), path[-1]
        if op == "delete":
            del parent[last]
        elif op == "replace":
            parent[last] = draw(st.sampled_from(ODD_VALUES))
        elif op == "number":
            parent[last] = draw(st.one_of(st.integers(-(2**70), 2**70), st.floats(allow_nan=True),
                                          st.sampled_from([2**31, 2**53 + 1, 10**6, 10**6 + 1, 10**9 + 1])))
        elif op == "nest":
            parent[last] = _deep(draw(st.sampled_from([3, 70, 400])))
        elif op == "rename" and isinstance(parent, dict):
            parent[draw(st.sampled_from(["x", "Name", "näme", "spec2", "replicas"]))] = parent.pop(last)
    return docs


def _dump(docs: list[Any]) -> str:
    # allow_unicode keeps the odd strings as they are; width keeps long strings on one line
    return yaml.safe_dump_all(docs, allow_unicode=True, width=10**9, sort_keys=False)


@pytest.mark.timeout(600)
# the deadline is a hang guard: a command with --time-limit 1 must never take a minute
@settings(max_examples=150, deadline=timedelta(seconds=60), suppress_health_check=list(HealthCheck),
          derandomize=True)
@given(docs=mutated())
def test_place_gives_a_named_input_error_or_a_plan_that_verifies(tmp_path_factory: pytest.TempPathFactory,
                                                                  docs: list[Any]) -> None:
    folder = tmp_path_factory.mktemp("fuzz")
    bundle_file = folder / "bundle.yaml"
    try:
        bundle_file.write_text(_dump(docs), encoding="utf-8")
    except (UnicodeEncodeError, ValueError, RecursionError):  # yaml itself cannot write it
        return
    out = folder / "plan.json"
    result = CliRunner().invoke(app, ["place", str(bundle_file), "--output", str(out), "--time-limit", "1", "-q"])
    if result.exception is not None and not isinstance(result.exception, SystemExit):
        raise result.exception
    text = result.output
    if result.exit_code == 2:
        assert "Traceback" not in text
        flat = text.replace("\n", "")
        assert str(bundle_file) in flat, text
        assert re.search(r"document #\d+|line \d+", flat), text  # the document, or the line of a syntax error
        assert not out.exists()
        return
    assert result.exit_code in (0, 4), text
    plan = json.loads(out.read_text(encoding="utf-8"))
    if result.exit_code == 0:
        assert verify(load_bundle([bundle_file]), plan) == []
