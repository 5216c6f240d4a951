"""What-if scenarios: applying a ``Scenario`` (:mod:`engine.documents.scenario`) to a copy of a bundle.

Pure code: no files, no sockets, no clock. A scenario is a list of *edits*
applied in order to a deep copy of the baseline bundle; a *sweep* repeats the
scenario with one parameter taking each value of a range. The result of a
solve is summarised (:func:`engine.summary.summarize`) into plain numbers that travel well
(to Dask workers and back, into a report, into JSON).

Edits (each list entry has exactly one key)::

    removeClusters: ClusterMatch          # lose clusters, a region, a provider
    scaleCapacity:  {clusters: ClusterMatch?, factor: 0.5, resources: [cpu]?}
    scaleDemand:    {workloads: WorkloadMatch?, factor: 1.5}
    addClusters:    [{like: edge-paris-1?, metadata: {...}, spec: {...}, latencyMs: {site: ms}}]
    changePrices:   {clusters: ClusterMatch?, factor: 1.2 | set: {cpu: "0.05"}, resources: [..]?}
    changePolicy:   {namespace: retail, name: low-latency, patch: {...}}   # JSON merge patch of spec

Decisions where the spec is silent (written also in ``docs/whatif.md``):

- A selector that matches nothing is an error (a typo must not silently
  simulate "nothing happened").
- ``scaleDemand`` rounds replicas up and never below 1; ``scaleCapacity``
  rounds down (capacity is a promise, demand a need).
- Removing a cluster removes it from every Site's ``latencyMs`` too.
"""

from __future__ import annotations

import copy
import math
import re
from typing import Any

from pydantic import ValidationError

from engine.documents.bundle import Bundle
from engine.documents.kinds import Cluster, Workload
from engine.documents.policy import PlacementPolicySpec
from engine.documents.references import check_references
from engine.documents.scenario import AddCluster, ClusterMatch, Edit, Scenario, WorkloadMatch
from engine.documents.selectors import affinity_mask, selector_mask
from engine.errors import InputError
from engine.plan import Plan
from engine.planner import place
from engine.quantity import is_byte_resource
from engine.summary import summarize

__all__ = ["apply_scenario", "expand", "solve_scenario"]




# --- sweeps -------------------------------------------------------------------------

_STEP = re.compile(r"([A-Za-z_][A-Za-z0-9_]*)|\[(\d+)\]")


def _set_path(data: dict[str, Any], path: str, value: Any) -> None:
    parts: list[str | int] = []
    for chunk in path.split("."):
        pos = 0
        for m in _STEP.finditer(chunk):
            if m.start() != pos:
                break
            parts.append(m.group(1) if m.group(1) is not None else int(m.group(2)))
            pos = m.end()
        if pos != len(chunk) or not chunk:
            raise ValueError(f"cannot read parameter path {path!r} near {chunk!r}")
    node: Any = data
    for i, part in enumerate(parts):
        last = i == len(parts) - 1
        if isinstance(part, int):
            if not isinstance(node, list) or part >= len(node):
                raise ValueError(f"parameter {path!r}: no item [{part}]")
            if last:
                node[part] = value
            else:
                node = node[part]
        else:
            if not isinstance(node, dict):
                raise ValueError(f"parameter {path!r}: {part!r} is not inside a mapping")
            if last:
                node[part] = value
            else:
                if node.get(part) is None:
                    node[part] = {}
                node = node[part]


def _label(value: Any) -> str:
    return f"{value:g}" if isinstance(value, float) else str(value)


def expand(scenario: Scenario) -> list[tuple[str, Scenario, Any]]:
    """The scenarios to solve: ``(name, scenario without sweep, sweep value or None)``.

    Raises:
        InputError: a sweep point does not make a valid scenario.
    """
    sweep = scenario.spec.sweep
    if sweep is None:
        return [(scenario.name, scenario, None)]
    out: list[tuple[str, Scenario, Any]] = []
    base = scenario.model_dump(by_alias=True, exclude_none=True)
    base["spec"].pop("sweep", None)
    leaf = sweep.parameter.rsplit(".", 1)[-1]
    for value in sweep.points():
        data = copy.deepcopy(base)
        try:
            _set_path(data["spec"], sweep.parameter, value)
            point = Scenario.model_validate(data)
        except (ValueError, ValidationError) as exc:
            raise InputError(
                f"sweep value {value!r} does not make a valid scenario: {exc}",
                document=f"Scenario {scenario.name}", field=f"spec.sweep.parameter ({sweep.parameter})",
            ) from None
        out.append((f"{scenario.name}[{leaf}={_label(value)}]", point, value))
    return out


# --- applying edits -------------------------------------------------------------------


