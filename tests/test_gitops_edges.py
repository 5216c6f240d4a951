"""What goes wrong over time and at the edges: drains, tenants under lockdown, users' edits of the
root kustomization, bases without the workload, Azure Arc names, URLs and re-runs."""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

import pytest
import yaml

from adapters.gitops import write_plan
from adapters.gitops.render import build
from engine.documents.bundle import Bundle
from engine.documents.load import load_bundle
from engine.errors import InputError
from tests.test_gitops_support import PLAN_A, git, make_bundle, make_plan, write_bundle

REPO_URL = "https://git.example.com/deploy.git"


@pytest.fixture
def bundle(tmp_path: Path) -> Bundle:
    return make_bundle(tmp_path)


# --- Argo CD ---------------------------------------------------------------------------


def test_argocd_a_drained_cluster_syncs_to_empty_and_keeps_its_namespaces(bundle: Bundle, tmp_path: Path) -> None:
    repo = tmp_path / "deploy"
    write_plan(bundle, make_plan(PLAN_A), repo, fmt="argocd")
    drained = {k: {c: n for c, n in per.items() if c != "edge-a"} for k, per in PLAN_A.items()}
    write_plan(bundle, make_plan({k: v for k, v in drained.items() if v}), repo, fmt="argocd")
    folder = repo / "clusters/edge-a"
    (app,) = yaml.safe_load_all((folder / "argocd-application.yaml").read_text())
    assert app["metadata"]["name"] == "berth-edge-a"
    # automated prune refuses to remove the last object of an Application without allowEmpty
    assert app["spec"]["syncPolicy"]["automated"]["allowEmpty"] is True
    left = build(folder)
    assert {o["kind"] for o in left} == {"Namespace"}  # the namespaces stay; every workload is pruned
    assert all(o["metadata"]["annotations"]["argocd.argoproj.io/sync-options"] == "Prune=false,Delete=false"
               for o in left)
    assert not (folder / "argocd").exists()  # the chains' folders are gone: the hub deletes their Applications


# --- Flux ------------------------------------------------------------------------------


def test_flux_service_account_per_tenant(tmp_path: Path) -> None:
    root = tmp_path / "input"
    bundle_file = write_bundle(root)
    bundle_file.write_text(bundle_file.read_text() + (
        "---\napiVersion: placement.berth.dev/v1alpha1\nkind: Tenant\n"
        "metadata: {name: retail, annotations: {placement.berth.dev/flux-service-account: retail-deployer}}\n"
        "---\napiVersion: placement.berth.dev/v1alpha1\nkind: Tenant\nmetadata: {name: telco}\n"))
    bundle = load_bundle([bundle_file])
    repo = tmp_path / "deploy"
    write_plan(bundle, make_plan(PLAN_A), repo, fmt="flux")
    sync = {o["metadata"]["name"]: o for o in build(repo / "clusters/edge-b") if o["kind"] == "Kustomization"}
    assert sync["retail.web"]["spec"]["serviceAccountName"] == "retail-deployer"
    assert "serviceAccountName" not in sync["telco.web"]["spec"]  # a tenant without it: the controller's default


def test_flux_service_account_must_be_a_name(tmp_path: Path) -> None:
    root = tmp_path / "input"
    bundle_file = write_bundle(root)
    bundle_file.write_text(bundle_file.read_text() + (
        "---\napiVersion: placement.berth.dev/v1alpha1\nkind: Tenant\n"
        "metadata: {name: retail, annotations: {placement.berth.dev/flux-service-account: Not_A_Name}}\n"))
    repo = tmp_path / "deploy"
    with pytest.raises(InputError, match=r"Tenant retail.*flux-service-account"):
        write_plan(load_bundle([bundle_file]), make_plan(PLAN_A), repo, fmt="flux")
    assert not (repo / "clusters").exists()


