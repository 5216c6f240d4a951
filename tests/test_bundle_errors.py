"""Bad input gets one clear error naming the file, the document and the field.

Each case writes a small bundle file, runs the real ``berth place`` command in
a subprocess and checks exit code 2, the message, and that nothing was written.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from engine.documents.load import load_bundle
from engine.errors import DependencyCycle, DuplicateName, InputError, ReferenceNotFound

HEAD = "apiVersion: placement.berth.dev/v1alpha1\n"
CLUSTER = HEAD + "kind: Cluster\nmetadata: {name: c1}\nspec: {capacity: {cpu: '4'}}\n"


def doc(kind: str, body: str) -> str:
    return HEAD + f"kind: {kind}\n" + body


def wl(spec: str) -> str:
    """A Workload named w with ``spec``."""
    return doc("Workload", "metadata: {name: w}\nspec: " + spec + "\n")


CASES = [
    ("unknown-kind", doc("Gadget", "metadata: {name: g}\n"),
     InputError, ["Gadget default/g", "field kind", "unknown kind 'Gadget'"]),
    ("unknown-field", wl("{replicas: 1, replica: 2}"),
     InputError, ["Workload default/w", "field spec.replica", "is not a known field"]),
    ("bad-quantity", wl("{replicas: 1, resources: {cpu: 2 cores}}"),
     InputError, ["Workload default/w", "field spec.resources", "expected a quantity"]),
    ("fractional-gpu", wl("{replicas: 1, resources: {nvidia.com/gpu: 0.5}}"),
     InputError, ["spec.resources", "counted in whole units"]),
    ("missing-replicas", wl("{resources: {cpu: 1}}"),
     InputError, ["Workload default/w", "field spec.replicas", "is required"]),
    ("replicas-string", wl("{replicas: 'three'}"),
     InputError, ["field spec.replicas", "expected an integer"]),
    ("missing-policy", doc("Workload", "metadata: {name: w, namespace: shop}\nspec: {replicas: 1, policy: nope}\n"),
     ReferenceNotFound,
     ["Workload shop/w", "field spec.policy", "no PlacementPolicy named 'nope' in namespace 'shop'"]),
    ("missing-dependency", wl("{replicas: 1, dependsOn: [kafka]}"),
     ReferenceNotFound, ["field spec.dependsOn[0]", "no Workload named 'kafka'"]),
    ("missing-affinity-target",
     doc("PlacementPolicy", "metadata: {name: p}\nspec: {affinity: {workloads: [ghost]}}\n"),
     ReferenceNotFound, ["PlacementPolicy default/p", "spec.affinity.workloads[0]", "'ghost'"]),
    ("missing-site", doc("PlacementPolicy", "metadata: {name: p}\nspec: {latency: {site: mars, maxMs: 5}}\n"),
     ReferenceNotFound, ["spec.latency.site", "no Site named 'mars'"]),
    ("dependency-cycle",
     doc("Workload", "metadata: {name: a}\nspec: {replicas: 1, dependsOn: [b]}\n") + "---\n"
     + doc("Workload", "metadata: {name: b}\nspec: {replicas: 1, dependsOn: [a]}\n"),
     DependencyCycle, ["dependsOn forms a cycle", "default/a -> default/b -> default/a"]),
    ("duplicate-name", CLUSTER,
     DuplicateName, ["Cluster c1", "field metadata.name", "already declared"]),
    ("yaml-syntax", "apiVersion: placement.berth.dev/v1alpha1\nkind: Cluster\nmetadata: {name: [c2\n",
     InputError, ["invalid YAML at line"]),
    ("bad-api-version", "apiVersion: v1\nkind: Cluster\nmetadata: {name: c3}\nspec: {}\n",
     InputError, ["field apiVersion", "expected apiVersion 'placement.berth.dev/v1alpha1'"]),
    ("bad-operator",
     doc("PlacementPolicy", "metadata: {name: p}\nspec: {clusterAffinity: {labelSelector: "
         "{matchExpressions: [{key: a, operator: Gt, values: [x]}]}}}\n"),
     InputError, ["spec.clusterAffinity.labelSelector.matchExpressions[0]", "compares integers"]),
    ("bad-name", doc("Cluster", "metadata: {name: Edge_1}\nspec: {}\n"),
     InputError, ["field metadata.name", "is not a valid name"]),
    ("bounds-reversed",
     doc("PlacementPolicy", "metadata: {name: p}\nspec: {replicaScheduling: {minPerCluster: 3, maxPerCluster: 2}}\n"),
     InputError, ["spec.replicaScheduling", "maxPerCluster (2) is below minPerCluster (3)"]),
    # crashes found by fuzzing (each raised a bare Python exception before)
    ("replicas-beyond-int64", wl("{replicas: 100000000000000000000}"),
     InputError, ["Workload default/w (document #2)", "field spec.replicas", "does not fit a 64-bit integer"]),
    ("priority-beyond-int64", wl("{replicas: 1, priority: 9223372036854775808}"),
     InputError, ["field spec.priority", "does not fit a 64-bit integer"]),
    ("max-per-cluster-beyond-int64",
     doc("PlacementPolicy", "metadata: {name: p}\nspec: {replicaScheduling: {maxPerCluster: 100000000000000000000}}\n"),
     InputError, ["field spec.replicaScheduling.maxPerCluster", "64-bit"]),
    ("cpu-huge", wl("{replicas: 1, resources: {cpu: '1e30'}}"),
     InputError, ["field spec.resources", "out of range: at most 1000000 cores"]),
    ("capacity-huge", doc("Cluster", "metadata: {name: c2}\nspec: {capacity: {memory: 2Pi}}\n"),
     InputError, ["Cluster c2", "field spec.capacity", "out of range: at most 1Pi"]),
    ("quantity-exponent-huge", wl("{replicas: 1, resources: {cpu: '1e999999999'}}"),
     InputError, ["field spec.resources", "exponent out of range"]),
    ("quantity-nan", wl("{replicas: 1, resources: {memory: .nan}}"),
     InputError, ["field spec.resources", "expected a quantity"]),
    ("quantity-inf", wl("{replicas: 1, resources: {cpu: .inf}}"),
     InputError, ["field spec.resources", "expected a quantity"]),
    ("resources-not-a-mapping", wl("{replicas: 1, resources: [cpu]}"),
     InputError, ["field spec.resources", "expected a mapping of resource names to quantities"]),
    ("price-not-a-mapping", doc("Cluster", "metadata: {name: c2}\nspec: {price: cheap}\n"),
     InputError, ["Cluster c2", "field spec.price", "expected a mapping of resource names to prices"]),
    ("price-inf", doc("Cluster", "metadata: {name: c2}\nspec: {price: {cpu: .inf}}\n"),
     InputError, ["field spec.price", "a price must be a number from 0 to 1000"]),
    ("latency-inf", doc("Site", "metadata: {name: s}\nspec: {latencyMs: {c1: .inf}}\n"),
     InputError, ["Site s", "field spec.latencyMs.c1", "finite number"]),
    ("weight-inf", doc("Objective", "metadata: {name: o}\nspec: {weights: {cost: .inf}}\n"),
     InputError, ["Objective o", "field spec.weights.cost", "finite number"]),
    ("source-path-nul", doc("Workload", "metadata: {name: w}\nspec: {replicas: 1, source: {path: \"apps/a\\0b\"}}\n"),
     InputError, ["field spec.source.path", "without control characters", "'apps/a\\x00b'"]),
    ("source-path-huge", wl("{replicas: 1, source: {path: " + "a" * 5000 + "}}"),
     InputError, ["field spec.source.path", "…(5000 characters)"]),
    ("duration-huge", doc("MetricsSource", "metadata: {name: m}\nspec: {maxAge: 99999999999999999999999y}\n"),
     InputError, ["field spec.maxAge", "out of range: at most one year"]),
    ("deep-nesting-libyaml", doc("Workload", "metadata: {name: w}\nspec: {replicas: 1, resources: "
                                 + "[" * 5000 + "]" * 5000 + "}\n"),
     InputError, ["invalid YAML at line", "nesting depth"]),
    ("deep-nesting", wl("{replicas: 1, resources: " + "[" * 100 + "]" * 100 + "}"),
     InputError, ["Workload default/w", "is nested deeper than 64 levels"]),
    ("alias-bomb", doc("Workload", "metadata: {name: w}\nspec:\n  replicas: 1\n  x0: &a0 [1, 1, 1, 1, 1, 1, 1, 1]\n"
                       + "".join(f"  x{i}: &a{i} [" + ", ".join([f"*a{i - 1}"] * 8) + "]\n" for i in range(1, 9))),
     InputError, ["Workload default/w", "expands to more than 200000 values"]),
    ("pods-request", wl("{replicas: 2, resources: {pods: 5}}"),
     InputError, ["field spec.resources", "each replica is one pod, so a pods request can only be 1, got 5"]),
    ("affinity-and-anti-affinity",
     doc("PlacementPolicy", "metadata: {name: p}\nspec: {affinity: {workloads: [w]}, antiAffinity: {workloads: [w]}}\n")
     + "---\n" + wl("{replicas: 1}"),
     InputError, ["PlacementPolicy default/p", "field spec.antiAffinity.workloads[0]", "in both affinity"]),
    ("affinity-against-partner-anti-affinity",
     doc("PlacementPolicy", "metadata: {name: near}\nspec: {affinity: {workloads: [w]}}\n") + "---\n"
     + doc("PlacementPolicy", "metadata: {name: apart}\nspec: {antiAffinity: {workloads: [v]}}\n") + "---\n"
     + wl("{replicas: 1, policy: apart}") + "---\n"
     + doc("Workload", "metadata: {name: v}\nspec: {replicas: 1, policy: near}\n"),
     InputError, ["PlacementPolicy default/near", "field spec.affinity.workloads[0]", "antiAffinity is symmetric"]),
    ("non-string-key", doc("Cluster", "metadata: {name: c2, labels: {1: a}}\nspec: {}\n"),
     InputError, ["Cluster c2", "field metadata.labels", "expected a string key, got 1"]),
]


def _write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "bundle.yaml"
    path.write_text(CLUSTER + "---\n" + text, encoding="utf-8")
    return path


@pytest.mark.parametrize(("text", "error", "fragments"), [pytest.param(t, e, f, id=n) for n, t, e, f in CASES])
def test_load_raises_named_error(tmp_path: Path, text: str, error: type[InputError], fragments: list[str]) -> None:
    path = _write(tmp_path, text)
    with pytest.raises(error) as info:
        load_bundle([path])
    message = str(info.value)
    assert str(path) in message
    for fragment in fragments:
        assert fragment in message


@pytest.mark.parametrize("name", ["unknown-field", "dependency-cycle", "yaml-syntax", "replicas-beyond-int64",
                                  "resources-not-a-mapping", "deep-nesting", "source-path-nul"])
def test_cli_exits_2_without_traceback_and_writes_nothing(tmp_path: Path, name: str) -> None:
    text = next(t for n, t, _, _ in CASES if n == name)
    path = _write(tmp_path, text)
    out = tmp_path / "plan.json"
    berth = Path(sys.executable).parent / "berth"
    result = subprocess.run([str(berth), "place", str(path), "--output", str(out)],
                            capture_output=True, text=True, timeout=120)
    assert result.returncode == 2
    assert "Traceback" not in result.stderr + result.stdout
    assert "error:" in result.stderr and str(path) in result.stderr.replace("\n", "")
    assert not out.exists()


def test_missing_file_is_input_error(tmp_path: Path) -> None:
    with pytest.raises(InputError, match="no such file or folder"):
        load_bundle([tmp_path / "nope.yaml"])


def test_json_list_and_folder_load_the_same(tmp_path: Path) -> None:
    import json

    import yaml

    docs = list(yaml.safe_load_all(CLUSTER + "---\n" + wl("{replicas: 2}")))
    (tmp_path / "b.json").write_text(json.dumps(docs), encoding="utf-8")
    folder = tmp_path / "folder"
    folder.mkdir()
    (folder / "a.yaml").write_text(CLUSTER, encoding="utf-8")
    (folder / "sub").mkdir()
    (folder / "sub" / "w.yml").write_text(
        wl("{replicas: 2}"), encoding="utf-8")
    (folder / "sub" / "kustomization.yaml").write_text("resources: [deployment.yaml]\n", encoding="utf-8")
    from_json = load_bundle([tmp_path / "b.json"])
    from_folder = load_bundle([folder])
    assert from_json.digest() == from_folder.digest()
    assert [w.key for w in from_folder.workloads] == ["default/w"]


# (document with {v} for the value, the field, the largest accepted value, the smallest refused one)
EDGES = [
    (wl("{replicas: {v}}"), "spec.replicas", "1000000", "1000001"),
    (wl("{replicas: 1, priority: {v}}"), "spec.priority",
     "1000000000", "1000000001"),
    (wl("{replicas: 1, priority: {v}}"), "spec.priority",
     "-1000000000", "-1000000001"),
    (wl("{replicas: 1, resources: {cpu: '{v}'}}"), "spec.resources",
     "1000000", "1000000001m"),
    (doc("Cluster", "metadata: {name: c2}\nspec: {capacity: {memory: '{v}'}}\n"), "spec.capacity",
     "1Pi", "1125899906842625"),
    (doc("Tenant", "metadata: {name: t}\nspec: {quota: {nvidia.com/gpu: {v}}}\n"), "spec.quota",
     "1000000000", "1000000001"),
    (wl("{replicas: 1000000, resources: {cpu: '{v}'}}"), "spec",
     "1000", "1001"),
    (doc("Cluster", "metadata: {name: c2}\nspec: {price: {cpu: '{v}'}}\n"), "spec.price", "1000", "1000.001"),
    (doc("Site", "metadata: {name: s}\nspec: {latencyMs: {c1: {v}}}\n"), "spec.latencyMs", "1000000", "1000000.5"),
    (doc("Objective", "metadata: {name: o}\nspec: {weights: {moves: {v}}}\n"), "spec.weights.moves",
     "1000000", "1000001"),
    (doc("Objective", "metadata: {name: o}\nspec: {maxMoves: {v}}\n"), "spec.maxMoves", "1000000000", "1000000001"),
    (doc("PlacementPolicy", "metadata: {name: p}\nspec: {replicaScheduling: {minPerCluster: {v}}}\n"),
     "spec.replicaScheduling.minPerCluster", "1000000", "1000001"),
    (doc("PlacementPolicy", "metadata: {name: p}\nspec: {clusters: {min: {v}}}\n"), "spec.clusters.min",
     "100000", "100001"),
    (doc("PlacementPolicy", "metadata: {name: p}\nspec: {spreadConstraints: [{spreadByField: zone, minGroups: {v}}]}"),
     "spec.spreadConstraints[0].minGroups", "100000", "100001"),
    (doc("PlacementPolicy", "metadata: {name: p}\nspec: {spreadConstraints: [{spreadByField: zone, maxSkew: {v}}]}\n"),
     "spec.spreadConstraints[0].maxSkew", "1000000", "1000001"),
    (doc("PlacementPolicy", "metadata: {name: p}\nspec: {latency: {site: s, maxMs: {v}}}\n")
     + "---\n" + doc("Site", "metadata: {name: s}\nspec: {}\n"), "spec.latency.maxMs", "1000000", "1000001"),
    (doc("MetricsSource", "metadata: {name: m}\nspec: {lookback: {v}}\n"), "spec.lookback", "365d", "366d"),
    (doc("Workload", "metadata: {name: {v}}\nspec: {replicas: 1}\n"), "metadata.name", "a" * 63, "a" * 64),
]


@pytest.mark.parametrize(("template", "field", "largest", "refused"), EDGES,
                         ids=[f"{e[1]}={e[2]}" for e in EDGES])
def test_documented_ranges_edges(tmp_path: Path, template: str, field: str, largest: str, refused: str) -> None:
    """The largest value of docs/input-limits.md loads; the next one is refused, naming the field."""
    load_bundle([_write(tmp_path, template.replace("{v}", largest))])
    with pytest.raises(InputError) as info:
        load_bundle([_write(tmp_path, template.replace("{v}", refused))])
    assert f"field {field}" in str(info.value)
    assert "(document #2)" in str(info.value)


def test_fleet_sums_beyond_int64_are_an_input_error_not_an_overflow(tmp_path: Path) -> None:
    """Each value in range, but 1 TiB requests beside a 1-byte one (gcd 1) on many clusters add up past 2^61."""
    from engine.build import build_problem

    clusters = "".join(doc("Cluster", f"metadata: {{name: c{i}}}\nspec: {{capacity: {{memory: 1Pi}}}}\n") + "---\n"
                       for i in range(60))
    workloads = "---\n".join(doc("Workload", f"metadata: {{name: w{i}}}\nspec: {{replicas: 1000, "
                                               "resources: {memory: 1Ti}}\n") for i in range(100))
    path = tmp_path / "fleet.yaml"
    path.write_text(clusters + workloads + "---\n" + doc("Workload", "metadata: {name: tiny}\nspec: {replicas: 1, "
                                                         "resources: {memory: '1'}}\n"), encoding="utf-8")
    with pytest.raises(InputError, match=r"field spec.resources.memory: the workloads' memory requests"):
        build_problem(load_bundle([path]))


def test_clusteraffinities_tier_limit(tmp_path: Path) -> None:
    """1,000 tiers load (docs/input-limits.md); 1,001 are refused naming the field: the engine keeps a
    tier index per cluster in 16 bits, and a clear error beats a silently clipped tier."""
    def policy(n: int) -> str:
        tiers = ", ".join(f"{{affinityName: t{i}, clusterNames: [c1]}}" for i in range(n))
        return doc("PlacementPolicy", "metadata: {name: p}\nspec: {clusterAffinities: [" + tiers + "]}\n")

    load_bundle([_write(tmp_path, policy(1000))])
    with pytest.raises(InputError) as info:
        load_bundle([_write(tmp_path, policy(1001))])
    assert "field spec" in str(info.value) and "at most 1000" in str(info.value)
    assert "(document #2)" in str(info.value)
