"""Loading a bundle: files, folders or JSON into validated documents.

A bundle is one or more YAML files (multi-document), folders of them, or a
JSON list of the same documents (spec section 1). Every error names the file,
the document and the field, and says what was expected.

Folders are read recursively in name order. Inside a folder, documents of
other API groups (for example the kustomize bases that ``source.path``
points to) and files named ``kustomization.yaml`` are skipped, so that an
example folder can hold its apps beside its bundle; in a file named
explicitly every document must be a Berth document.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel, ValidationError

from engine.documents.bundle import Bundle, Origin, name_key
from engine.documents.fields import API_VERSION, EntryError
from engine.documents.kinds import CLUSTER_SCOPED, Objective
from engine.documents.references import check_references
from engine.documents.registry import KINDS
from engine.errors import DuplicateName, InputError
from engine.limits import MAX_DEPTH, MAX_DOCUMENTS, MAX_FILE_BYTES, MAX_INT64, echo

__all__ = ["load_bundle", "load_documents", "parse_document", "parse_documents"]

API_GROUP = API_VERSION.split("/")[0]

#: libyaml when present (several times faster); its errors carry the same line marks
_LOADER: Any = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
#: values (mappings, lists, scalars) one document may expand to, YAML aliases included
MAX_NODES_PER_DOCUMENT = 200_000


def _cut(value: Any) -> str:
    """A name or kind as echoed in "where": at most 80 characters."""
    text = value if isinstance(value, str) else echo(value)
    return text if len(text) <= 80 else echo(text)


def _describe(raw: Any, index: int) -> str:
    if isinstance(raw, dict):
        kind = _cut(raw.get("kind", "?"))
        meta = raw.get("metadata")
        if isinstance(meta, dict) and isinstance(meta.get("name"), str):
            ns = meta.get("namespace")
            name = _cut(meta["name"])
            if kind not in CLUSTER_SCOPED:
                ns = _cut(ns) if ns else "default"
                return f"{kind} {ns}/{name} (document #{index + 1})"
            return f"{kind} {name} (document #{index + 1})"
        return f"document #{index + 1} ({kind})"
    return f"document #{index + 1}"


def _read_file(path: Path) -> list[Any]:
    try:
        with path.open("rb") as handle:
            data = handle.read(MAX_FILE_BYTES + 1)
    except OSError as exc:
        raise InputError(f"cannot read: {exc.strerror or exc}", file=str(path)) from exc
    if len(data) > MAX_FILE_BYTES:
        raise InputError(f"is larger than {MAX_FILE_BYTES // 2**20} MiB, the limit of one bundle file",
                         file=str(path))
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise InputError("is not UTF-8 text", file=str(path)) from exc
    return _parse_text(text, str(path), json_=path.suffix == ".json")


def _parse_text(text: str, file: str, *, json_: bool) -> list[Any]:
    """The documents of one file's text; syntax errors name the line."""
    if json_:
        try:
            data = json.loads(text)
        except json.JSONDecodeError as exc:
            raise InputError(
                f"invalid JSON at line {exc.lineno}, column {exc.colno}: {exc.msg}", file=file
            ) from exc
        except RecursionError:
            raise InputError(f"invalid JSON: nested deeper than {MAX_DEPTH} levels", file=file) from None
        except ValueError as exc:  # an integer of more than 4300 digits
            raise InputError(f"invalid JSON: {exc}", file=file) from None
        return _unwrap_json(data, file)
    docs: list[Any] = []
    try:
        for doc in yaml.load_all(text, Loader=_LOADER):
            if doc is not None:
                docs.append(doc)
            if len(docs) > MAX_DOCUMENTS:
                raise InputError(f"holds more than {MAX_DOCUMENTS} documents", file=file)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark else ""
        problem = getattr(exc, "problem", None) or str(exc)
        raise InputError(f"invalid YAML{where}: {problem}", file=file) from exc
    except RecursionError:
        raise InputError(f"invalid YAML: nested deeper than {MAX_DEPTH} levels", file=file) from None
    except ValueError as exc:  # an integer of more than 4300 digits
        raise InputError(f"invalid YAML: {exc}", file=file) from None
    return docs


def _unwrap_json(data: Any, file: str | None) -> list[Any]:
    if isinstance(data, list):
        return data
    if isinstance(data, dict) and isinstance(items := data.get("items"), list) and data.get("kind") == "List":
        return items
    if isinstance(data, dict):
        return [data]
    raise InputError("expected a JSON list of documents or one document object", file=file)


def _is_berth(raw: Any) -> bool:
    return isinstance(raw, dict) and str(raw.get("apiVersion", "")).startswith(API_GROUP + "/")


def _collect(paths: Sequence[str | Path]) -> list[tuple[str | None, int, Any]]:
    out: list[tuple[str | None, int, Any]] = []
    for given in paths:
        path = Path(given)
        if path.is_dir():
            files = sorted(
                p
                for p in path.rglob("*")
                if p.is_file()
                and p.suffix in (".yaml", ".yml", ".json")
                and p.name not in ("kustomization.yaml", "kustomization.yml", "Kustomization")
                and not any(part.startswith(".") for part in p.relative_to(path).parts)
            )
            for file in files:
                for index, raw in enumerate(_read_file(file)):
                    if _is_berth(raw):
                        out.append((str(file), index, raw))
        elif path.is_file():
            for index, raw in enumerate(_read_file(path)):
                out.append((str(path), index, raw))
        else:
            raise InputError("no such file or folder", file=str(path))
        if len(out) > MAX_DOCUMENTS:
            raise InputError(f"the bundle holds more than {MAX_DOCUMENTS} documents", file=str(path))
    return out


# --- validation ---------------------------------------------------------------------


