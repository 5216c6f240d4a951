"""``berth rollout``: waves along dependsOn, each committed once a real Prometheus reports its dependencies ready.

Readiness series are backfilled at later and later timestamps and queried at explicit times by a
simulated clock (``now``/``sleep``), so the same run always sees the same answers.
"""

from __future__ import annotations

import json
import subprocess
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from adapters.gitops import read_current
from adapters.gitops.rollout import RolloutTimeout, plan_waves, rollout
from adapters.prometheus import fetch_ready
from engine.documents.load import load_bundle
from tests.prom_fixture import OpenMetrics, running_prometheus
from tests.test_gitops_support import PLAN_A, git, make_plan, write_bundle

BERTH = str(Path(sys.executable).parent / "berth")
T0 = datetime(2026, 11, 30, 12, 0, tzinfo=UTC)
STEP = 15


def _points(ready_from: dict[int, int], until: int = 600) -> list[tuple[float, float]]:
    """A gauge sampled every 15 s from T0 to T0+until: the value of the last ``ready_from`` step reached."""
    out = []
    for t in range(0, until + 1, STEP):
        value = max((v for start, v in ready_from.items() if start <= t), default=0)
        out.append((T0.timestamp() + t, float(value)))
    return out


def _metrics(kafka_ready_at: int | None) -> str:
    om = OpenMetrics()
    kafka = {0: 0} if kafka_ready_at is None else {0: 0, kafka_ready_at: 3}
    om.series("kube_statefulset_status_replicas_ready",
              {"cluster": "cloud-1", "namespace": "retail", "statefulset": "kafka"}, _points(kafka))
    # cache: ready on cloud-1 at +120 s, on edge-a at +150 s
    for cluster, at in (("cloud-1", 120), ("edge-a", 150)):
        om.series("kube_deployment_status_replicas_available",
                  {"cluster": cluster, "namespace": "retail", "deployment": "cache"}, _points({0: 0, at: 1}))
    return om.text()


class Clock:
    """Simulated time: ``sleep`` advances it; every Prometheus query is evaluated at it."""

    def __init__(self) -> None:
        self.at = T0

    def now(self) -> datetime:
        return self.at

    def sleep(self, seconds: float) -> None:
        self.at += timedelta(seconds=seconds)


def test_waves_follow_depends_on_across_the_fleet(tmp_path: Path) -> None:
    bundle = load_bundle([write_bundle(tmp_path)])
    assert [w.workloads for w in plan_waves(bundle)] == [
        ["retail/batch", "retail/kafka", "telco/web"], ["retail/cache"], ["retail/web"]]
    assert plan_waves(bundle)[2].depends_on == {"retail/cache": ["retail/web"]}


def test_each_wave_is_committed_only_when_its_dependencies_are_ready(tmp_path: Path) -> None:
    bundle = load_bundle([write_bundle(tmp_path)])
    repo = tmp_path / "deploy"
    clock = Clock()
    seen: list[tuple[float, dict[str, dict[str, int]]]] = []
    lines: list[str] = []
    with running_prometheus(_metrics(kafka_ready_at=90), tmp_path / "prom") as url:
        def ready(at: datetime) -> dict[tuple[str, str, str, str], int]:
            seen.append(((at - T0).total_seconds(), read_current(repo)))
            return fetch_ready(bundle, url, at=at)

        result = rollout(bundle, make_plan(PLAN_A), repo, ready=ready, now=clock.now, sleep=clock.sleep,
                         wave_timeout=300, poll_interval=30, report=lines.append)
    assert result.committed == [0, 1, 2]
    assert result.waited == {1: 90.0, 2: 60.0}  # cache after kafka (ready at +90 s); web after cache (+150 s)
    assert read_current(repo) == PLAN_A
    # what the repository held while each wave waited: nothing of the wave, everything before it
    for t, current in seen:
        assert "retail/web" not in current
        if t != 90:  # at +90 s: once before the cache wave is committed, once after
            assert ("retail/cache" in current) == (t > 90), t
        assert current["retail/kafka"] == {"cloud-1": 3}
    # every commit says which wave it belongs to; cluster commits of a wave follow the previous wave's
    log = git(repo, "log", "--reverse", "--format=%B%x1e")
    waves = [(msg.split("Berth-Rollout-Wave: ")[1].split()[0], msg.strip().split("\n")[0])
             for msg in log.split("\x1e") if msg.strip()]
    assert [w for w, _ in waves] == sorted(w for w, _ in waves)
    assert any("add retail/web" in s for w, s in waves if w == "3/3")
    assert not any("retail/web" in s for w, s in waves if w != "3/3")
    assert any("retail/cache wait(s) for retail/kafka on cloud-1: 0/3 replica(s) ready" in line for line in lines)