def test_flux_root_kustomization_keeps_users_fields_and_comments(bundle: Bundle, tmp_path: Path) -> None:
    repo = tmp_path / "deploy"
    write_plan(bundle, make_plan(PLAN_A), repo, fmt="flux")
    root = repo / "clusters/edge-a/kustomization.yaml"
    (repo / "clusters/edge-a/flux-system").mkdir()
    (repo / "clusters/edge-a/flux-system/kustomization.yaml").write_text("resources: []\n")
    (repo / "clusters/edge-a/extra.yaml").write_text("apiVersion: v1\nkind: ConfigMap\nmetadata: {name: extra}\n")
    text = root.read_text()
    text = text.replace("resources:\n", "# platform team: keep the flux-system entry first\nresources:\n")
    text += ("  - extra.yaml  # our own ConfigMap\n"
             "commonAnnotations:\n  team: platform  # who to call\n"
             "patches:\n  - target: {kind: Kustomization}\n    patch: |-\n      - op: add\n"
             "        path: /spec/force\n        value: true\n")
    root.write_text(text)
    git(repo, "add", "-A")
    git(repo, "commit", "-m", "platform edits")
    write_plan(bundle, make_plan({**PLAN_A, "retail/web": {"edge-a": 3, "edge-b": 1}}), repo, fmt="flux")
    after = root.read_text()
    for kept in ("# platform team: keep the flux-system entry first", "extra.yaml  # our own ConfigMap",
                 "team: platform  # who to call", "path: /spec/force"):
        assert kept in after, kept
    doc = yaml.safe_load(after)
    assert doc["resources"][0] == "flux-system"
    assert doc["resources"][-1] == "extra.yaml"
    assert doc["commonAnnotations"] == {"team": "platform"}
    built = build(repo / "clusters/edge-a")
    assert {o["metadata"]["name"] for o in built if o["kind"] == "ConfigMap"} == {"extra"}
    assert all(o["spec"]["force"] is True for o in built if o["kind"] == "Kustomization")
    # writing the same plan again changes no byte
    head = git(repo, "rev-parse", "HEAD")
    write_plan(bundle, make_plan({**PLAN_A, "retail/web": {"edge-a": 3, "edge-b": 1}}), repo, fmt="flux")
    assert git(repo, "rev-parse", "HEAD") == head and root.read_text() == after


# --- overlays over a base without the workload ------------------------------------------


@pytest.mark.parametrize("fmt", ["flux", "configsync"])
def test_a_base_without_the_workload_is_refused_before_committing(tmp_path: Path, fmt: str) -> None:
    bundle_file = write_bundle(tmp_path / "input")
    workload = tmp_path / "input/apps/cache/workload.yaml"
    workload.write_text(workload.read_text().replace("name: cache\n", "name: memcached\n", 1))
    repo = tmp_path / "deploy"
    write_plan(load_bundle([bundle_file]), make_plan({"retail/kafka": {"cloud-1": 3}}), repo, fmt=fmt)
    head = git(repo, "rev-parse", "HEAD")
    with pytest.raises(InputError) as err:
        write_plan(load_bundle([bundle_file]), make_plan(PLAN_A), repo, fmt=fmt)
    assert "retail/cache" in str(err.value) and "apps/cache" in str(err.value)
    assert err.value.exit_code == 2
    assert git(repo, "rev-parse", "HEAD") == head and git(repo, "status", "--porcelain") == ""


# --- Azure Arc ---------------------------------------------------------------------------


def test_arc_without_a_remote_url_is_refused(bundle: Bundle, tmp_path: Path) -> None:
    repo = tmp_path / "deploy"
    with pytest.raises(InputError, match="Azure Arc format needs the URL of a git remote") as err:
        write_plan(bundle, make_plan(PLAN_A), repo, fmt="arc")
    assert err.value.exit_code == 2
    assert not (repo / "clusters").exists()
    # files only (no clone): the placeholder URL says it must be replaced, nothing is refused
    write_plan(bundle, make_plan(PLAN_A), tmp_path / "files", fmt="arc", commit=False)
    assert "REPLACE-ME" in (tmp_path / "files/clusters/cloud-1/arc-flux-configuration.json").read_text()


def test_arc_cli_refuses_a_clone_without_remote(tmp_path: Path) -> None:
    bundle_file = write_bundle(tmp_path / "input")
    berth = Path(os.sys.executable).parent / "berth"
    proc = subprocess.run([str(berth), "place", str(bundle_file), "--gitops-repo", str(tmp_path / "deploy"),
                           "--gitops-format", "arc", "--commit", "--time-limit", "2"],
                          capture_output=True, text=True, check=False)
    assert proc.returncode == 2, proc.stderr
    assert "Azure Arc format needs the URL of a git remote" in " ".join(proc.stderr.split())