def _cluster_mask(bundle: Bundle, match: ClusterMatch | None) -> list[bool]:
    if match is None:
        return [True] * len(bundle.clusters)
    names = [c.metadata.name for c in bundle.clusters]
    labels = [c.effective_labels() for c in bundle.clusters]
    mask: list[bool] = affinity_mask(match, names, labels).tolist()
    for field, wanted in (("region", match.regions), ("zone", match.zones), ("provider", match.providers)):
        if wanted:
            mask = [m and getattr(c.spec, field) in wanted for m, c in zip(mask, bundle.clusters, strict=True)]
    return mask


def _workload_matches(w: Workload, match: WorkloadMatch | None) -> bool:
    if match is None:
        return True
    if match.namespaces and w.metadata.namespace not in match.namespaces:
        return False
    if match.names and w.metadata.name not in match.names and w.key not in match.names:
        return False
    if match.label_selector is not None and not selector_mask(match.label_selector, [w.metadata.labels])[0]:
        return False
    if match.min_priority is not None and w.spec.priority < match.min_priority:
        return False
    return not (match.max_priority is not None and w.spec.priority > match.max_priority)


def _picked(bundle: Bundle, match: ClusterMatch | None, where: str) -> list[Cluster]:
    mask = _cluster_mask(bundle, match)
    picked = [c for c, m in zip(bundle.clusters, mask, strict=True) if m]
    if not picked:
        raise InputError("matches no cluster of the bundle", field=where)
    return picked


def _merge_patch(target: Any, patch: Any) -> Any:
    """RFC 7386 JSON merge patch."""
    if not isinstance(patch, dict):
        return copy.deepcopy(patch)
    out = dict(target) if isinstance(target, dict) else {}
    for key, value in patch.items():
        if value is None:
            out.pop(key, None)
        else:
            out[key] = _merge_patch(out.get(key), value)
    return out


def _apply_edit(bundle: Bundle, edit: Edit, where: str) -> str:
    """Apply one edit in place; return a sentence saying what changed."""
    if edit.remove_clusters is not None:
        gone = {c.metadata.name for c in _picked(bundle, edit.remove_clusters, f"{where}.removeClusters")}
        bundle.clusters = [c for c in bundle.clusters if c.metadata.name not in gone]
        for site in bundle.sites:
            site.spec.latency_ms = {k: v for k, v in site.spec.latency_ms.items() if k not in gone}
        return f"removed {len(gone)} cluster(s): {', '.join(sorted(gone))}"
    if edit.scale_capacity is not None:
        scale = edit.scale_capacity
        picked = _picked(bundle, scale.clusters, f"{where}.scaleCapacity.clusters")
        for c in picked:
            c.spec.capacity = {
                r: (math.floor(v * scale.factor) if not scale.resources or r in scale.resources else v)
                for r, v in c.spec.capacity.items()
            }
        what = ", ".join(scale.resources) if scale.resources else "all resources"
        return f"scaled capacity ({what}) of {len(picked)} cluster(s) by {scale.factor:g}"
    if edit.scale_demand is not None:
        demand = edit.scale_demand
        picked_w = [w for w in bundle.workloads if _workload_matches(w, demand.workloads)]
        if not picked_w:
            raise InputError("matches no workload of the bundle", field=f"{where}.scaleDemand.workloads")
        before = sum(w.spec.replicas for w in picked_w)
        for w in picked_w:
            w.spec.replicas = max(1, math.ceil(w.spec.replicas * demand.factor - 1e-9))
        after = sum(w.spec.replicas for w in picked_w)
        return f"scaled replicas of {len(picked_w)} workload(s) by {demand.factor:g}: {before} -> {after}"
    if edit.add_clusters is not None:
        return _add_clusters(bundle, edit.add_clusters, f"{where}.addClusters")
    if edit.change_prices is not None:
        prices = edit.change_prices
        picked = _picked(bundle, prices.clusters, f"{where}.changePrices.clusters")
        for c in picked:
            if prices.set is not None:
                c.spec.price = {**c.spec.price, **prices.set}
            else:
                assert prices.factor is not None
                c.spec.price = {
                    r: (v * prices.factor if not prices.resources or r in prices.resources else v)
                    for r, v in c.spec.price.items()
                }
        how = f"set {prices.set}" if prices.set is not None else f"scaled by {prices.factor:g}"
        return f"prices of {len(picked)} cluster(s) {how}"
    assert edit.change_policy is not None
    change = edit.change_policy
    for policy in bundle.policies:
        if policy.metadata.namespace == change.namespace and policy.metadata.name == change.name:
            data = _merge_patch(policy.spec.model_dump(by_alias=True, exclude_none=True), change.patch)
            try:
                policy.spec = PlacementPolicySpec.model_validate(data)
            except ValidationError as exc:
                first = exc.errors()[0]
                raise InputError(
                    str(first.get("msg", "invalid")),
                    field=f"{where}.changePolicy.patch." + ".".join(str(x) for x in first["loc"]),
                ) from None
            return f"patched PlacementPolicy {change.namespace}/{change.name}"
    raise InputError(f"no PlacementPolicy {change.namespace}/{change.name} in the bundle",
                     field=f"{where}.changePolicy")


