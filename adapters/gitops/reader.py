"""Reading a GitOps repository back into the placement that runs now.

The record ``clusters/<cluster>/berth-placement.yaml`` lists every workload
Berth placed on the cluster with its replicas. When a workload has an overlay,
the overlay is what the controllers apply, so it wins: a record entry whose
overlay folder is gone counts as not running, and the overlay's ``replicas``
count (if someone edited it) is the number read back. Workloads without a
``source`` have no overlay; the record alone says where they run.

Reading uses the files of the work tree, not git, so it also works on a
folder written with ``commit=False``.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from adapters.gitops.layout import CLUSTERS_DIR, RECORD_FILE, RECORD_KIND
from engine import MAX_REPLICAS, GitOpsError

__all__ = ["ClusterRecord", "RecordEntry", "cluster_names", "read_current", "read_records", "recorded_names",
           "recorded_namespaces"]

#: libyaml's safe loader when PyYAML has it: a record lists every workload of its cluster
_Loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


@dataclass(frozen=True)
class RecordEntry:
    """One workload in a cluster's record, with the replicas read back."""

    workload: str
    replicas: int
    overlay: str | None = None
    base: str | None = None
    object: str | None = None
    depends_on: tuple[str, ...] = ()
    running: bool = True  # False when the record names an overlay that is gone


@dataclass
class ClusterRecord:
    """What ``clusters/<name>/berth-placement.yaml`` says (overlays applied)."""

    name: str
    format: str
    workloads: list[RecordEntry] = field(default_factory=list)

    def assignment(self) -> dict[str, int]:
        return {e.workload: e.replicas for e in self.workloads if e.running and e.replicas > 0}


def cluster_names(repo_dir: Path) -> list[str]:
    """Clusters that have a Berth record in ``repo_dir`` (sorted)."""
    root = Path(repo_dir) / CLUSTERS_DIR
    if not root.is_dir():
        return []
    return sorted(p.name for p in root.iterdir() if (p / RECORD_FILE).is_file())


def _load(path: Path) -> Any:
    try:
        return yaml.load(path.read_text(encoding="utf-8"), Loader=_Loader)
    except (OSError, UnicodeDecodeError, yaml.YAMLError, RecursionError, ValueError) as exc:
        raise GitOpsError(f"{path}: cannot read: {str(exc)[:300]}") from None


def _overlay_count(folder: Path, name: str) -> int | None:
    """``replicas[name].count`` of the overlay at ``folder``; None when it sets none."""
    doc = _load(folder / "kustomization.yaml")
    if not isinstance(doc, dict):
        return None
    entries = doc.get("replicas") or []
    if not isinstance(entries, list):
        raise GitOpsError(f"{folder / 'kustomization.yaml'}: replicas must be a list of {{name, count}}")
    for entry in entries:
        if isinstance(entry, dict) and entry.get("name") == name:
            count = entry.get("count")
            if isinstance(count, int) and not isinstance(count, bool):
                if not 0 <= count <= MAX_REPLICAS:
                    raise GitOpsError(f"{folder / 'kustomization.yaml'}: replicas count {count} is outside "
                                      f"0..{MAX_REPLICAS}")
                return count
    return None


