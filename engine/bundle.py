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

import hashlib
import json
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel, ValidationError

from engine.errors import DependencyCycle, DuplicateName, InputError, ReferenceNotFound
from engine.limits import MAX_DEPTH, MAX_DOCUMENTS, MAX_FILE_BYTES, MAX_INT64, echo
from engine.resources import (
    API_VERSION,
    CLUSTER_SCOPED,
    Cluster,
    ClusterPlacementPolicy,
    EntryError,
    Objective,
    PlacementPolicy,
    Site,
    Tenant,
    Workload,
)
from engine.selection import AnyPolicy, PolicySelector

__all__ = [
    "KINDS",
    "Bundle",
    "Origin",
    "check_references",
    "load_bundle",
    "load_documents",
    "parse_document",
    "parse_documents",
]

API_GROUP = API_VERSION.split("/")[0]

#: libyaml when present (several times faster); its errors carry the same line marks
_LOADER: Any = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
#: values (mappings, lists, scalars) one document may expand to, YAML aliases included
MAX_NODES_PER_DOCUMENT = 200_000

#: kind -> model. Adapters that define further kinds (MetricsSource, ...) add them here.
KINDS: dict[str, type[BaseModel]] = {
    "Cluster": Cluster,
    "Site": Site,
    "Tenant": Tenant,
    "Workload": Workload,
    "PlacementPolicy": PlacementPolicy,
    "ClusterPlacementPolicy": ClusterPlacementPolicy,
    "Objective": Objective,
}


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
        """Resolves workloads to policies (``engine.selection``); build once for many workloads."""
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
    if isinstance(data, dict) and data.get("kind") == "List" and isinstance(data.get("items"), list):
        return data["items"]
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


def _explain(error: dict[str, Any]) -> str:
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


def _name_key(doc: BaseModel) -> str:
    meta = doc.metadata  # type: ignore[attr-defined]
    if doc.kind in CLUSTER_SCOPED:  # type: ignore[attr-defined]
        return str(meta.name)
    return f"{meta.namespace}/{meta.name}"


def parse_documents(items: Sequence[tuple[str | None, int, Any]]) -> Bundle:
    """Validate raw documents (with their origins) and cross-check references."""
    bundle = Bundle()
    for file, index, raw in items:
        doc = parse_document(raw, file, index)
        kind = str(doc.kind)  # type: ignore[attr-defined]
        key = _name_key(doc)
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
        ns, key = policy.metadata.namespace, _name_key(policy)
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
        both = set(spec.affinity.workloads if spec.affinity else []) & set(
            spec.anti_affinity.workloads if spec.anti_affinity else [])
        if both:
            name = sorted(both)[0]
            i = spec.anti_affinity.workloads.index(name)  # type: ignore[union-attr]
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
    anti: set[tuple[str, str]] = set()
    for w in bundle.workloads:
        policy = bundle.policy_for(w)
        term = policy.spec.anti_affinity if policy is not None else None
        for name in term.workloads if term else []:
            v = f"{w.metadata.namespace}/{name}"
            if v != w.key:
                anti.add((w.key, v))
                anti.add((v, w.key))
    if not anti:
        return
    for w in bundle.workloads:
        policy = bundle.policy_for(w)
        term = policy.spec.affinity if policy is not None else None
        for i, name in enumerate(term.workloads if term else []):
            v = f"{w.metadata.namespace}/{name}"
            if (w.key, v) in anti and v in by_key and policy is not None:
                kind = str(policy.kind)
                pkey = _name_key(policy)
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


def load_bundle(paths: Sequence[str | Path]) -> Bundle:
    """Read and validate the bundle at ``paths`` (files and/or folders)."""
    return parse_documents(_collect(paths))


def load_documents(docs: Any, *, source: str | None = None) -> Bundle:
    """Validate in-memory documents (an API body): a list, a ``List`` or one object."""
    items = _unwrap_json(docs, source)
    return parse_documents([(source, i, raw) for i, raw in enumerate(items)])


import engine.live  # noqa: E402  (registers MetricsSource)
import engine.overrides  # noqa: E402, F401  (registers OverridePolicy)
