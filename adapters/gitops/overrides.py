"""OverridePolicy rules as the RFC 6902 operations a cluster's overlay applies to a workload's object.

Each operation is computed against the object as the earlier rules left it (a working copy of
the base's Deployment or StatefulSet), and applied to that copy with ``jsonpatch`` at once, so
that a path which does not exist is an input error naming the OverridePolicy, its file and the
field, before anything is written. The overlay then carries the same operations as one kustomize
JSON6902 patch, so ``kubectl kustomize`` yields exactly the object computed here.

Order (later wins, as in Karmada): policies by how specifically they select the workload
(every workload, then by labels, then by name), then by name; inside a policy its rules in
document order; inside a rule image, command, args, labels, annotations, plaintext.
"""

from __future__ import annotations

import copy
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import jsonpatch
import jsonpointer

from engine import (
    Bundle,
    Cluster,
    ImageOverrider,
    InputError,
    ListOverrider,
    MapOverrider,
    OverridePolicy,
    Overriders,
    Workload,
    affinity_mask,
    match_priority,
)

__all__ = ["Image", "OverrideTarget", "override_ops", "policies_for"]

#: Berth sets the replicas of every overlay: a rule may not.
_OWNED_PATHS = ("/spec/replicas", "/metadata/name", "/metadata/namespace")
_TEMPLATE = "/spec/template/spec"


@dataclass
class Image:
    """``[registry/]repository[:tag|@digest]``, split the way Docker reads a reference."""

    registry: str
    repository: str
    tag: str  # "" when none; "sha256:..." for a digest

    @classmethod
    def parse(cls, ref: str) -> Image:
        first, sep, rest = ref.partition("/")
        registry = ""
        if sep and ("." in first or ":" in first or first == "localhost"):
            registry, ref = first, rest
        tag = ""
        if "@" in ref:
            ref, tag = ref.split("@", 1)
        elif ":" in ref.rsplit("/", 1)[-1]:
            ref, tag = ref.rsplit(":", 1)
        return cls(registry, ref, tag)

    def __str__(self) -> str:
        text = f"{self.registry}/{self.repository}" if self.registry else self.repository
        if self.tag:
            text += ("@" if ":" in self.tag else ":") + self.tag
        return text

    def change(self, rule: ImageOverrider) -> Image:
        attr = {"Registry": "registry", "Repository": "repository", "Tag": "tag"}[rule.component]
        old = getattr(self, attr)
        new = {"add": old + rule.value, "replace": rule.value, "remove": ""}[rule.operator]
        return Image(**{**self.__dict__, attr: new})


@dataclass(frozen=True)
class OverrideTarget:
    """The object a workload's overrides apply to, and where it was found (for messages)."""

    kind: str
    name: str
    body: dict[str, Any]
    file: str


def policies_for(bundle: Bundle, workload: Workload) -> list[OverridePolicy]:
    """The OverridePolicies of ``workload``'s namespace that select it, in the order they apply."""
    found: list[tuple[int, str, OverridePolicy]] = []
    for doc in bundle.extras:
        if not isinstance(doc, OverridePolicy) or doc.metadata.namespace != workload.metadata.namespace:
            continue
        implicit = 1 if doc.spec.resource_selectors is None else match_priority(doc, workload)  # type: ignore[arg-type]
        if implicit:
            found.append((implicit, doc.metadata.name, doc))
    return [p for _, _, p in sorted(found, key=lambda t: (t[0], t[1]))]


def _containers(body: dict[str, Any]) -> list[tuple[str, dict[str, Any]]]:
    """``(pointer, container)`` of every container and init container of the pod template."""
    spec = body.get("spec", {}).get("template", {}).get("spec", {})
    out: list[tuple[str, dict[str, Any]]] = []
    for group in ("initContainers", "containers"):
        for i, c in enumerate(spec.get(group) or []):
            if isinstance(c, dict):
                out.append((f"{_TEMPLATE}/{group}/{i}", c))
    return out


def _escape(key: str) -> str:
    return key.replace("~", "~0").replace("/", "~1")


