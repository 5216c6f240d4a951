"""Object and folder names are an injective, stable function of (namespace, name), in real git repos."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
import yaml

from adapters.gitops import read_current, write_plan
from adapters.gitops.arc import ARC_NAME, ARC_NAME_MAX
from engine.documents.bundle import Bundle
from engine.documents.load import load_bundle
from engine.errors import InputError
from tests.test_gitops_support import git, make_plan

API = "placement.berth.dev/v1alpha1"


def bundle_with(tmp_path: Path, keys: list[str]) -> Bundle:
    docs: list[dict] = [{"apiVersion": API, "kind": "Cluster", "metadata": {"name": "edge"},
                         "spec": {"capacity": {"cpu": "64", "memory": "64Gi"}}}]
    root = tmp_path / "input"
    for key in keys:
        ns, name = key.split("/")
        app = root / "apps" / ns / name
        app.mkdir(parents=True, exist_ok=True)
        (app / "deployment.yaml").write_text(yaml.safe_dump({
            "apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": name},
            "spec": {"selector": {"matchLabels": {"app": name}}, "template": {"metadata": {"labels": {"app": name}},
                     "spec": {"containers": [{"name": "c", "image": "nginx:1.27"}]}}}}))
        (app / "kustomization.yaml").write_text("resources:\n- deployment.yaml\n")
        docs.append({"apiVersion": API, "kind": "Workload", "metadata": {"name": name, "namespace": ns},
                     "spec": {"replicas": 1, "resources": {"cpu": "1"}, "source": {"path": f"apps/{ns}/{name}"}}})
    (root / "bundle.yaml").write_text(yaml.safe_dump_all(docs))
    return load_bundle([root / "bundle.yaml"])


def flux_names(repo: Path) -> dict[str, str]:
    """Flux Kustomization name -> workload annotation, from every sync file."""
    out = {}
    for f in sorted((repo / "clusters" / "edge" / "sync").rglob("*.yaml")):
        doc = yaml.safe_load(f.read_text())
        out[doc["metadata"]["name"]] = doc["metadata"]["annotations"]["placement.berth.dev/workload"]
    return out


def test_a_colliding_newcomer_renames_nothing(tmp_path: Path) -> None:
    repo = tmp_path / "deploy"
    first = bundle_with(tmp_path, ["alpha/b-web"])
    write_plan(first, make_plan({"alpha/b-web": {"edge": 1}}), repo)
    before = git(repo, "rev-parse", "HEAD")
    both = bundle_with(tmp_path, ["alpha/b-web", "alpha-b/web"])
    write_plan(both, make_plan({"alpha/b-web": {"edge": 1}, "alpha-b/web": {"edge": 1}}), repo)
    changed = git(repo, "diff", "--name-only", before, "HEAD").splitlines()
    assert not [f for f in changed if "alpha/b-web" in f], changed  # the running workload is untouched
    assert flux_names(repo) == {"alpha.b-web": "alpha/b-web", "alpha-b.web": "alpha-b/web"}
    assert (repo / "clusters/edge/apps/alpha/b-web").is_dir() and (repo / "clusters/edge/apps/alpha-b/web").is_dir()


def test_old_layout_names_are_kept_and_read(tmp_path: Path) -> None:
    """A repository written with ``<namespace>-<name>`` names: read, then updated without a rename."""
    repo = tmp_path / "deploy"
    bundle = bundle_with(tmp_path, ["retail/web", "retail/api"])
    write_plan(bundle, make_plan({"retail/web": {"edge": 1}}), repo)
    # rewrite it as the older layout named it
    sync = repo / "clusters/edge/sync/retail/web.yaml"
    sync.write_text(sync.read_text().replace("name: retail.web", "name: retail-web"))
    record = repo / "clusters/edge/berth-placement.yaml"
    record.write_text(record.read_text().replace("object: retail.web", "object: retail-web"))
    git(repo, "commit", "-qam", "older layout")
    old_sync = sync.read_bytes()
    assert read_current(repo) == {"retail/web": {"edge": 1}}
    write_plan(bundle, make_plan({"retail/web": {"edge": 1}, "retail/api": {"edge": 1}}), repo)
    assert sync.read_bytes() == old_sync
    assert flux_names(repo) == {"retail-web": "retail/web", "retail.api": "retail/api"}
    assert read_current(repo) == {"retail/web": {"edge": 1}, "retail/api": {"edge": 1}}


def test_a_name_taken_in_the_repository_is_an_input_error(tmp_path: Path) -> None:
    repo = tmp_path / "deploy"
    bundle = bundle_with(tmp_path, ["retail/web", "retail/api"])
    write_plan(bundle, make_plan({"retail/web": {"edge": 1}}), repo)
    record = repo / "clusters/edge/berth-placement.yaml"
    record.write_text(record.read_text().replace("object: retail.web", "object: retail.api"))
    git(repo, "commit", "-qam", "hand edit")
    head = git(repo, "rev-parse", "HEAD")
    with pytest.raises(InputError, match=r"Workload retail/api.*metadata\.name.*'retail\.api'.*retail/web"):
        write_plan(bundle, make_plan({"retail/web": {"edge": 1}, "retail/api": {"edge": 1}}), repo)
    assert git(repo, "rev-parse", "HEAD") == head


def test_arc_names_are_valid_and_injective(tmp_path: Path) -> None:
    long_ns = "n" * 40
    keys = ["alpha/b-web", "alpha-b/web", f"{long_ns}/{'w' * 40}", f"{long_ns}/{'w' * 39}x"]
    bundle = bundle_with(tmp_path, keys)
    repo = tmp_path / "deploy"
    write_plan(bundle, make_plan({k: {"edge": 1} for k in keys}), repo, fmt="arc", repo_url="https://git.example.com/deploy.git")
    config = json.loads((repo / "clusters/edge/arc-flux-configuration.json").read_text())
    names = [n for n in config["properties"]["kustomizations"] if n != "namespaces"]
    assert len(set(names)) == len(keys)
    assert {"alpha.b-web", "alpha-b.web"} <= set(names)
    for name in names:
        assert len(name) <= ARC_NAME_MAX and ARC_NAME.match(name), name
    assert all(re.fullmatch(rf"{long_ns}\.w+-[0-9a-f]{{8}}", n) for n in names if n.startswith(long_ns))
    # stable: writing again with one workload fewer keeps the others' names
    write_plan(bundle, make_plan({k: {"edge": 1} for k in keys[1:]}), repo, fmt="arc", repo_url="https://git.example.com/deploy.git")
    again = json.loads((repo / "clusters/edge/arc-flux-configuration.json").read_text())
    assert set(again["properties"]["kustomizations"]) == {"namespaces", *names} - {"alpha.b-web"}
