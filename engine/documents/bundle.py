"""A bundle: the validated documents of one input, by kind, with where each came from.

Loaded by :mod:`engine.documents.load`, cross-checked by :mod:`engine.documents.references`.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from pathlib import Path

from pydantic import BaseModel

from engine.documents.kinds import CLUSTER_SCOPED, Cluster, Objective, Site, Tenant, Workload
from engine.documents.policy import ClusterPlacementPolicy, PlacementPolicy
from engine.documents.selection import AnyPolicy, PolicySelector

__all__ = ["Bundle", "Origin", "name_key"]


@dataclass(frozen=True)
class Origin:
    """Where a document came from, for error messages and ``source.path``."""

    file: str | None
    index: int

    @property
    def folder(self) -> Path | None:
        return Path(self.file).parent if self.file else None


@dataclass
class Bundle:
    """All documents of a bundle, validated and cross-checked."""

    clusters: list[Cluster] = field(default_factory=list)
    sites: list[Site] = field(default_factory=list)
    tenants: list[Tenant] = field(default_factory=list)
    workloads: list[Workload] = field(default_factory=list)
    policies: list[PlacementPolicy] = field(default_factory=list)
    objective: Objective | None = None
    extras: list[BaseModel] = field(default_factory=list)
    origins: dict[tuple[str, str], Origin] = field(default_factory=dict)
    cluster_policies: list[ClusterPlacementPolicy] = field(default_factory=list)

    def origin(self, kind: str, key: str) -> Origin:
        """Origin of ``kind`` document ``key`` (``ns/name`` for namespaced kinds)."""
        return self.origins.get((kind, key), Origin(None, -1))

    def add(self, doc: BaseModel) -> None:
        """File a validated document under its kind (callers check names and origins)."""
        match doc:
            case Cluster():
                self.clusters.append(doc)
            case Site():
                self.sites.append(doc)
            case Tenant():
                self.tenants.append(doc)
            case Workload():
                self.workloads.append(doc)
            case PlacementPolicy():
                self.policies.append(doc)
            case ClusterPlacementPolicy():
                self.cluster_policies.append(doc)
            case Objective():
                self.objective = doc
            case _:
                self.extras.append(doc)

    def policy_selector(self) -> PolicySelector:
        """Resolves workloads to policies (``engine.documents.selection``); build once for many workloads."""
        return PolicySelector(self.policies, self.cluster_policies)

    def policy_for(self, workload: Workload) -> AnyPolicy | None:
        """The policy of ``workload``: its ``spec.policy``, else the best match of resourceSelectors."""
        return self.policy_selector().policy_for(workload)

    def documents(self) -> list[BaseModel]:
        docs: list[BaseModel] = [*self.clusters, *self.sites, *self.tenants]
        docs += [*self.policies, *self.cluster_policies, *self.workloads]
        if self.objective is not None:
            docs.append(self.objective)
        docs += self.extras
        return docs

    def digest(self) -> str:
        """sha256 of the documents in canonical form (independent of file order)."""
        canon = sorted(
            json.dumps(d.model_dump(mode="json", by_alias=True), sort_keys=True)
            for d in self.documents()
        )
        return "sha256:" + hashlib.sha256("\n".join(canon).encode()).hexdigest()

    def copy(self) -> Bundle:
        """A deep copy, for what-if edits that must not touch the original."""
        return Bundle(
            clusters=[c.model_copy(deep=True) for c in self.clusters],
            sites=[s.model_copy(deep=True) for s in self.sites],
            tenants=[t.model_copy(deep=True) for t in self.tenants],
            workloads=[w.model_copy(deep=True) for w in self.workloads],
            policies=[p.model_copy(deep=True) for p in self.policies],
            cluster_policies=[p.model_copy(deep=True) for p in self.cluster_policies],
            objective=self.objective.model_copy(deep=True) if self.objective else None,
            extras=[e.model_copy(deep=True) for e in self.extras],
            origins=dict(self.origins),
        )


# --- reading files ----------------------------------------------------------------


def name_key(doc: BaseModel) -> str:
    """``name`` of a cluster-scoped document, ``namespace/name`` of a namespaced one (the key of ``origins``)."""
    meta = doc.metadata  # type: ignore[attr-defined]  # every registered kind has metadata; BaseModel does not say so
    if doc.kind in CLUSTER_SCOPED:  # type: ignore[attr-defined]  # likewise its kind
        return str(meta.name)
    return f"{meta.namespace}/{meta.name}"
