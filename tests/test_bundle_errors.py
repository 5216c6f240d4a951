"""Bad input gets one clear error naming the file, the document and the field.

Each case writes a small bundle file, runs the real ``berth place`` command in
a subprocess and checks exit code 2, the message, and that nothing was written.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from engine.bundle import load_bundle
from engine.errors import DependencyCycle, DuplicateName, InputError, ReferenceNotFound

HEAD = "apiVersion: placement.berth.dev/v1alpha1\n"
CLUSTER = HEAD + "kind: Cluster\nmetadata: {name: c1}\nspec: {capacity: {cpu: '4'}}\n"


def doc(kind: str, body: str) -> str:
    return HEAD + f"kind: {kind}\n" + body


CASES = [
    ("unknown-kind", doc("Gadget", "metadata: {name: g}\n"),
     InputError, ["Gadget default/g", "field kind", "unknown kind 'Gadget'"]),
    ("unknown-field", doc("Workload", "metadata: {name: w}\nspec: {replicas: 1, replica: 2}\n"),
     InputError, ["Workload default/w", "field spec.replica", "is not a known field"]),
    ("bad-quantity", doc("Workload", "metadata: {name: w}\nspec: {replicas: 1, resources: {cpu: 2 cores}}\n"),
     InputError, ["Workload default/w", "field spec.resources", "expected a quantity"]),
    ("fractional-gpu", doc("Workload", "metadata: {name: w}\nspec: {replicas: 1, resources: {nvidia.com/gpu: 0.5}}\n"),
     InputError, ["spec.resources", "counted in whole units"]),
    ("missing-replicas", doc("Workload", "metadata: {name: w}\nspec: {resources: {cpu: 1}}\n"),
     InputError, ["Workload default/w", "field spec.replicas", "is required"]),
    ("replicas-string", doc("Workload", "metadata: {name: w}\nspec: {replicas: 'three'}\n"),
     InputError, ["field spec.replicas", "expected an integer"]),
    ("missing-policy", doc("Workload", "metadata: {name: w, namespace: shop}\nspec: {replicas: 1, policy: nope}\n"),
     ReferenceNotFound,
     ["Workload shop/w", "field spec.policy", "no PlacementPolicy named 'nope' in namespace 'shop'"]),
    ("missing-dependency", doc("Workload", "metadata: {name: w}\nspec: {replicas: 1, dependsOn: [kafka]}\n"),
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


@pytest.mark.parametrize("name", ["unknown-field", "dependency-cycle", "yaml-syntax"])
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

    docs = list(yaml.safe_load_all(CLUSTER + "---\n" + doc("Workload", "metadata: {name: w}\nspec: {replicas: 2}\n")))
    (tmp_path / "b.json").write_text(json.dumps(docs), encoding="utf-8")
    folder = tmp_path / "folder"
    folder.mkdir()
    (folder / "a.yaml").write_text(CLUSTER, encoding="utf-8")
    (folder / "sub").mkdir()
    (folder / "sub" / "w.yml").write_text(
        doc("Workload", "metadata: {name: w}\nspec: {replicas: 2}\n"), encoding="utf-8")
    (folder / "sub" / "kustomization.yaml").write_text("resources: [deployment.yaml]\n", encoding="utf-8")
    from_json = load_bundle([tmp_path / "b.json"])
    from_folder = load_bundle([folder])
    assert from_json.digest() == from_folder.digest()
    assert [w.key for w in from_folder.workloads] == ["default/w"]
