"""The Prometheus side of docs/live-inputs.md: the example configurations are valid Prometheus.

``promtool check config`` (Debian's prometheus package) parses each file as Prometheus
would at start-up, and checks that files it references exist: the service-account paths
of the example are pointed at files made here.
"""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest
import yaml

from tests.prom_fixture import require_prometheus

EXAMPLES = Path(__file__).resolve().parents[1] / "examples" / "live"
SERVICE_ACCOUNT = "/var/run/secrets/kubernetes.io/serviceaccount/"


@pytest.mark.parametrize("name", ["prometheus.yml", "prometheus-global.yml"])
def test_example_is_a_valid_prometheus_configuration(name: str, tmp_path: Path) -> None:
    require_prometheus()
    for secret in ("token", "ca.crt"):
        (tmp_path / secret).write_text("placeholder\n")
    config = tmp_path / name
    config.write_text((EXAMPLES / name).read_text().replace(SERVICE_ACCOUNT, f"{tmp_path}/"))
    result = subprocess.run(["promtool", "check", "config", str(config)],
                            capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "SUCCESS" in result.stdout + result.stderr


def test_the_cluster_label_is_visible_to_queries_and_federation_keeps_labels() -> None:
    """What the docs promise of the examples: a queryable cluster label, site and cluster on
    every probe target, honor_labels on the federation job."""
    own = yaml.safe_load((EXAMPLES / "prometheus.yml").read_text())
    name = own["global"]["external_labels"]["cluster"]
    for job in own["scrape_configs"]:
        if job["job_name"].startswith("blackbox"):
            assert all({"site", "cluster"} <= set(t["labels"]) for t in job["static_configs"])
        else:
            assert {"target_label": "cluster", "replacement": name} in job["relabel_configs"]
    federate = yaml.safe_load((EXAMPLES / "prometheus-global.yml").read_text())["scrape_configs"][0]
    assert federate["metrics_path"] == "/federate" and federate["honor_labels"] is True


def test_the_documented_complete_metrics_source_loads() -> None:
    from engine.documents.live import MetricsSource

    text = (EXAMPLES.parents[1] / "docs" / "live-inputs.md").read_text()
    block = text.split("complete format, with the defaults:\n\n```yaml\n")[1].split("```")[0]
    spec = MetricsSource.model_validate(yaml.safe_load(block)).spec
    assert spec.prometheus.configured and spec.latency.selector() == "probe_duration_seconds"