def _add_clusters(bundle: Bundle, entries: list[AddCluster], where: str) -> str:
    names = {c.metadata.name for c in bundle.clusters}
    added: list[str] = []
    for i, entry in enumerate(entries):
        name = entry.metadata.name
        if name in names:
            raise InputError(f"a Cluster named {name!r} already exists", field=f"{where}[{i}].metadata.name")
        spec: dict[str, Any] = {}
        labels: dict[str, str] = {}
        latencies: dict[str, float] = {}
        if entry.like is not None:
            model = next((c for c in bundle.clusters if c.metadata.name == entry.like), None)
            if model is None:
                raise InputError(f"no Cluster named {entry.like!r} to copy", field=f"{where}[{i}].like")
            spec = model.spec.model_dump(by_alias=True, exclude_none=True)
            # capacity is in base units after parsing: hand it back as exact quantities
            spec["capacity"] = {r: _base_quantity(r, v) for r, v in model.spec.capacity.items()}
            spec["price"] = {r: str(v) for r, v in model.spec.price.items()}
            labels = dict(model.metadata.labels)
            latencies = {s.metadata.name: s.spec.latency_ms[entry.like]
                         for s in bundle.sites if entry.like in s.spec.latency_ms}
        spec = _merge_patch(spec, entry.spec)
        labels.update(entry.metadata.labels)
        latencies.update(entry.latency_ms)
        raw = {"apiVersion": "placement.berth.dev/v1alpha1", "kind": "Cluster",
               "metadata": {"name": name, "labels": labels}, "spec": spec}
        try:
            cluster = Cluster.model_validate(raw)
        except ValidationError as exc:
            first = exc.errors()[0]
            raise InputError(str(first.get("msg", "invalid")),
                             field=f"{where}[{i}]." + ".".join(str(x) for x in first["loc"])) from None
        sites = {s.metadata.name: s for s in bundle.sites}
        for site, ms in latencies.items():
            if site not in sites:
                raise InputError(f"no Site named {site!r}", field=f"{where}[{i}].latencyMs.{site}")
            sites[site].spec.latency_ms[name] = ms
        bundle.clusters.append(cluster)
        names.add(name)
        added.append(name)
    return f"added {len(added)} cluster(s): {', '.join(added)}"


def _base_quantity(resource: str, base: int) -> str | int:
    """A quantity string that parses back to exactly ``base`` base units."""
    if resource == "cpu":
        return f"{base}m"
    if is_byte_resource(resource):
        return str(base)
    return base


def apply_scenario(bundle: Bundle, scenario: Scenario) -> tuple[Bundle, list[str]]:
    """A copy of ``bundle`` with the scenario's edits applied, and what each edit did.

    The original bundle is never touched. ``Scenario`` documents in the
    bundle's extras are left out of the copy.

    Raises:
        InputError: an edit matches nothing or makes an invalid document; the
            field names the edit, e.g. ``spec.edits[1].removeClusters``.
    """
    out = bundle.copy()
    out.extras = [e for e in out.extras if not isinstance(e, Scenario)]
    notes: list[str] = []
    for i, edit in enumerate(scenario.spec.edits):
        where = f"spec.edits[{i}]"
        try:
            notes.append(_apply_edit(out, edit, where))
        except InputError as exc:
            raise InputError(exc.detail, document=f"Scenario {scenario.name}", field=exc.field) from None
    try:
        check_references(out)
    except InputError as exc:
        raise InputError(
            f"after the edits, {exc.document}: {exc.detail}", document=f"Scenario {scenario.name}",
            field=exc.field,
        ) from None
    return out, notes


def solve_scenario(
    bundle: Bundle,
    scenario: Scenario,
    *,
    current: dict[str, dict[str, int]] | None,
    time_limit: float,
    baseline: Plan | None = None,
) -> dict[str, Any]:
    """Apply ``scenario`` to a copy of ``bundle``, solve it against ``current`` (moves costed), summarise.

    A scenario whose edits leave the bundle as it is (a sweep's x1.0 point) is not re-solved: a
    re-solve could only reshuffle equally good plans and show moves that no scenario caused. Its
    result is ``baseline`` itself when that is the plan of ``current`` with no moves of its own,
    else the placement ``current`` kept exactly as it runs.
    """
    edited, notes = apply_scenario(bundle, scenario)
    if current is not None and edited.digest() == bundle.digest():
        notes.append("the edits leave the bundle as it is: the baseline placement stays where it runs")
        if baseline is not None and not baseline.moves and baseline.assignment() == current:
            plan = baseline
        else:
            plan = place(edited, current=current, time_limit=time_limit, max_moves=0, freeze_current=True)
    else:
        plan = place(edited, current=current, time_limit=time_limit)
    out = summarize(edited, plan)
    out["notes"] = notes
    return out