class _Computer:
    """Turns the rules that match one cluster into operations, applying each to a working copy."""

    def __init__(self, bundle: Bundle, target: OverrideTarget) -> None:
        self.bundle, self.target = bundle, target
        self.body = copy.deepcopy(target.body)
        self.ops: list[dict[str, Any]] = []

    def fail(self, policy: OverridePolicy, field: str, message: str) -> InputError:
        key = f"{policy.metadata.namespace}/{policy.metadata.name}"
        origin = self.bundle.origin("OverridePolicy", key)
        where = f"OverridePolicy {key}" + (f" (document #{origin.index + 1})" if origin.index >= 0 else "")
        return InputError(f"{message} (in {self.target.kind} {self.target.name} of {self.target.file})",
                          file=origin.file, document=where, field=field)

    def apply(self, ops: list[dict[str, Any]], fail: Callable[[str], InputError]) -> None:
        for op in ops:
            if any(op["path"] == p or op["path"].startswith(p + "/") for p in _OWNED_PATHS):
                raise fail(f"path {op['path']} is set by Berth (replicas, name and namespace of every overlay)")
            try:
                jsonpatch.apply_patch(self.body, [op], in_place=True)
            except (jsonpatch.JsonPatchException, jsonpointer.JsonPointerException) as exc:
                raise fail(f"cannot {op['op']} {op['path']}: {exc}") from None
            self.ops.append(op)

    def rule(self, policy: OverridePolicy, index: int, overriders: Overriders) -> None:
        base = f"spec.overrideRules[{index}].overriders"
        for j, image_rule in enumerate(overriders.image_overrider):
            self._image(policy, f"{base}.imageOverrider[{j}]", image_rule)
        for name, rules in (("command", overriders.command_overrider), ("args", overriders.args_overrider)):
            for j, list_rule in enumerate(rules):
                self._list(policy, f"{base}.{name}Overrider[{j}]", name, list_rule)
        for name, map_rules in (("labels", overriders.labels_overrider),
                                ("annotations", overriders.annotations_overrider)):
            for j, map_rule in enumerate(map_rules):
                self._map(policy, f"{base}.{name}Overrider[{j}]", name, map_rule)
        for j, text in enumerate(overriders.plaintext):
            field = f"{base}.plaintext[{j}]"
            op: dict[str, Any] = {"op": text.operator, "path": text.path}
            if text.operator != "remove":
                op["value"] = text.value
            self.apply([op], lambda m, f=field: self.fail(policy, f + ".path", m))  # type: ignore[misc]

    def _image(self, policy: OverridePolicy, field: str, rule: ImageOverrider) -> None:
        def fail(m: str) -> InputError:
            return self.fail(policy, field, m)

        if rule.predicate is not None:
            try:
                current = jsonpointer.resolve_pointer(self.body, rule.predicate.path)
            except jsonpointer.JsonPointerException as exc:
                raise self.fail(policy, field + ".predicate.path",
                                f"no image at {rule.predicate.path}: {exc}") from None
            if not isinstance(current, str):
                raise self.fail(policy, field + ".predicate.path", f"{rule.predicate.path} is not an image string")
            targets = [(rule.predicate.path, current)]
        else:
            targets = [(f"{p}/image", c["image"]) for p, c in _containers(self.body) if isinstance(c.get("image"), str)]
            if not targets:
                raise fail("the object has no container image to change")
        for path, ref in targets:
            self.apply([{"op": "replace", "path": path, "value": str(Image.parse(ref).change(rule))}], fail)

    def _list(self, policy: OverridePolicy, field: str, name: str, rule: ListOverrider) -> None:
        found = [(p, c) for p, c in _containers(self.body) if c.get("name") == rule.container_name]
        if not found:
            names = [str(c.get("name")) for _, c in _containers(self.body)]
            raise self.fail(policy, field + ".containerName",
                            f"no container named {rule.container_name!r} (containers: {', '.join(names) or 'none'})")
        for pointer, container in found:
            old = list(container.get(name) or [])
            new = old + rule.value if rule.operator == "add" else [v for v in old if v not in rule.value]
            op = "replace" if name in container else "add"
            self.apply([{"op": op, "path": f"{pointer}/{name}", "value": new}], lambda m: self.fail(policy, field, m))

    def _map(self, policy: OverridePolicy, field: str, name: str, rule: MapOverrider) -> None:
        meta = self.body.setdefault("metadata", {})
        ops: list[dict[str, Any]] = []
        if not isinstance(meta.get(name), dict):
            if rule.operator != "add":
                raise self.fail(policy, field, f"the object has no {name} to {rule.operator}")
            ops.append({"op": "add", "path": f"/metadata/{name}", "value": {}})
        for key, value in rule.value.items():
            path = f"/metadata/{name}/{_escape(key)}"
            if rule.operator == "remove":
                ops.append({"op": "remove", "path": path})
            else:
                ops.append({"op": rule.operator, "path": path, "value": value})
        self.apply(ops, lambda m: self.fail(policy, field + ".value", m))


def override_ops(bundle: Bundle, workload: Workload, target: OverrideTarget | None,
                 clusters: Sequence[Cluster]) -> dict[str, list[dict[str, Any]]]:
    """Per cluster name, the operations the OverridePolicies of ``workload`` make there.

    Args:
        bundle: the bundle (its OverridePolicies and their origins).
        workload: the workload.
        target: its object in the base; ``None`` when it has no base (nothing to override).
        clusters: every cluster of the fleet: each rule is checked against the object on every
            cluster it targets, whether or not the workload runs there today, so that a wrong
            path fails now and not on the day a placement moves.

    Raises:
        InputError: a rule's path does not exist in the object, names a missing container or a
            field Berth sets; the error names the policy's file, document and field.
    """
    policies = policies_for(bundle, workload)
    if not policies:
        return {}
    if target is None:
        if workload.spec.source is None:
            return {}
        first = policies[0]
        raise _Computer(bundle, OverrideTarget("Deployment", workload.metadata.name, {}, "the base")).fail(
            first, "spec.resourceSelectors",
            f"selects workload {workload.key}, whose base has no Deployment or StatefulSet named "
            f"{workload.metadata.name!r} to customise")
    names = [c.metadata.name for c in clusters]
    labels = [c.effective_labels() for c in clusters]
    out: dict[str, list[dict[str, Any]]] = {}
    for c, cluster in enumerate(names):
        computer = _Computer(bundle, target)
        for policy in policies:
            for i, rule in enumerate(policy.spec.override_rules):
                if affinity_mask(rule.target_cluster, [cluster], [labels[c]])[0]:
                    computer.rule(policy, i, rule.overriders)
        if computer.ops:
            out[cluster] = computer.ops
    return out

