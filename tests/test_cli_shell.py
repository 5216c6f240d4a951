"""``berth --version`` and shell completion, through the installed ``berth`` command and a real bash."""

from __future__ import annotations

import os
import subprocess
import sys
from importlib.metadata import version
from pathlib import Path

BIN = Path(sys.executable).parent


def _env() -> dict[str, str]:
    return {**os.environ, "PATH": f"{BIN}{os.pathsep}{os.environ.get('PATH', '')}"}


def test_version_prints_the_installed_package_version() -> None:
    result = subprocess.run([str(BIN / "berth"), "--version"], capture_output=True, text=True, timeout=60,
                            check=False)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == f"berth {version('berth')}"


def test_shell_completion_offers_commands_and_options() -> None:
    """Source the script ``--show-completion`` prints into bash and press Tab three times."""
    lines = ["source <(berth --show-completion) || exit 9", "type _berth_completion >/dev/null || exit 8"]
    for words in ("berth wha", "berth whatif --sce", "berth re"):
        lines += [f"COMP_WORDS=({words}); COMP_CWORD=$(( ${{#COMP_WORDS[@]}} - 1 ))",
                  "_berth_completion berth", 'echo "${COMPREPLY[*]}"']
    result = subprocess.run(["bash", "-c", "\n".join(lines)], capture_output=True, text=True, timeout=120,
                            env=_env(), check=False)
    assert result.returncode == 0, result.stderr
    commands, options, prefix = result.stdout.splitlines()
    assert commands == "whatif"
    assert "--scenario" in options.split()
    assert prefix == "reoptimize"
