"""Validating what Berth writes against the upstream schemas in ``shared/schemas`` (``index.json``).

Dialects (shared/schemas/README.md): ``k8s-structural`` is a CRD's openAPIV3Schema, read by
:mod:`tests.upstream_schemas` as the API server reads it, with ``metadata`` held to ObjectMeta here;
``jsonschema-strict`` is used as is;
``jsonschema`` (SchemaStore's kustomization) as is; ``swagger2-definitions`` (Azure Arc's PUT body)
with its ``x-az-cli`` name and URL rules checked beside it.
"""

from __future__ import annotations

import copy
import functools
import json
import re
from pathlib import Path
from typing import Any

import jsonschema
import yaml

from tests.upstream_schemas import SCHEMAS, schema_for

ARC = ("Microsoft.KubernetesConfiguration/fluxConfigurations", "FluxConfiguration")
#: metadata.name of every object: a DNS-1123 subdomain (Namespaces: a label)
SUBDOMAIN = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$")
LABEL_VALUE = re.compile(r"^(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?$")


@functools.cache
def _index() -> dict[tuple[str, str], dict[str, Any]]:
    data = json.loads((SCHEMAS / "index.json").read_text())
    return {(s["apiVersion"], s["kind"]): s for s in data["schemas"]}


@functools.cache
def _validator(api_version: str, kind: str) -> jsonschema.protocols.Validator:
    entry = _index().get((api_version, kind))
    assert entry is not None, f"no upstream schema for {api_version} {kind}: add it to shared/schemas"
    schema = schema_for(api_version, kind)
    if entry["dialect"] == "k8s-structural":  # CRDs declare metadata as a bare object: hold it to ObjectMeta
        schema["properties"]["metadata"] = _object_meta()
    cls = jsonschema.validators.validator_for(schema, default=jsonschema.Draft7Validator)
    cls.check_schema(schema)
    return cls(schema)


@functools.cache
def _object_meta() -> dict[str, Any]:
    ns = json.loads((SCHEMAS / _index()[("v1", "Namespace")]["file"]).read_text())
    meta = copy.deepcopy(ns["$defs"]["io.k8s.apimachinery.pkg.apis.meta.v1.ObjectMeta"])
    return {"$defs": ns["$defs"], **meta}


def validate_object(obj: dict[str, Any], where: str) -> None:
    """One Kubernetes object (or kustomization.yaml) against its upstream schema, plus the name and
    label rules the API server applies that the schemas do not spell out."""
    api_version, kind = str(obj.get("apiVersion", "")), str(obj.get("kind", ""))
    if kind == "Kustomization" and not api_version:
        api_version = "kustomize.config.k8s.io/v1beta1"  # kustomize's default
    errors = sorted(_validator(api_version, kind).iter_errors(obj), key=lambda e: list(e.path))
    assert not errors, f"{where}: {api_version} {kind}: " + "; ".join(
        f"{'/'.join(map(str, e.path))}: {e.message[:200]}" for e in errors[:5])
    meta = obj.get("metadata") or {}
    if api_version.startswith("kustomize.config.k8s.io/"):
        return
    name = str(meta.get("name", ""))
    assert len(name) <= 253 and SUBDOMAIN.match(name), f"{where}: {kind} name {name!r}"
    for key, value in (meta.get("labels") or {}).items():
        assert len(value) <= 63 and LABEL_VALUE.match(value), f"{where}: label {key}={value!r}"


def validate_arc(body: dict[str, Any], where: str) -> None:
    """An Arc fluxConfigurations PUT body: the swagger definitions, and az's name and URL rules."""
    schema = json.loads((SCHEMAS / _index()[ARC]["file"]).read_text())
    rules = schema.pop("x-az-cli")
    errors = list(jsonschema.Draft4Validator(schema).iter_errors(body))
    assert not errors, f"{where}: " + "; ".join(e.message[:200] for e in errors[:5])
    props = body["properties"]
    assert re.match(rules["gitUrl"], props["gitRepository"]["url"]), f"{where}: url {props['gitRepository']['url']}"
    for name, k in props["kustomizations"].items():
        assert len(name) <= rules["kustomizationNameMaxLength"], f"{where}: {name} too long"
        assert re.match(rules["kustomizationName"], name), f"{where}: kustomization name {name!r}"
        assert set(k["dependsOn"]) <= set(props["kustomizations"]), f"{where}: {name} depends on a missing one"


_Loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


def yaml_objects(path: Path) -> list[dict[str, Any]]:
    return [d for d in yaml.load_all(path.read_text(encoding="utf-8"), Loader=_Loader) if isinstance(d, dict)]
