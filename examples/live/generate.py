"""Write OpenMetrics for a bundle's fleet, as kube-state-metrics and blackbox would.

    python examples/live/generate.py examples/edge-retail --end now > fleet.om
    promtool tsdb create-blocks-from openmetrics fleet.om DATA_DIR

The data is deterministic (seeded) and covers the last ``--minutes`` minutes
before ``--end`` every 30 s. For each Cluster of the bundle: schedulable nodes
whose allocatable is 125% of the file's capacity, a tainted control-plane node
(excluded by Berth), sometimes a cordoned node (excluded), GPU nodes tainted
``nvidia.com/gpu:NoSchedule`` (counted), Running, Pending and Succeeded pods
that Berth does not manage (a local load of 10-70%), and pods labelled
``app.kubernetes.io/managed-by=berth`` (not subtracted). So the live free
capacity differs from the file's, and more on a few busy stores.

It also stages the situations ``berth`` must report:
``STALE`` (metrics stopped 20 minutes ago), ``MISSING`` (no metrics) and
``EXTRA`` (metrics for a cluster the bundle lacks). Probes: every (site,
cluster) latency of the bundle, with jitter, a congested uplink for
``CONGESTED``, and a few failed probes that Berth must ignore.
"""

from __future__ import annotations

import argparse
import random
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from engine import load_bundle

STALE = "edge-zurich-1"
MISSING = "edge-vienna-1"
EXTRA = "edge-milan-1"
CONGESTED = {"edge-paris-1": 6.0, "edge-nyc-1": 4.0}
BUSY = {"edge-paris-1": 0.85, "edge-nyc-2": 0.8, "regional-eu-west-1": 0.7}
STEP = 30


class Writer:
    def __init__(self) -> None:
        self.families: dict[str, list[str]] = {}

    def add(self, metric: str, labels: dict[str, str], value: float, times: list[int]) -> None:
        text = ",".join(f'{k}="{v}"' for k, v in sorted(labels.items()) if v != "")
        lines = self.families.setdefault(metric, [])
        lines.extend(f"{metric}{{{text}}} {value:g} {t}" for t in times)

    def points(self, metric: str, labels: dict[str, str], pts: list[tuple[int, float]]) -> None:
        text = ",".join(f'{k}="{v}"' for k, v in sorted(labels.items()))
        self.families.setdefault(metric, []).extend(f"{metric}{{{text}}} {v:g} {t}" for t, v in pts)

    def text(self) -> str:
        out = []
        for metric, lines in self.families.items():
            out.append(f"# TYPE {metric} gauge")
            out.extend(lines)
        return "\n".join([*out, "# EOF"]) + "\n"


def node(w: Writer, cluster: str, name: str, times: list[int], alloc: dict[str, float], *,
         taint: tuple[str, str] | None = None, cordoned: bool = False, region: str = "",
         zone: str = "") -> None:
    units = {"cpu": "core", "memory": "byte"}
    for resource, value in alloc.items():
        w.add("kube_node_status_allocatable", {"cluster": cluster, "node": name,
              "resource": resource, "unit": units.get(resource, "integer")}, value, times)
    w.add("kube_node_spec_unschedulable", {"cluster": cluster, "node": name}, int(cordoned), times)
    w.add("kube_node_labels", {"cluster": cluster, "node": name,
          "label_topology_kubernetes_io_region": region,
          "label_topology_kubernetes_io_zone": zone}, 1, times)
    if taint:
        w.add("kube_node_spec_taint", {"cluster": cluster, "node": name, "key": taint[0],
              "value": "", "effect": taint[1]}, 1, times)


def pod(w: Writer, cluster: str, name: str, node_name: str, phase: str, times: list[int],
        cpu: float, memory: float, gpu: int = 0, *, berth: bool = False) -> None:
    base = {"cluster": cluster, "namespace": "berth-apps" if berth else "store-local", "pod": name}
    w.add("kube_pod_info", {**base, "node": node_name}, 1, times)
    for p in ("Pending", "Running", "Succeeded", "Failed", "Unknown"):
        w.add("kube_pod_status_phase", {**base, "phase": p}, int(p == phase), times)
    labels = {**base, "label_app_kubernetes_io_managed_by": "berth" if berth else "helm"}
    w.add("kube_pod_labels", labels, 1, times)
    requests = {"cpu": (cpu, "core"), "memory": (memory, "byte")}
    if gpu:
        requests["nvidia_com_gpu"] = (gpu, "integer")
    for resource, (value, unit) in requests.items():
        w.add("kube_pod_container_resource_requests", {**base, "container": "main",
              "node": node_name, "resource": resource, "unit": unit}, value, times)