def _loc(loc: Iterable[Any]) -> str:
    text = ""
    for part in loc:
        if isinstance(part, int):
            text += f"[{part}]"
        else:
            text += ("." if text else "") + str(part)
    return text


def _explain(error: Mapping[str, Any]) -> str:
    kind = error.get("type", "")
    msg = str(error.get("msg", "invalid"))
    if kind == "missing":
        return "is required"
    if kind == "extra_forbidden":
        return "is not a known field"
    if kind == "literal_error":
        return msg.replace("Input should be", "expected") + f", got {echo(error.get('input'))}"
    msg = msg.removeprefix("Value error, ")
    if "input" in error and kind not in ("value_error", "assertion_error"):
        return f"{msg}, got {echo(error['input'])}"
    return msg


def _check_shape(raw: Any, file: str | None, where: str) -> None:
    """Refuse what the engine cannot hold before pydantic sees it (iterative: no recursion).

    Nesting deeper than ``MAX_DEPTH``, more than ``MAX_NODES_PER_DOCUMENT`` values (YAML
    aliases expand: a "billion laughs" document would take hours to validate), integers
    outside int64 and keys that are not strings. Errors name the field.
    """
    stack: list[tuple[Any, tuple[Any, ...]]] = [(raw, ())]
    nodes = 0
    while stack:
        value, loc = stack.pop()
        nodes += 1
        if nodes > MAX_NODES_PER_DOCUMENT:
            raise InputError(f"expands to more than {MAX_NODES_PER_DOCUMENT} values (YAML aliases included)",
                             file=file, document=where)
        if len(loc) > MAX_DEPTH:
            raise InputError(f"is nested deeper than {MAX_DEPTH} levels", file=file, document=where,
                             field=_loc(loc[:MAX_DEPTH]))
        if isinstance(value, dict):
            for key, item in value.items():
                if not isinstance(key, str):
                    raise InputError(f"expected a string key, got {echo(key)}", file=file, document=where,
                                     field=_loc(loc) or None)
                stack.append((item, (*loc, key)))
        elif isinstance(value, list):
            stack.extend((item, (*loc, i)) for i, item in enumerate(value))
        elif isinstance(value, int) and not isinstance(value, bool) and not -MAX_INT64 - 1 <= value <= MAX_INT64:
            raise InputError(f"{echo(value)} does not fit a 64-bit integer; see docs/input-limits.md for the "
                             "range of each number", file=file, document=where, field=_loc(loc) or None)


def parse_document(raw: Any, file: str | None, index: int) -> BaseModel:
    where = _describe(raw, index)
    if not isinstance(raw, dict):
        raise InputError(f"expected a mapping, got {type(raw).__name__}", file=file, document=where)
    api = raw.get("apiVersion")
    if api != API_VERSION:
        raise InputError(
            f"expected apiVersion {API_VERSION!r}, got {echo(api)}",
            file=file,
            document=where,
            field="apiVersion",
        )
    kind = raw.get("kind")
    model = KINDS.get(kind) if isinstance(kind, str) else None
    if model is None:
        raise InputError(
            f"unknown kind {echo(kind)}; expected one of {', '.join(sorted(KINDS))}",
            file=file,
            document=where,
            field="kind",
        )
    _check_shape(raw, file, where)
    raw = dict(raw)
    meta = raw.get("metadata")
    if isinstance(meta, dict) and kind not in CLUSTER_SCOPED and not meta.get("namespace"):
        raw["metadata"] = {**meta, "namespace": "default"}
    try:
        return model.model_validate(raw)
    except ValidationError as exc:
        errors = exc.errors()
        first = errors[0]
        more = f" (and {len(errors) - 1} more problem(s) in this document)" if len(errors) > 1 else ""
        loc = _entry_loc(first)  # a bad entry of a map: named (spec.resources.cpu)
        every = [(_loc(_entry_loc(e)) or None, _explain(e)) for e in errors]
        raise InputError(
            _explain(first) + more, file=file, document=where, field=_loc(loc) or None, errors=every
        ) from None


def _entry_loc(error: Any) -> tuple[Any, ...]:
    """A pydantic error's location, with the key of a bad map entry appended (spec.resources.cpu)."""
    loc = tuple(error["loc"])
    cause = (error.get("ctx") or {}).get("error")
    return (*loc, cause.key) if isinstance(cause, EntryError) else loc


def parse_documents(items: Sequence[tuple[str | None, int, Any]]) -> Bundle:
    """Validate raw documents (with their origins) and cross-check references."""
    bundle = Bundle()
    for file, index, raw in items:
        doc = parse_document(raw, file, index)
        kind = str(doc.kind)  # type: ignore[attr-defined]  # every registered kind has one; BaseModel does not say so
        key = name_key(doc)
        if (kind, key) in bundle.origins:
            first = bundle.origins[(kind, key)]
            raise DuplicateName(
                f"a {kind} named {echo(key)} is already declared in "
                f"{first.file or 'the input'} (document #{first.index + 1})",
                file=file,
                document=_describe(raw, index),
                field="metadata.name",
            )
        bundle.origins[(kind, key)] = Origin(file, index)
        if isinstance(doc, Objective) and bundle.objective is not None:
            raise InputError(
                "a bundle takes at most one Objective document", file=file, document=_describe(raw, index)
            )
        bundle.add(doc)
    check_references(bundle)
    return bundle


def load_bundle(paths: Sequence[str | Path]) -> Bundle:
    """Read and validate the bundle at ``paths`` (files and/or folders)."""
    return parse_documents(_collect(paths))


def load_documents(docs: Any, *, source: str | None = None) -> Bundle:
    """Validate in-memory documents (an API body): a list, a ``List`` or one object."""
    items = _unwrap_json(docs, source)
    return parse_documents([(source, i, raw) for i, raw in enumerate(items)])
