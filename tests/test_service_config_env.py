"""The service config: the file, with environment overrides (pydantic-settings), ``BERTH_CONFIG``."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from adapters.api import load_config
from engine.errors import InputError
from tests.api_fixture import write_service

BERTH = str(Path(sys.executable).parent / "berth")


def test_the_environment_overrides_the_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = write_service(tmp_path, extra={"gitops": {"repo": "deploy", "format": "flux"}})
    plain = load_config(path)
    assert plain.limits.time_limit_seconds == 2 and plain.gitops is not None and plain.gitops.push is False
    monkeypatch.setenv("BERTH_CONFIG", str(path))
    monkeypatch.setenv("BERTH_GITOPS__PUSH", "true")
    monkeypatch.setenv("BERTH_LIMITS__TIME_LIMIT_SECONDS", "7.5")
    monkeypatch.setenv("BERTH_LIVE__PROMETHEUS", "http://prom.example:9090")
    monkeypatch.setenv("BERTH_STATE_FILE", "/var/lib/berth/state.yaml")
    config = load_config()  # the file from BERTH_CONFIG
    assert config.gitops is not None and config.gitops.push is True and config.gitops.format == "flux"
    assert config.gitops.repo == (tmp_path / "deploy").resolve()  # the file's other fields stay
    assert config.limits.time_limit_seconds == 7.5 and config.limits.max_workloads_per_request == 5
    assert config.live.prometheus == "http://prom.example:9090"
    assert config.state_file == Path("/var/lib/berth/state.yaml")
    assert [t.name for t in config.tokens] == [t.name for t in plain.tokens]


def test_a_bad_override_names_its_field(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = write_service(tmp_path)
    monkeypatch.setenv("BERTH_LIMITS__TIME_LIMIT_SECONDS", "-1")
    with pytest.raises(InputError, match=r"limits\.time_limit_seconds"):
        load_config(path)


def test_serve_without_config_or_berth_config_is_exit_2(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if k != "BERTH_CONFIG"}
    proc = subprocess.run([BERTH, "serve", "--port", "1"], capture_output=True, text=True, env=env, check=False,
                          timeout=120)
    assert proc.returncode == 2 and "BERTH_CONFIG" in proc.stderr
    bad = tmp_path / "missing.yaml"
    proc = subprocess.run([BERTH, "serve", "--port", "1"], capture_output=True, text=True,
                          env={**env, "BERTH_CONFIG": str(bad)}, check=False, timeout=120)
    assert proc.returncode == 2 and "missing.yaml" in proc.stderr
