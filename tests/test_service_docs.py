"""The curl examples of docs/service.md ("API conventions") run, in order, against a real server.

They are the documentation a user copies: if one of them stops working (or stops showing
what the text says it shows), this fails. Real uvicorn, a real git clone, real curl and jq.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from pathlib import Path

import pytest

from tests.api_fixture import RETAIL, serve, write_service

DOCS = Path(__file__).resolve().parent.parent / "docs" / "service.md"


def conventions_examples() -> list[str]:
    text = DOCS.read_text(encoding="utf-8")
    section = text.split("## API conventions", 1)[1].split("\n## ", 1)[0]
    return re.findall(r"```sh\n(.*?)```", section, flags=re.S)


@pytest.mark.skipif(not (shutil.which("curl") and shutil.which("jq")), reason="needs curl and jq")
def test_the_curl_examples_of_the_api_conventions_run(tmp_path: Path) -> None:
    blocks = conventions_examples()
    assert len(blocks) >= 4
    repo = tmp_path / "deploy"
    subprocess.run(["git", "init", "-q", "-b", "main", str(repo)], check=True)
    config = write_service(tmp_path, extra={"gitops": {"repo": str(repo), "format": "flux"}})
    work = tmp_path / "cwd"
    work.mkdir()
    with serve(config) as url:
        done = subprocess.run(["bash", "-euo", "pipefail", "-c", "\n".join(blocks)], cwd=work, text=True,
                              capture_output=True, timeout=120, env={**os.environ, "BERTH": url, "TOKEN": RETAIL})
    assert done.returncode == 0, done.stderr + done.stdout
    lines = done.stdout.splitlines()
    assert lines[0].startswith('{"accepted":true,"placements":[{"workload":"retail/web"')
    assert lines[1].lower().strip() == "idempotent-replayed: true"
    assert lines[2].startswith('[{"workload":"retail/web"')
    assert sum(int(n) for n in re.findall(r":(\d+)", lines[2])) == 3  # the PUT's three replicas
    assert lines[3] == "412"
    assert lines[4] == '{"items":["retail/api","retail/cache"],"remaining":1}'
    assert lines[5] == '["retail/web"]'
    assert lines[6].split() == ["3", "event:", "ADDED"]
