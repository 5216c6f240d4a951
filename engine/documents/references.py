"""Cross-document checks of a bundle: every name a document refers to exists, no cycles.

Each error names the document that refers and the field (spec section 1).
"""

from __future__ import annotations

from engine.documents.bundle import Bundle, Origin, name_key
from engine.documents.policy import ClusterPlacementPolicy
from engine.errors import DependencyCycle, InputError, ReferenceNotFound
from engine.limits import echo

__all__ = ["check_references"]


def _ref_error(bundle: Bundle, kind: str, key: str, field: str, message: str) -> ReferenceNotFound:
    origin = bundle.origin(kind, key)
    return ReferenceNotFound(message, file=origin.file, document=_where(kind, key, origin), field=field)


def _where(kind: str, key: str, origin: Origin) -> str:
    return f"{kind} {key} (document #{origin.index + 1})" if origin.index >= 0 else f"{kind} {key}"


def check_references(bundle: Bundle) -> None:
    cluster_names = {c.metadata.name for c in bundle.clusters}
    site_names = {s.metadata.name for s in bundle.sites}
    policies = {(p.metadata.namespace, p.metadata.name) for p in bundle.policies}
    workloads = {(w.metadata.namespace, w.metadata.name) for w in bundle.workloads}

    for site in bundle.sites:
        for cluster in site.spec.latency_ms:
            if cluster not in cluster_names:
                raise _ref_error(
                    bundle, "Site", site.metadata.name, f"spec.latencyMs.{cluster}",
                    f"no Cluster named {echo(cluster)} in the bundle",
                )
    for cpolicy in bundle.cluster_policies:
        _check_cluster_policy(bundle, cpolicy, site_names)
    for policy in bundle.policies:
        ns, key = policy.metadata.namespace, name_key(policy)
        spec = policy.spec
        if spec.latency is not None and spec.latency.site not in site_names:
            raise _ref_error(
                bundle, "PlacementPolicy", key, "spec.latency.site",
                f"no Site named {echo(spec.latency.site)} (sites: {sorted(site_names) or 'none'})",
            )
        for i, sel in enumerate(spec.resource_selectors or []):
            if sel.namespace is not None and sel.namespace != ns:
                origin = bundle.origin("PlacementPolicy", key)
                raise InputError(
                    f"a PlacementPolicy selects workloads of its own namespace {ns!r} only, got "
                    f"{sel.namespace!r} (a ClusterPlacementPolicy selects across namespaces)",
                    file=origin.file, document=f"PlacementPolicy {key}",
                    field=f"spec.resourceSelectors[{i}].namespace",
                )
        for field_name, term in (("affinity", spec.affinity), ("antiAffinity", spec.anti_affinity)):
            for i, name in enumerate(term.workloads if term else []):
                if (ns, name) not in workloads:
                    raise _ref_error(
                        bundle, "PlacementPolicy", key, f"spec.{field_name}.workloads[{i}]",
                        f"no Workload named {echo(name)} in namespace {echo(ns)}",
                    )
        avoided = spec.anti_affinity.workloads if spec.anti_affinity else []
        both = set(spec.affinity.workloads if spec.affinity else []) & set(avoided)
        if both:
            name = sorted(both)[0]
            i = avoided.index(name)
            origin = bundle.origin("PlacementPolicy", key)
            raise InputError(
                f"{echo(name)} is in both affinity (run beside it) and antiAffinity (never share a cluster)",
                file=origin.file, document=_where("PlacementPolicy", key, origin),
                field=f"spec.antiAffinity.workloads[{i}]",
            )
    _check_mutual_affinity(bundle)
    for workload in bundle.workloads:
        ns, key = workload.metadata.namespace, workload.key
        if workload.spec.policy is not None and (ns, workload.spec.policy) not in policies:
            raise _ref_error(
                bundle, "Workload", key, "spec.policy",
                f"no PlacementPolicy named {echo(workload.spec.policy)} in namespace {echo(ns)}",
            )
        for i, dep in enumerate(workload.spec.depends_on):
            if (ns, dep) not in workloads:
                raise _ref_error(
                    bundle, "Workload", key, f"spec.dependsOn[{i}]",
                    f"no Workload named {echo(dep)} in namespace {echo(ns)}",
                )
    _check_cycles(bundle)


