"""Seeded generators of realistic fleets, as bundle documents (JSON-able dicts).

Two shapes, both with the spec's features in realistic proportions:

* :func:`edge_fleet` — hundreds to thousands of small edge clusters (a few
  dozen cores, 110 pods, some with a GPU) plus a few big cloud clusters per
  region; metro *sites* with latency to nearby clusters.
* :func:`cloud_fleet` — tens of big clusters over three providers.

Mixed in: ``clusterAffinities`` tiers (edge first, then cloud), latency limits,
region spread (some with ``maxSkew``), tolerations of GPU / maintenance taints,
``PreferNoSchedule`` spot taints, tenants with a cluster selector and a quota,
a few Duplicated workloads, Aggregated division, ``preferredClusters``, some
affinity / anti-affinity, and priorities 0 / 50 / 100 / 1000 (or, with ``single_priority``, one
priority for all, as the fleet of issue 15).

``load`` (0.6–0.95) sets total requested cpu as a share of total cpu capacity.
Everything is drawn from one ``numpy`` generator seeded by ``seed``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

__all__ = ["Instance", "cloud_fleet", "edge_fleet", "generate", "national_fleet"]

API = "placement.berth.dev/v1alpha1"
REGIONS = ["eu-west", "eu-central", "us-east", "us-west", "ap-south", "ap-east"]
NAMESPACES = ["retail", "telco", "media", "iot", "payments", "logistics", "analytics", "platform"]
PRIORITIES = np.array([0, 50, 100, 1000])
PRIORITY_SHARE = np.array([0.5, 0.25, 0.2, 0.05])


@dataclass(frozen=True)
class Instance:
    """A named generator call."""

    name: str
    kind: str  # edge | cloud | national
    workloads: int
    clusters: int
    load: float
    seed: int = 1
    #: every workload at one priority (issue 15's fleet): which workloads stay out is then a cost choice
    single_priority: bool = False
    #: the tenants' cpu quotas as a multiple of what the generator draws (near their demand): 1.5 and more
    #: never binds, so a fleet at a low load fits whole (issue 15's cost target: "where everything fits")
    quota_slack: float = 1.0

    def documents(self) -> list[dict[str, Any]]:
        return generate(self)


def generate(inst: Instance) -> list[dict[str, Any]]:
    """Documents of ``inst`` (the same for the same arguments)."""
    if inst.kind == "national":
        return national_fleet(inst.workloads, inst.clusters, load=inst.load, seed=inst.seed)
    fleet = edge_fleet if inst.kind == "edge" else cloud_fleet
    return fleet(inst.workloads, inst.clusters, load=inst.load, seed=inst.seed, single_priority=inst.single_priority,
                 quota_slack=inst.quota_slack)


def _doc(kind: str, name: str, spec: dict[str, Any], *, namespace: str | None = None,
         labels: dict[str, str] | None = None) -> dict[str, Any]:
    meta: dict[str, Any] = {"name": name}
    if namespace is not None:
        meta["namespace"] = namespace
    if labels:
        meta["labels"] = labels
    return {"apiVersion": API, "kind": kind, "metadata": meta, "spec": spec}


def _cpu(milli: int) -> str:
    return f"{milli}m"


def edge_fleet(n_workloads: int, n_clusters: int, *, load: float = 0.8, seed: int = 1,
               single_priority: bool = False, quota_slack: float = 1.0) -> list[dict[str, Any]]:
    """An edge fleet: ~95% small edge clusters, a few big cloud clusters per region."""
    rng = np.random.default_rng(seed)
    regions = REGIONS[: max(2, min(len(REGIONS), n_clusters // 40 + 2))]
    n_cloud = max(len(regions), n_clusters // 20)
    n_edge = n_clusters - n_cloud
    clusters: list[dict[str, Any]] = []
    cluster_region: list[str] = []
    is_cloud: list[bool] = []
    cpu_cap: list[int] = []
    for i in range(n_clusters):
        cloud = i >= n_edge
        region = regions[i % len(regions)]
        if cloud:
            cores = int(rng.choice([256, 512, 1024]))
            gpus = int(rng.choice([0, 16, 32]))
            labels = {"tier": "cloud", "pci": "true"}
            price = {"cpu": f"{rng.uniform(0.020, 0.032):.4f}", "memory": f"{rng.uniform(0.0025, 0.0040):.5f}",
                     "nvidia.com/gpu": f"{rng.uniform(0.9, 1.4):.3f}"}
            name = f"cloud-{region}-{i - n_edge}"
            cap = {"cpu": str(cores), "memory": f"{cores * 4}Gi", "pods": cores * 8}
            taints: list[dict[str, str]] = []
        else:
            cores = int(rng.choice([16, 32, 48, 64], p=[0.3, 0.4, 0.2, 0.1]))
            gpus = int(rng.choice([0, 1, 2], p=[0.85, 0.1, 0.05]))
            labels = {"tier": "edge", "rack-power-domain": f"pd-{i % 3}"}
            if rng.random() < 0.3:
                labels["pci"] = "true"
            price = {"cpu": f"{rng.uniform(0.030, 0.050):.4f}", "memory": f"{rng.uniform(0.004, 0.006):.5f}",
                     "nvidia.com/gpu": f"{rng.uniform(1.1, 1.6):.3f}"}
            name = f"edge-{region}-{i}"
            cap = {"cpu": str(cores), "memory": f"{cores * 4}Gi", "pods": 110}
            taints = []
            u = rng.random()
            if u < 0.03:
                taints.append({"key": "maintenance", "value": "true", "effect": "NoSchedule"})
            elif u < 0.13:
                taints.append({"key": "spot", "value": "true", "effect": "PreferNoSchedule"})
        if gpus:
            cap["nvidia.com/gpu"] = gpus
            if not cloud:  # a small GPU box is kept for GPU work; big clouds have GPU node pools
                taints.append({"key": "nvidia.com/gpu", "value": "present", "effect": "NoSchedule"})
        clusters.append(_doc("Cluster", name, {
            "region": region, "zone": f"{region}-{'abc'[i % 3]}", "provider": "cloudco" if cloud else "edgeco",
            "capacity": cap, "price": price, "taints": taints}, labels=labels))
        cluster_region.append(region)
        is_cloud.append(cloud)
        cpu_cap.append(cores * 1000)
    names = [c["metadata"]["name"] for c in clusters]
    return _finish(rng, clusters, names, cluster_region, is_cloud, cpu_cap, regions, n_workloads, load,
                   sites_per_region=max(1, n_clusters // (12 * len(regions))), single_priority=single_priority,
                   quota_slack=quota_slack)


def cloud_fleet(n_workloads: int, n_clusters: int, *, load: float = 0.8, seed: int = 1,
                single_priority: bool = False, quota_slack: float = 1.0) -> list[dict[str, Any]]:
    """A cloud fleet: tens of big clusters over three providers and a few regions."""
    rng = np.random.default_rng(seed)
    regions = REGIONS[: max(2, min(len(REGIONS), n_clusters // 6))]
    providers = ["aws", "gcp", "azure"]
    clusters: list[dict[str, Any]] = []
    cluster_region: list[str] = []
    cpu_cap: list[int] = []
    for i in range(n_clusters):
        region = regions[i % len(regions)]
        provider = providers[(i // len(regions)) % 3]
        cores = int(rng.choice([128, 256, 512]))
        cap: dict[str, Any] = {"cpu": str(cores), "memory": f"{cores * 4}Gi", "pods": cores * 8}
        taints: list[dict[str, str]] = []
        if rng.random() < 0.3:
            cap["nvidia.com/gpu"] = int(rng.choice([8, 16]))
            taints.append({"key": "nvidia.com/gpu", "value": "present", "effect": "NoSchedule"})
        if rng.random() < 0.1:
            taints.append({"key": "spot", "value": "true", "effect": "PreferNoSchedule"})
        labels = {"tier": "cloud", "pci": "true" if rng.random() < 0.4 else "false",
                  "rack-power-domain": f"pd-{i % 3}"}
        clusters.append(_doc("Cluster", f"{provider}-{region}-{i}", {
            "region": region, "zone": f"{region}-{'abc'[i % 3]}", "provider": provider, "capacity": cap,
            "price": {"cpu": f"{rng.uniform(0.02, 0.045):.4f}", "memory": f"{rng.uniform(0.0025, 0.005):.5f}",
                      "nvidia.com/gpu": f"{rng.uniform(0.9, 1.6):.3f}"},
            "taints": taints}, labels=labels))
        cluster_region.append(region)
        cpu_cap.append(cores * 1000)
    names = [c["metadata"]["name"] for c in clusters]
    return _finish(rng, clusters, names, cluster_region, [True] * n_clusters, cpu_cap, regions, n_workloads,
                   load, sites_per_region=1, single_priority=single_priority, quota_slack=quota_slack)


def _sites(rng: np.random.Generator, names: list[str], cluster_region: list[str], is_cloud: list[bool],
           regions: list[str], per_region: int) -> list[dict[str, Any]]:
    sites = []
    for r, region in enumerate(regions):
        for k in range(per_region):
            table: dict[str, float] = {}
            for c, name in enumerate(names):
                if cluster_region[c] == region:
                    base = 12.0 if is_cloud[c] else 1.0
                    # metros: clusters near site k of the region are the fastest
                    table[name] = round(base + rng.uniform(0, 6) + 4.0 * ((c + k) % 5), 1)
                elif is_cloud[c] and REGIONS.index(cluster_region[c]) // 2 == REGIONS.index(region) // 2:
                    table[name] = round(rng.uniform(25, 45), 1)  # same continent, cloud only
            sites.append(_doc("Site", f"{region}-metro-{k}", {"latencyMs": table}))
        del r
    return sites


def _finish(rng: np.random.Generator, clusters: list[dict[str, Any]], names: list[str], cluster_region: list[str],
            is_cloud: list[bool], cpu_cap: list[int], regions: list[str], n_workloads: int, load: float,
            *, sites_per_region: int, single_priority: bool = False, quota_slack: float = 1.0) -> list[dict[str, Any]]:
    docs: list[dict[str, Any]] = list(clusters)
    sites = _sites(rng, names, cluster_region, is_cloud, regions, sites_per_region)
    docs += sites
    site_names = [s["metadata"]["name"] for s in sites]
    namespaces = NAMESPACES[: max(2, min(len(NAMESPACES), n_workloads // 25 + 1))]

    # workloads: shape first, then cpu scaled to the load knob
    kinds = ["plain", "tiers", "latency", "spread", "skew", "aggregated", "pci", "gpu", "dup", "count",
             "follower", "anti"]
    share = np.array([0.30, 0.16, 0.12, 0.08, 0.02, 0.06, 0.06, 0.03, 0.02, 0.08, 0.04, 0.03])
    kind_of = rng.choice(len(kinds), size=n_workloads, p=share / share.sum())
    prio = rng.choice(PRIORITIES, size=n_workloads, p=PRIORITY_SHARE)
    if single_priority:
        prio[:] = 0  # drawn all the same, so every other draw of the seed stays as it was
    replicas = np.clip(rng.geometric(0.3, size=n_workloads), 1, 12)
    cpu = rng.choice([100, 250, 500, 1000, 2000], size=n_workloads, p=[0.2, 0.3, 0.3, 0.15, 0.05]).astype(float)
    mem_per_cpu = rng.choice([1, 2, 4], size=n_workloads, p=[0.3, 0.5, 0.2])
    ns_of = rng.integers(0, len(namespaces), size=n_workloads)
    for w in range(n_workloads):
        k = kinds[kind_of[w]]
        if k == "dup":
            replicas[w] = min(replicas[w], 2)
        if k in ("spread", "skew", "count"):
            replicas[w] = max(replicas[w], 3)
        if k == "follower":
            replicas[w] = min(replicas[w], 2)
    copies = np.where(np.array([kinds[k] == "dup" for k in kind_of]), 3, 1)
    demand = float((cpu * replicas * copies).sum())
    factor = load * sum(cpu_cap) / demand
    cpu_m = np.maximum(50, np.round(cpu * factor / 50) * 50).astype(int)

    # tenants: half with a quota near their demand, payments restricted to PCI clusters
    ns_demand = np.bincount(ns_of, weights=cpu_m * replicas * copies, minlength=len(namespaces))
    for i, ns in enumerate(namespaces):
        spec: dict[str, Any] = {}
        if ns == "payments":
            spec["clusterSelector"] = {"matchLabels": {"pci": "true"}}
        if i % 2 == 1:
            spec["quota"] = {"cpu": _cpu(int(ns_demand[i] * rng.uniform(0.85, 1.1) * quota_slack // 1000 * 1000
                                             + 1000))}
        if spec:
            docs.append(_doc("Tenant", ns, spec))

    # policies: one set per namespace
    gpu_tol = [{"key": "nvidia.com/gpu", "operator": "Exists", "effect": "NoSchedule"}]
    for ns in namespaces:
        pol = {
            "plain": {"preferredClusters": [{"weight": 40, "labelSelector": {"matchLabels": {"pci": "true"}}}]},
            "tiers": {"clusterAffinities": [
                {"affinityName": "edge", "labelSelector": {"matchLabels": {"tier": "edge"}}},
                {"affinityName": "cloud", "labelSelector": {"matchLabels": {"tier": "cloud"}}}]},
            "spread": {"spreadConstraints": [{"spreadByField": "region", "minGroups": 2}], "clusters": {"min": 2}},
            "skew": {"spreadConstraints": [{"spreadByLabel": "rack-power-domain", "minGroups": 2, "maxGroups": 3,
                                            "maxSkew": 1}]},
            "aggregated": {"replicaScheduling": {"replicaDivisionPreference": "Aggregated"},
                           "clusters": {"max": 2}},
            "pci": {"clusterAffinity": {"labelSelector": {"matchLabels": {"pci": "true"}}},
                    "tolerations": [{"key": "spot", "operator": "Exists"}]},
            "gpu": {"tolerations": gpu_tol, "replicaScheduling": {"maxPerCluster": 4}},
            "dup": {"replicaScheduling": {"replicaSchedulingType": "Duplicated"}, "clusters": {"min": 3, "max": 3}},
            "count": {"replicaScheduling": {"minPerCluster": 1, "maxPerCluster": 3}, "clusters": {"min": 2, "max": 4}},
        }
        for name, spec in pol.items():
            docs.append(_doc("PlacementPolicy", name, spec, namespace=ns))
        for s, site in enumerate(site_names):
            docs.append(_doc("PlacementPolicy", f"near-{s}", {
                "latency": {"site": site, "maxMs": 25}, "replicaScheduling": {"maxPerCluster": 4}},
                namespace=ns))

    names_w = [f"app-{w:05d}" for w in range(n_workloads)]
    leaders: dict[int, int] = {}  # namespace -> a plain workload others follow or avoid
    for w in range(n_workloads):
        if kinds[kind_of[w]] == "plain" and int(ns_of[w]) not in leaders and (prio[w] >= 100 or single_priority):
            leaders[int(ns_of[w])] = w
    for w in range(n_workloads):
        k = kinds[kind_of[w]]
        ns = namespaces[ns_of[w]]
        spec: dict[str, Any] = {
            "replicas": int(replicas[w]),
            "resources": {"cpu": _cpu(int(cpu_m[w])), "memory": f"{int(cpu_m[w] * mem_per_cpu[w])}Mi"},
            "priority": int(prio[w]),
        }
        if k == "gpu":
            spec["resources"]["nvidia.com/gpu"] = 1
        if k in ("follower", "anti"):
            leader = leaders.get(int(ns_of[w]))
            if leader is None or leader == w:
                k = "plain"
            else:
                field = "affinity" if k == "follower" else "antiAffinity"
                policy_name = f"{k}-{w}"
                docs.append(_doc("PlacementPolicy", policy_name, {field: {"workloads": [names_w[leader]]}},
                                 namespace=ns))
                spec["policy"] = policy_name
        if k == "latency":
            spec["policy"] = f"near-{int(rng.integers(0, len(site_names)))}"
        elif k not in ("follower", "anti"):
            spec["policy"] = k
        docs.append(_doc("Workload", names_w[w], spec, namespace=ns))
    return docs


#: regions of a national fleet, and the share of its workloads that may run in any region's cloud
NATIONAL_REGIONS = 20
NATIONAL_SHARE = 0.02


def national_fleet(n_workloads: int, n_clusters: int, *, load: float = 0.8, seed: int = 1,
                   regions: int = NATIONAL_REGIONS) -> list[dict[str, Any]]:
    """A national fleet: ``regions`` regional edge fleets (each :func:`edge_fleet`, its tenants held to
    their region by a ``clusterSelector``) and a few national services that may use the cloud clusters
    of any region (a ``national`` namespace, 2% of the workloads, cloud tier only)."""
    rng = np.random.default_rng(seed)
    n_national = int(n_workloads * NATIONAL_SHARE)
    docs: list[dict[str, Any]] = []
    for r in range(regions):
        w_r = (n_workloads - n_national) // regions + (1 if r < (n_workloads - n_national) % regions else 0)
        c_r = n_clusters // regions + (1 if r < n_clusters % regions else 0)
        part = edge_fleet(w_r, c_r, load=load, seed=seed * 1000 + r)
        docs += _regional(part, f"r{r:02d}")
    cloud_pool = {"clusterAffinity": {"labelSelector": {"matchLabels": {"tier": "cloud"}}},
                  "replicaScheduling": {"maxPerCluster": 4}}
    docs.append(_doc("PlacementPolicy", "national", cloud_pool, namespace="national"))
    for w in range(n_national):
        docs.append(_doc("Workload", f"svc-{w:05d}", {
            "replicas": int(rng.integers(2, 9)), "priority": int(rng.choice(PRIORITIES, p=PRIORITY_SHARE)),
            "resources": {"cpu": _cpu(int(rng.choice([250, 500, 1000]))), "memory": "1Gi"}, "policy": "national"},
            namespace="national"))
    return docs


def _regional(docs: list[dict[str, Any]], tag: str) -> list[dict[str, Any]]:
    """One region's documents, renamed apart (clusters, sites, namespaces) and held to the region."""
    rename: dict[str, str] = {}
    for d in docs:
        if d["kind"] in ("Cluster", "Site"):
            rename[d["metadata"]["name"]] = f"{tag}-{d['metadata']['name']}"
    namespaces: set[str] = set()
    out: list[dict[str, Any]] = []
    for d in docs:
        d = {**d, "metadata": dict(d["metadata"]), "spec": dict(d["spec"])}
        meta, spec = d["metadata"], d["spec"]
        if d["kind"] in ("Cluster", "Site"):
            meta["name"] = rename[meta["name"]]
        if d["kind"] == "Cluster":
            spec["region"] = tag
            spec["zone"] = f"{tag}-{spec['zone'][-1]}"
        if d["kind"] == "Site":
            spec["latencyMs"] = {rename[c]: ms for c, ms in spec["latencyMs"].items()}
        if "namespace" in meta:
            meta["namespace"] = f"{meta['namespace']}-{tag}"
            namespaces.add(meta["namespace"])
        if d["kind"] == "Tenant":
            meta["name"] = f"{meta['name']}-{tag}"
        if d["kind"] == "PlacementPolicy" and "latency" in spec:
            spec["latency"] = {**spec["latency"], "site": rename[spec["latency"]["site"]]}
        out.append(d)
    held = {"fieldSelector": {"matchExpressions": [{"key": "region", "operator": "In", "values": [tag]}]}}
    tenants = {d["metadata"]["name"]: d for d in out if d["kind"] == "Tenant"}
    for ns in sorted(namespaces):
        if ns in tenants:
            given = tenants[ns]["spec"].get("clusterSelector")
            tenants[ns]["spec"]["clusterSelector"] = {**({"labelSelector": given} if given else {}), **held}
        else:
            out.append(_doc("Tenant", ns, {"clusterSelector": held}))
    return out