def generate(bundle_paths: list[str], end: int, minutes: int, seed: int = 7) -> str:
    bundle = load_bundle(bundle_paths)
    rng = random.Random(seed)
    w = Writer()
    fresh = list(range(end - minutes * 60, end + 1, STEP))
    stale = list(range(end - 30 * 60, end - 20 * 60 + 1, STEP))
    clusters = [(c.name, dict(c.spec.capacity), c.spec.region or "", c.spec.zone or "")
                for c in bundle.clusters]
    clusters.append((EXTRA, {"cpu": 8000, "memory": 32 * 2**30, "pods": 110}, "eu-west", ""))
    for name, cap, region, zone in clusters:
        if name == MISSING:
            continue
        times = stale if name == STALE else fresh
        n_nodes = 2 if cap.get("cpu", 0) <= 16000 else 4
        per = {r: v * 1.25 / n_nodes for r, v in cap.items() if r != "nvidia.com/gpu"}
        alloc = {"cpu": per.get("cpu", 0) / 1000, "memory": per.get("memory", 0),
                 "pods": round(per.get("pods", 110))}
        for i in range(n_nodes):
            node(w, name, f"{name}-n{i}", times, alloc, region=region, zone=zone,
                 taint=("dedicated", "PreferNoSchedule") if i == 1 else None)
        node(w, name, f"{name}-cp", times, {"cpu": 4, "memory": 16 * 2**30, "pods": 110},
             taint=("node-role.kubernetes.io/control-plane", "NoSchedule"), region=region)
        if rng.random() < 0.3:
            node(w, name, f"{name}-old", times, {"cpu": 8, "memory": 32 * 2**30, "pods": 110},
                 cordoned=True, region=region)
            pod(w, name, "legacy-0", f"{name}-old", "Running", times, 6, 8 * 2**30)
        if cap.get("nvidia.com/gpu"):
            node(w, name, f"{name}-gpu", times,
                 {"cpu": 32, "memory": 128 * 2**30, "pods": 110,
                  "nvidia_com_gpu": cap["nvidia.com/gpu"]},
                 taint=("nvidia.com/gpu", "NoSchedule"), region=region)
            pod(w, name, "train-0", f"{name}-gpu", "Running", times, 8, 32 * 2**30, gpu=2)
        # Local load: 10-70% of the file's capacity (more on the busy ones).
        load = BUSY.get(name, rng.uniform(0.1, 0.7))
        cpu_total = cap.get("cpu", 0) / 1000 * load
        mem_total = cap.get("memory", 0) * load
        n_pods = 4
        for k in range(n_pods):
            phase = "Pending" if k == n_pods - 1 else "Running"
            node_name = "" if phase == "Pending" else f"{name}-n{k % n_nodes}"
            pod(w, name, f"local-{k}", node_name, phase, times,
                round(cpu_total / n_pods, 3), round(mem_total / n_pods))
        pod(w, name, "batch-done", f"{name}-n0", "Succeeded", times, 4, 8 * 2**30)
        pod(w, name, "berth-web-0", f"{name}-n0", "Running", times, 2, 4 * 2**30, berth=True)
    for site in bundle.sites:
        for cluster, ms in sorted(site.spec.latency_ms.items()):
            if cluster == MISSING:
                continue
            factor = CONGESTED.get(cluster, 1.0)
            times = stale if cluster == STALE else fresh
            pts_d, pts_s = [], []
            for t in times:
                ok = rng.random() > 0.03
                duration = ms * factor * rng.uniform(0.9, 1.25) / 1000 if ok else 5.0
                pts_d.append((t, round(duration, 6)))
                pts_s.append((t, 1.0 if ok else 0.0))
            labels = {"job": "blackbox", "instance": f"{cluster}.probe", "site": site.name,
                      "cluster": cluster}
            w.points("probe_duration_seconds", labels, pts_d)
            w.points("probe_success", labels, pts_s)
    return w.text()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("bundle", nargs="+")
    parser.add_argument("--end", default="now", help="last sample: 'now' or a Unix time")
    parser.add_argument("--minutes", type=int, default=10)
    args = parser.parse_args()
    end = int(time.time()) - 15 if args.end == "now" else int(args.end)
    end -= end % STEP
    sys.stdout.write(generate(args.bundle, end, args.minutes))


if __name__ == "__main__":
    main()