def test_a_wave_not_ready_in_time_stops_the_rollout_and_says_what_waits_on_what(tmp_path: Path) -> None:
    bundle = load_bundle([write_bundle(tmp_path)])
    repo = tmp_path / "deploy"
    clock = Clock()
    with running_prometheus(_metrics(kafka_ready_at=None), tmp_path / "prom") as url, \
            pytest.raises(RolloutTimeout) as caught:
        rollout(bundle, make_plan(PLAN_A), repo, ready=lambda at: fetch_ready(bundle, url, at=at),
                now=clock.now, sleep=clock.sleep, wave_timeout=120, poll_interval=30)
    result = caught.value.result
    assert result.committed == [0] and result.timed_out == 1
    assert [str(n) for n in result.not_ready] == [
        "retail/cache wait(s) for retail/kafka on cloud-1: 0/3 replica(s) ready"]
    assert "wave 2/3 (retail/cache) not committed" in str(caught.value)
    assert set(read_current(repo)) == {"retail/kafka", "retail/batch", "telco/web"}  # wave 1 stays
    assert clock.at == T0 + timedelta(seconds=120)


def test_per_cluster_prometheus_servers_answer_for_their_cluster(tmp_path: Path) -> None:
    """A cluster listed in spec.prometheus.clusters is read from its own server (no cluster label)."""
    om = OpenMetrics()
    om.series("kube_statefulset_status_replicas_ready", {"namespace": "retail", "statefulset": "kafka"},
              _points({0: 3}))
    bundle_file = write_bundle(tmp_path)
    with running_prometheus(om.text(), tmp_path / "prom") as url:
        bundle_file.write_text(bundle_file.read_text() + f"""---
apiVersion: placement.berth.dev/v1alpha1
kind: MetricsSource
metadata: {{name: live}}
spec:
  prometheus:
    clusters:
      cloud-1: {{url: "{url}"}}
""")
        bundle = load_bundle([bundle_file])
        ready = fetch_ready(bundle, None, at=T0 + timedelta(seconds=60))
    assert ready == {("cloud-1", "StatefulSet", "retail", "kafka"): 3}


def _now_metrics() -> str:
    """kafka ready on cloud-1 from two minutes ago to 15 minutes ahead: the command line queries at
    wall-clock time, however slowly the machine runs the test."""
    om = OpenMetrics()
    now = time.time()
    om.series("kube_statefulset_status_replicas_ready",
              {"cluster": "cloud-1", "namespace": "retail", "statefulset": "kafka"},
              [(now - 120 + t, 3.0) for t in range(0, 1020, STEP)])
    return om.text()


def test_the_command_line_refuses_a_plan_that_does_not_fit_and_times_out_with_exit_1(tmp_path: Path) -> None:
    bundle = write_bundle(tmp_path)
    repo = tmp_path / "deploy"
    plan = tmp_path / "plan.json"
    two = {"retail/kafka": {"cloud-1": 3}, "retail/cache": {"cloud-1": 2}}
    plan.write_text(make_plan(two).to_json())
    with running_prometheus(_now_metrics(), tmp_path / "prom") as url:
        ok = subprocess.run([BERTH, "rollout", str(bundle), "--plan", str(plan), "--gitops-repo", str(repo),
                             "--prometheus", url, "--poll-interval", "0.2"], capture_output=True, text=True,
                            timeout=300)
        assert ok.returncode == 0, ok.stderr
        assert read_current(repo) == two
        # web waits for cache on edge-a, which never reports ready: exit 1, web never committed
        three = {**two, "retail/cache": {"edge-a": 2}, "retail/web": {"edge-a": 4}}
        plan.write_text(make_plan(three).to_json())
        stopped = subprocess.run([BERTH, "rollout", str(bundle), "--plan", str(plan), "--gitops-repo", str(repo),
                                  "--prometheus", url, "--wave-timeout", "1", "--poll-interval", "0.2"],
                                 capture_output=True, text=True, timeout=300)
    assert stopped.returncode == 1, stopped.stderr
    assert "retail/web wait(s) for retail/cache on edge-a: 0/2 replica(s) ready" in " ".join(stopped.stderr.split())
    assert read_current(repo) == {**two, "retail/cache": {"edge-a": 2}}
    head = git(repo, "rev-parse", "HEAD")
    data = json.loads(plan.read_text())
    data["placements"][0]["clusters"] = {"cloud-1": 99}  # more replicas than the workload has
    plan.write_text(json.dumps(data))
    refused = subprocess.run([BERTH, "rollout", str(bundle), "--plan", str(plan), "--gitops-repo", str(repo),
                              "--prometheus", "http://127.0.0.1:9"], capture_output=True, text=True, timeout=300)
    assert refused.returncode == 1 and "nothing was committed" in " ".join(refused.stderr.split())
    assert "AllOrNothing" in refused.stderr and git(repo, "rev-parse", "HEAD") == head