def read_records(repo_dir: Path, only: Iterable[str] | None = None) -> dict[str, ClusterRecord]:
    """Every cluster record of ``repo_dir`` (or of the clusters ``only``); ``{}`` for a missing
    or empty repository.

    Raises:
        GitOpsError: a record exists but is not a valid ``ClusterPlacement``.
    """
    out: dict[str, ClusterRecord] = {}
    root = Path(repo_dir) / CLUSTERS_DIR
    names = cluster_names(repo_dir)
    if only is not None:
        wanted = set(only)
        names = [n for n in names if n in wanted]
    for name in names:
        path = root / name / RECORD_FILE
        doc = _load(path)
        if not isinstance(doc, dict) or doc.get("kind") != RECORD_KIND:
            raise GitOpsError(f"{path}: expected a {RECORD_KIND} document")
        spec = doc.get("spec") or {}
        workloads = (spec.get("workloads") or []) if isinstance(spec, dict) else None
        if not isinstance(workloads, list):
            raise GitOpsError(f"{path}: spec must be a mapping with a list spec.workloads")
        record = ClusterRecord(name=name, format=str(spec.get("format") or "unknown"))
        for i, raw in enumerate(workloads):
            key = raw.get("workload") if isinstance(raw, dict) else None
            replicas = raw.get("replicas") if isinstance(raw, dict) else None
            if (
                not isinstance(key, str) or "/" not in key
                or not isinstance(replicas, int) or isinstance(replicas, bool) or not 0 <= replicas <= MAX_REPLICAS
            ):
                raise GitOpsError(
                    f"{path}: spec.workloads[{i}] needs 'workload: ns/name' and integer 'replicas' "
                    f"(0..{MAX_REPLICAS})"
                )
            depends = raw.get("dependsOn") or []
            if not isinstance(depends, list) or not all(isinstance(d, str) for d in depends):
                raise GitOpsError(f"{path}: spec.workloads[{i}].dependsOn must be a list of names")
            overlay = raw.get("overlay")
            if isinstance(overlay, str) and ("\0" in overlay or len(overlay) > 4096):
                raise GitOpsError(f"{path}: spec.workloads[{i}].overlay is not a folder path")
            running = True
            if isinstance(overlay, str) and overlay:
                folder = root / name / overlay
                if not (folder / "kustomization.yaml").is_file():
                    running = False
                else:
                    count = _overlay_count(folder, key.split("/", 1)[1])
                    if count is not None:
                        replicas = count
            record.workloads.append(
                RecordEntry(
                    workload=key,
                    replicas=replicas,
                    overlay=overlay if isinstance(overlay, str) else None,
                    base=raw.get("base") if isinstance(raw.get("base"), str) else None,
                    object=raw.get("object") if isinstance(raw.get("object"), str) else None,
                    depends_on=tuple(depends),
                    running=running,
                )
            )
        out[name] = record
    return out


def read_current(repo_dir: Path) -> dict[str, dict[str, int]]:
    """``{"ns/name": {cluster: replicas}}`` as the repository says runs now.

    A missing folder, an empty repository or one Berth never wrote gives ``{}``.
    """
    current: dict[str, dict[str, int]] = {}
    for cluster, record in read_records(repo_dir).items():
        for key, replicas in record.assignment().items():
            current.setdefault(key, {})[cluster] = replicas
    return {k: dict(sorted(v.items())) for k, v in sorted(current.items())}


def recorded_names(repo_dir: Path) -> dict[str, str]:
    """``{"ns/name": object name}`` as the records say (any layout), so a writer keeps them."""
    out: dict[str, str] = {}
    for _, record in sorted(read_records(repo_dir).items()):
        for entry in record.workloads:
            if entry.object:
                out.setdefault(entry.workload, entry.object)
    return out


def recorded_namespaces(repo_dir: Path) -> dict[str, set[str]]:
    """``{cluster: namespaces}`` its ``namespaces.yaml`` declares: a writer keeps them (a drain never
    deletes a namespace, docs/tenancy.md). A file that cannot be read declares none."""
    root = Path(repo_dir) / CLUSTERS_DIR
    out: dict[str, set[str]] = {}
    for cluster in cluster_names(repo_dir):
        path = root / cluster / "namespaces.yaml"
        if not path.is_file():
            continue
        try:
            docs = list(yaml.safe_load_all(path.read_text(encoding="utf-8")))
        except (OSError, UnicodeDecodeError, yaml.YAMLError, RecursionError, ValueError):
            continue
        names = {d["metadata"]["name"] for d in docs if isinstance(d, dict) and d.get("kind") == "Namespace"
                 and isinstance(d.get("metadata"), dict) and isinstance(d["metadata"].get("name"), str)}
        if names:
            out[cluster] = names
    return out