def test_arc_script_carries_the_retry_interval_and_removes_what_is_no_longer_wanted(
    bundle: Bundle, tmp_path: Path
) -> None:
    repo = tmp_path / "deploy"
    write_plan(bundle, make_plan(PLAN_A), repo, fmt="arc", repo_url=REPO_URL)
    folder = repo / "clusters/cloud-1"
    body = json.loads((folder / "arc-flux-configuration.json").read_text())["properties"]["kustomizations"]
    script = folder / "arc-flux-configuration.sh"
    for name, k in body.items():
        assert f"retry_interval={k['retryIntervalInSeconds']}s" in script.read_text(), name
    # `az` is Azure's CLI, which cannot run here: a stand-in that answers `flux show` with the
    # kustomizations Azure holds and records every other call, to run the script for real
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    log = tmp_path / "az.log"
    (bin_dir / "az").write_text(
        "#!/bin/sh\n"
        f'echo "$*" >> {log}\n'
        'case "$*" in *"flux show"*) [ -n "${AZ_EXISTING:-}" ] || exit 3; '
        'for n in $AZ_EXISTING; do echo "$n"; done ;; esac\n')
    (bin_dir / "az").chmod(0o755)
    env = {**os.environ, "PATH": f"{bin_dir}:{os.environ['PATH']}", "RESOURCE_GROUP": "rg"}

    def run(existing: str) -> list[str]:
        log.write_text("")
        subprocess.run(["sh", str(script)], env={**env, "AZ_EXISTING": existing}, check=True)
        return log.read_text().splitlines()

    calls = run("")  # a new cluster: created with every kustomization
    assert [c.split()[:3] for c in calls] == [["k8s-configuration", "flux", "show"],
                                              ["k8s-configuration", "flux", "create"]]
    assert all(f"name={n} " in calls[1] for n in body)
    calls = run("namespaces retail.kafka retail.cache retail.web old.gone")
    deleted = [c for c in calls if "kustomization delete" in c]
    assert len(deleted) == 2 and all("--yes" in c for c in deleted)
    assert any("--kustomization-name retail.web" in c for c in deleted)
    assert any("--kustomization-name old.gone" in c for c in deleted)
    assert calls[-1].split()[:3] == ["k8s-configuration", "flux", "update"]
    assert "--scope" not in calls[-1] and "--name berth" in calls[-1]


def test_arc_names_that_collide_are_refused_before_writing(bundle: Bundle, tmp_path: Path) -> None:
    """Arc names are injective (a digest replaces what Arc does not take), so only a hand-edited record
    can collide, here with the root kustomization ``namespaces``: refused, nothing written."""
    repo = tmp_path / "deploy"
    write_plan(bundle, make_plan(PLAN_A), repo, fmt="arc", repo_url=REPO_URL)
    record = repo / "clusters/cloud-1/berth-placement.yaml"
    record.write_text(record.read_text().replace("object: retail.kafka", "object: namespaces"))
    git(repo, "commit", "-qam", "hand edit")
    head = git(repo, "rev-parse", "HEAD")
    with pytest.raises(InputError) as err:
        write_plan(bundle, make_plan({**PLAN_A, "retail/web": {"cloud-1": 4}}), repo, fmt="arc", repo_url=REPO_URL)
    assert "retail/kafka" in str(err.value) and "'namespaces'" in str(err.value) and "cloud-1" in str(err.value)
    assert err.value.exit_code == 2
    assert git(repo, "rev-parse", "HEAD") == head and git(repo, "status", "--porcelain") == ""


def test_arc_names_over_63_characters_get_a_stable_digest(tmp_path: Path) -> None:
    from adapters.gitops.arc import ARC_NAME, ARC_NAME_MAX
    from tests.test_gitops_names import bundle_with

    keys = [f"{'n' * 40}/{'w' * 40}", f"{'n' * 40}/{'w' * 39}x"]
    bundle = bundle_with(tmp_path, keys)
    repo = tmp_path / "deploy"
    write_plan(bundle, make_plan({k: {"edge": 1} for k in keys}), repo, fmt="arc", repo_url=REPO_URL)
    names = set(json.loads((repo / "clusters/edge/arc-flux-configuration.json").read_text())
                ["properties"]["kustomizations"]) - {"namespaces"}
    assert len(names) == 2 and all(len(n) <= ARC_NAME_MAX and ARC_NAME.match(n) for n in names)
    again = tmp_path / "again"
    write_plan(bundle, make_plan({k: {"edge": 1} for k in keys}), again, fmt="arc", repo_url=REPO_URL)
    assert set(json.loads((again / "clusters/edge/arc-flux-configuration.json").read_text())
               ["properties"]["kustomizations"]) - {"namespaces"} == names
