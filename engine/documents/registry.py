"""Every kind a bundle may hold, in one table: ``kind`` -> pydantic model.

Registered statically: a kind is a line here, never a side effect of importing a module.
The loader (:mod:`engine.documents.bundle`) refuses any other ``kind``.
"""

from __future__ import annotations

from pydantic import BaseModel

from engine.documents.kinds import Cluster, Objective, Site, Tenant, Workload
from engine.documents.live import MetricsSource
from engine.documents.overrides import OverridePolicy
from engine.documents.policy import ClusterPlacementPolicy, PlacementPolicy
from engine.documents.scenario import Scenario

__all__ = ["KINDS"]

#: kind -> model
KINDS: dict[str, type[BaseModel]] = {
    "Cluster": Cluster,
    "Site": Site,
    "Tenant": Tenant,
    "Workload": Workload,
    "PlacementPolicy": PlacementPolicy,
    "ClusterPlacementPolicy": ClusterPlacementPolicy,
    "Objective": Objective,
    "MetricsSource": MetricsSource,
    "Scenario": Scenario,
    "OverridePolicy": OverridePolicy,
}
