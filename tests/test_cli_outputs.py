"""One meaning for output flags: ``--output FILE`` writes the document, ``-o`` chooses what standard
output shows (table, wide, json, yaml); the live progress display on a terminal, silence elsewhere."""

from __future__ import annotations

import json
import os
import pty
import select
import subprocess
import sys
import time
from pathlib import Path

import yaml

from tests.prom_fixture import free_port
from tests.test_gitops_support import PLAN_A, make_bundle, make_plan, write_bundle

BERTH = str(Path(sys.executable).parent / "berth")
ROOT = Path(__file__).resolve().parents[1]
LONG = "w" + "-long" * 12  # 61 characters: wider than the name column of a narrow terminal


def berth(*args: str, cwd: Path, columns: int = 80) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "COLUMNS": str(columns)}
    return subprocess.run([BERTH, *args], capture_output=True, text=True, cwd=cwd, env=env, check=False,
                          timeout=300)


def test_place_o_chooses_the_format_of_standard_output(tmp_path: Path) -> None:
    bundle = str(write_bundle(tmp_path / "input"))
    shown = berth("place", bundle, "--time-limit", "2", "-o", "json", cwd=tmp_path)
    assert shown.returncode == 0, shown.stderr
    plan = json.loads(shown.stdout)  # nothing but the plan on stdout
    assert plan["kind"] == "PlacementPlan" and plan["placements"]
    as_yaml = berth("place", bundle, "--time-limit", "2", "-o", "yaml", cwd=tmp_path)
    assert yaml.safe_load(as_yaml.stdout)["placements"] == plan["placements"]
    written = berth("place", bundle, "--time-limit", "2", "--output", "plan.json", cwd=tmp_path)
    assert written.returncode == 0 and json.loads((tmp_path / "plan.json").read_text())["placements"]
    assert "Cluster utilisation" in written.stdout
    # -o FILE was the old spelling: refused, naming --output, and no file of that name
    wrong = berth("place", bundle, "-o", "other.json", cwd=tmp_path)
    assert wrong.returncode == 2 and "--output" in wrong.stderr and not (tmp_path / "other.json").exists()
    both = berth("place", bundle, "--output", "-", "-o", "json", cwd=tmp_path)
    assert both.returncode == 2 and "standard output" in " ".join(both.stderr.split())


def test_fleet_o_json_and_dash_never_name_a_file(tmp_path: Path) -> None:
    bundle = str(write_bundle(tmp_path / "input"))
    dead = f"http://127.0.0.1:{free_port()}"
    dash = berth("fleet", bundle, "--prometheus", dead, "-o", "-", cwd=tmp_path)
    assert dash.returncode == 2 and "-o/--format" in dash.stderr
    as_json = berth("fleet", bundle, "--prometheus", dead, "-o", "json", cwd=tmp_path)
    assert as_json.returncode == 3  # the dead Prometheus, not the flag
    assert not (tmp_path / "json").exists() and not (tmp_path / "-").exists()


def _long_bundle(tmp_path: Path) -> Path:
    bundle = write_bundle(tmp_path / "input")
    bundle.write_text(bundle.read_text().replace("name: edge-a}", f"name: {LONG}}}"))
    return bundle


def test_tables_never_cut_a_name_and_wide_keeps_it_on_one_line(tmp_path: Path) -> None:
    bundle = str(_long_bundle(tmp_path))
    table = berth("place", bundle, "--time-limit", "2", cwd=tmp_path, columns=60)
    assert table.returncode == 0, table.stderr
    assert "…" not in table.stdout
    first_column = "".join(line.split("│")[1].strip() for line in table.stdout.splitlines() if line.startswith("│"))
    assert LONG in first_column  # folded over lines, not cut
    wide = berth("place", bundle, "--time-limit", "2", "-o", "wide", cwd=tmp_path, columns=60)
    assert wide.returncode == 0 and "…" not in wide.stdout
    assert any(LONG in line for line in wide.stdout.splitlines())


def test_status_formats(tmp_path: Path) -> None:
    from adapters.gitops import write_plan

    repo = tmp_path / "deploy"
    write_plan(make_bundle(tmp_path), make_plan(PLAN_A), repo)
    as_yaml = berth("status", "--gitops-repo", str(repo), "-o", "yaml", cwd=tmp_path)
    data = yaml.safe_load(as_yaml.stdout)
    assert {c["name"] for c in data["clusters"]} == {"edge-a", "edge-b", "cloud-1"}
    filed = berth("status", "--gitops-repo", str(repo), "--output", "status.json", cwd=tmp_path)
    assert filed.returncode == 0 and json.loads((tmp_path / "status.json").read_text()) == data


def _read_pty(fd: int, proc: subprocess.Popen[str]) -> str:
    chunks: list[bytes] = []
    while True:
        ready, _, _ = select.select([fd], [], [], 0.5)
        if ready:
            try:
                data = os.read(fd, 65536)
            except OSError:
                break
            if not data:
                break
            chunks.append(data)
        elif proc.poll() is not None:
            break
    return b"".join(chunks).decode(errors="replace")


def test_progress_is_live_on_a_terminal_and_silent_otherwise(tmp_path: Path) -> None:
    example = str(ROOT / "examples" / "edge-retail")
    master, slave = pty.openpty()
    env = {**os.environ, "COLUMNS": "160", "TERM": "xterm"}
    proc = subprocess.Popen([BERTH, "place", example, "--time-limit", "4", "-q"], stdout=subprocess.PIPE,
                            stderr=slave, text=True, env=env, cwd=tmp_path)
    os.close(slave)
    start = time.monotonic()
    shown = _read_pty(master, proc)
    proc.wait(timeout=300)
    os.close(master)
    assert proc.returncode == 0, shown
    assert time.monotonic() - start > 0
    assert "solving" in shown and "replica(s) placed" in shown, shown[-2000:]
    assert "priority:" in shown  # the phase: the level of the lexicographic order being solved
    # not a terminal: not one byte on standard error
    quiet = berth("place", example, "--time-limit", "4", "-q", cwd=tmp_path)
    assert quiet.returncode == 0 and quiet.stderr == ""
