"""``kind: OverridePolicy``: per-cluster customisation of workloads, with Karmada's field names.

A namespaced document that changes the workload's object (the Deployment or StatefulSet of its
base named like it) on the clusters each rule's ``targetCluster`` selects::

    kind: OverridePolicy
    metadata: {name: regional-registry, namespace: retail}
    spec:
      resourceSelectors: [{name: web}]            # workloads by name or labels; none = all of the namespace
      overrideRules:
        - targetCluster: {labelSelector: {matchLabels: {region: eu}}}   # none = every cluster
          overriders:
            imageOverrider: [{component: Registry, operator: replace, value: registry.eu.example}]
            commandOverrider: [{containerName: web, operator: add, value: [--cache]}]
            argsOverrider: [{containerName: web, operator: remove, value: [--debug]}]
            labelsOverrider: [{operator: add, value: {tier: edge}}]
            annotationsOverrider: [{operator: remove, value: {note: ""}}]
            plaintext: [{path: /spec/template/spec/priorityClassName, operator: add, value: high}]

Only the document's shape is checked here; what a rule does to an object (and whether its
paths exist there) is computed against the base by :mod:`adapters.gitops.overrides`, which
turns it into kustomize patches (docs/overrides.md).
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import Field, field_validator, model_validator

from engine.documents.fields import Metadata, _Model
from engine.documents.kinds import ClusterAffinity
from engine.documents.policy import ResourceSelector

__all__ = [
    "ImageOverrider",
    "ImagePredicate",
    "ListOverrider",
    "MapOverrider",
    "OverridePolicy",
    "OverridePolicySpec",
    "Overriders",
    "PlaintextOverrider",
    "RuleWithCluster",
]


class ImagePredicate(_Model):
    """Which image to change: the JSON pointer of one ``image`` field (Karmada's ``predicate.path``)."""

    path: str


class ImageOverrider(_Model):
    """Change one component of ``[registry/]repository[:tag|@digest]``.

    ``add`` appends ``value`` to the component, ``replace`` sets it, ``remove`` drops it
    (Registry and Tag only: an image needs its repository). Without ``predicate``, every
    container and init container of the pod template is changed.
    """

    predicate: ImagePredicate | None = None
    component: Literal["Registry", "Repository", "Tag"]
    operator: Literal["add", "remove", "replace"]
    value: str = ""

    @model_validator(mode="after")
    def _value_fits(self) -> ImageOverrider:
        if self.operator != "remove" and not self.value:
            raise ValueError(f"operator {self.operator} needs a value")
        if self.operator == "remove" and self.component == "Repository":
            raise ValueError("an image cannot lose its repository: remove takes Registry or Tag")
        return self


class ListOverrider(_Model):
    """``commandOverrider`` / ``argsOverrider``: ``add`` appends the values, ``remove`` drops them."""

    container_name: str
    operator: Literal["add", "remove"]
    value: list[str] = Field(default_factory=list)


class MapOverrider(_Model):
    """``labelsOverrider`` / ``annotationsOverrider`` on the object's metadata.

    ``add`` sets the keys, ``replace`` changes keys that exist (a missing one is an input
    error, as a JSON patch ``replace`` of a missing path is), ``remove`` deletes them.
    """

    operator: Literal["add", "remove", "replace"]
    value: dict[str, str] = Field(default_factory=dict)

    @field_validator("value")
    @classmethod
    def _some(cls, value: dict[str, str]) -> dict[str, str]:
        if not value:
            raise ValueError("needs at least one key")
        return value


class PlaintextOverrider(_Model):
    """One RFC 6902 operation on the object; ``path`` must exist (its parent, for ``add``)."""

    path: str
    operator: Literal["add", "remove", "replace"]
    value: Any = None

    @field_validator("path")
    @classmethod
    def _pointer(cls, value: str) -> str:
        if not value.startswith("/") or len(value) > 1024:
            raise ValueError(f"expected a JSON pointer such as /spec/template/spec/priorityClassName, got {value!r}")
        return value

    @model_validator(mode="after")
    def _value_fits(self) -> PlaintextOverrider:
        if self.operator != "remove" and self.value is None:
            raise ValueError(f"operator {self.operator} needs a value")
        return self


class Overriders(_Model):
    """The overriders of one rule, applied in Karmada's order: image, command, args, labels,
    annotations, plaintext."""

    image_overrider: list[ImageOverrider] = Field(default_factory=list)
    command_overrider: list[ListOverrider] = Field(default_factory=list)
    args_overrider: list[ListOverrider] = Field(default_factory=list)
    labels_overrider: list[MapOverrider] = Field(default_factory=list)
    annotations_overrider: list[MapOverrider] = Field(default_factory=list)
    plaintext: list[PlaintextOverrider] = Field(default_factory=list)


class RuleWithCluster(_Model):
    target_cluster: ClusterAffinity | None = None
    overriders: Overriders


class OverridePolicySpec(_Model):
    resource_selectors: list[ResourceSelector] | None = None
    override_rules: list[RuleWithCluster] = Field(min_length=1)

    @field_validator("resource_selectors")
    @classmethod
    def _some_selectors(cls, value: list[ResourceSelector] | None) -> list[ResourceSelector] | None:
        if value is not None and not value:
            raise ValueError("resourceSelectors needs at least one selector (leave it out to select every workload)")
        for sel in value or []:
            if sel.namespace is not None:
                raise ValueError("an OverridePolicy selects workloads of its own namespace: leave namespace out")
        return value


class OverridePolicy(_Model):
    api_version: Literal["placement.berth.dev/v1alpha1"]
    kind: Literal["OverridePolicy"]
    metadata: Metadata
    spec: OverridePolicySpec