def _check_mutual_affinity(bundle: Bundle) -> None:
    """Affinity of ``w`` to ``v`` contradicts anti-affinity between them, which is symmetric."""
    by_key = {w.key: w for w in bundle.workloads}
    selector = bundle.policy_selector()  # once: building it per workload was quadratic in policies
    policies = [selector.policy_for(w) for w in bundle.workloads]
    anti: set[tuple[str, str]] = set()
    for w, policy in zip(bundle.workloads, policies, strict=True):
        term = policy.spec.anti_affinity if policy is not None else None
        for name in term.workloads if term else []:
            v = f"{w.metadata.namespace}/{name}"
            if v != w.key:
                anti.add((w.key, v))
                anti.add((v, w.key))
    if not anti:
        return
    for w, policy in zip(bundle.workloads, policies, strict=True):
        term = policy.spec.affinity if policy is not None else None
        for i, name in enumerate(term.workloads if term else []):
            v = f"{w.metadata.namespace}/{name}"
            if (w.key, v) in anti and v in by_key and policy is not None:
                kind = str(policy.kind)
                pkey = name_key(policy)
                origin = bundle.origin(kind, pkey)
                raise InputError(
                    f"{w.key} must run beside {v} (affinity), but the policy of {v} keeps it away "
                    "(antiAffinity is symmetric): no cluster can hold both",
                    file=origin.file, document=_where(kind, pkey, origin), field=f"spec.affinity.workloads[{i}]",
                )


def _check_cluster_policy(bundle: Bundle, policy: ClusterPlacementPolicy, site_names: set[str]) -> None:
    """A ClusterPlacementPolicy needs selectors, and names no workloads (those are namespaced)."""
    key = policy.metadata.name
    origin = bundle.origin("ClusterPlacementPolicy", key)

    def fail(field_name: str, message: str) -> InputError:
        return InputError(message, file=origin.file, document=f"ClusterPlacementPolicy {key}", field=field_name)

    spec = policy.spec
    if not spec.resource_selectors:
        raise fail("spec.resourceSelectors", "is required in a ClusterPlacementPolicy "
                   "(use [{kind: Workload}] to select every workload)")
    for field_name, term in (("affinity", spec.affinity), ("antiAffinity", spec.anti_affinity)):
        if term is not None:
            raise fail(f"spec.{field_name}", "names workloads of one namespace: put it in a namespaced "
                       "PlacementPolicy")
    if spec.latency is not None and spec.latency.site not in site_names:
        raise _ref_error(
            bundle, "ClusterPlacementPolicy", key, "spec.latency.site",
            f"no Site named {spec.latency.site!r} (sites: {sorted(site_names) or 'none'})",
        )


def _check_cycles(bundle: Bundle) -> None:
    graph = {
        w.key: [f"{w.metadata.namespace}/{d}" for d in w.spec.depends_on] for w in bundle.workloads
    }
    state: dict[str, int] = {}  # 1 = on the stack, 2 = done
    for start in graph:
        if state.get(start):
            continue
        stack: list[tuple[str, int]] = [(start, 0)]
        path: list[str] = [start]
        state[start] = 1
        while stack:
            node, i = stack[-1]
            if i < len(graph[node]):
                stack[-1] = (node, i + 1)
                nxt = graph[node][i]
                if state.get(nxt) == 1:
                    cycle = [*path[path.index(nxt):], nxt]
                    origin = bundle.origin("Workload", node)
                    raise DependencyCycle(
                        "dependsOn forms a cycle: " + " -> ".join(cycle),
                        file=origin.file,
                        document=_where("Workload", node, origin),
                        field="spec.dependsOn",
                    )
                if not state.get(nxt):
                    state[nxt] = 1
                    stack.append((nxt, 0))
                    path.append(nxt)
            else:
                state[node] = 2
                stack.pop()
                path.pop()
