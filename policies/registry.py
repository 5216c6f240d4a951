"""The one list of policy plugins, in the order filters are applied.

Adding a concern is one module plus one line here. Filter order matters only
for explanations: the first filter that excludes a cluster names the reason.
"""

from __future__ import annotations

from policies.base import Plugin
from policies.capacity import CapacityPlugin
from policies.cluster_affinity import ClusterAffinityPlugin
from policies.colocation import CoLocationPlugin
from policies.cost import CostPlugin
from policies.latency import LatencyPlugin
from policies.moves import MovesPlugin
from policies.preferences import PreferencesPlugin
from policies.replicas import ReplicaSchedulingPlugin
from policies.spread import SpreadPlugin
from policies.taints import TaintsPlugin
from policies.tenancy import TenancyPlugin

__all__ = ["PLUGINS", "plugin_by_name"]


def _register(*plugins: Plugin) -> tuple[Plugin, ...]:
    names = [p.name for p in plugins]
    duplicates = {n for n in names if names.count(n) > 1}
    if duplicates or "" in names:
        raise RuntimeError(f"plugin names must be unique and non-empty: {sorted(duplicates)}")
    return plugins


PLUGINS: tuple[Plugin, ...] = _register(
    TenancyPlugin(),
    ClusterAffinityPlugin(),
    TaintsPlugin(),
    LatencyPlugin(),
    SpreadPlugin(),
    ReplicaSchedulingPlugin(),
    CapacityPlugin(),
    CoLocationPlugin(),
    PreferencesPlugin(),
    CostPlugin(),
    MovesPlugin(),
)


def plugin_by_name(name: str) -> Plugin:
    """The registered plugin called ``name``."""
    for plugin in PLUGINS:
        if plugin.name == name:
            return plugin
    raise KeyError(name)
