"""Validate generated objects against the upstream schemas in /work/shared/schemas (index.json).

``k8s-structural`` schemas (CRDs) are read the way ``kubectl apply --validate=strict`` reads
them: ``nullable`` admits ``null``, and every object that declares ``properties`` and does not
preserve unknown fields is closed. ``jsonschema-strict`` schemas are already closed.
"""

from __future__ import annotations

import copy
import functools
import json
import os
from pathlib import Path
from typing import Any

import jsonschema

__all__ = ["SCHEMAS", "errors_of", "schema_for"]

#: ``$BERTH_SCHEMAS``, else ``shared/schemas`` beside the checkout (CI, /work/main) or further up (a worktree)
SCHEMAS = Path(os.environ.get("BERTH_SCHEMAS") or next(
    (p / "shared" / "schemas" for p in Path(__file__).resolve().parents[1:]
     if (p / "shared" / "schemas" / "index.json").is_file()), "/work/shared/schemas"))


def _structural(node: Any) -> Any:
    if isinstance(node, dict):
        dropped = ("nullable", "x-kubernetes-preserve-unknown-fields", "x-kubernetes-int-or-string")
        out = {k: _structural(v) for k, v in node.items() if k not in dropped}
        if node.get("x-kubernetes-int-or-string"):
            out.pop("type", None)
            out["anyOf"] = [{"type": "integer"}, {"type": "string"}]
        if node.get("nullable") and "type" in out:
            out["type"] = [out["type"], "null"] if isinstance(out["type"], str) else [*out["type"], "null"]
        if (
            "properties" in node
            and not node.get("x-kubernetes-preserve-unknown-fields")
            and "additionalProperties" not in node
        ):
            out["additionalProperties"] = False
        return out
    if isinstance(node, list):
        return [_structural(v) for v in node]
    return node


@functools.cache
def _index() -> dict[tuple[str, str], tuple[str, str]]:
    data = json.loads((SCHEMAS / "index.json").read_text(encoding="utf-8"))
    return {(e["apiVersion"], e["kind"]): (e["file"], e["dialect"]) for e in data["schemas"]}


@functools.cache
def schema_for(api_version: str, kind: str) -> dict[str, Any]:
    """The schema of ``apiVersion``/``kind``, ready for ``jsonschema`` (KeyError: none upstream)."""
    file, dialect = _index()[(api_version, kind)]
    raw = json.loads((SCHEMAS / file).read_text(encoding="utf-8"))
    if dialect == "k8s-structural":
        raw = _structural(raw)
        # metadata is the API server's ObjectMeta, not part of a CRD's schema
        raw.setdefault("properties", {})["metadata"] = {"type": "object"}
    return copy.deepcopy(raw)


def errors_of(obj: dict[str, Any]) -> list[str]:
    """Every violation of ``obj`` against its upstream schema, as ``path: message`` lines."""
    schema = schema_for(str(obj.get("apiVersion")), str(obj.get("kind")))
    validator = jsonschema.validators.validator_for(schema)(schema)
    return [f"{'/'.join(map(str, e.absolute_path)) or '(root)'}: {e.message}" for e in validator.iter_errors(obj)]
