"""YAML request bodies: ``application/yaml`` is read as the JSON body it stands for.

Why: manifests live in YAML; a pipeline should be able to ``curl --data-binary @workload.yaml``
without converting. The body is parsed with a *safe* loader that also refuses anchors and
aliases (a "billion laughs" body would expand when re-encoded), deeper nesting than the engine
accepts, and timestamps (they stay strings, as in JSON); it is then handed on as JSON, so every
route, every limit and every check that applies to a JSON body applies to it unchanged. The
size limit (:class:`~adapters.api.problems.BodyLimit`) runs outside this middleware and counts
the YAML bytes. A YAML body that cannot be read is a 422 problem naming the line.
"""

from __future__ import annotations

import json
from typing import Any

import yaml
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from adapters.api.problems import problem_response
from engine import MAX_DEPTH

__all__ = ["YAML_TYPES", "YamlBodies", "parse_yaml_body"]

#: media types read as YAML (``application/yaml`` is RFC 9512's; the others are seen in the wild)
YAML_TYPES = frozenset({"application/yaml", "application/x-yaml", "text/yaml", "text/x-yaml"})

_Base: Any = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


class _Loader(_Base):  # type: ignore[misc]
    """The safe loader, without timestamps (they stay strings, as JSON has them)."""


_Loader.yaml_implicit_resolvers = {
    first: [(tag, regexp) for tag, regexp in resolvers if tag != "tag:yaml.org,2002:timestamp"]
    for first, resolvers in _Base.yaml_implicit_resolvers.items()
}


class YamlBodyError(ValueError):
    """The body is not YAML this service reads; the message says where and why."""


def parse_yaml_body(data: bytes) -> Any:
    """The value of a one-document YAML body, refusing aliases and nesting beyond :data:`MAX_DEPTH`.

    Raises:
        YamlBodyError: not UTF-8, not YAML, more than one document, an alias, or too deep.
    """
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError:
        raise YamlBodyError("the YAML body is not UTF-8") from None
    try:
        nodes = list(yaml.compose_all(text, Loader=_Loader))
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark is not None else ""
        raise YamlBodyError(f"not valid YAML{where}: {getattr(exc, 'problem', None) or exc}") from None
    if len(nodes) != 1:
        raise YamlBodyError(f"expected one YAML document (the request object), got {len(nodes)}")
    _check_node(nodes[0])
    loader = _Loader("")
    try:
        return loader.construct_document(nodes[0])
    except yaml.YAMLError as exc:
        raise YamlBodyError(f"not valid YAML: {exc}") from None
    finally:
        loader.dispose()


def _check_node(root: yaml.Node) -> None:
    """Refuse aliases (a node reached twice) and nesting deeper than the engine accepts."""
    seen: set[int] = set()
    stack: list[tuple[yaml.Node, int]] = [(root, 0)]
    while stack:
        node, depth = stack.pop()
        if id(node) in seen:
            line = node.start_mark.line + 1
            raise YamlBodyError(f"YAML anchors and aliases are not accepted in a request (line {line})")
        seen.add(id(node))
        if depth > MAX_DEPTH:
            raise YamlBodyError(f"the YAML body is nested deeper than {MAX_DEPTH} levels")
        if isinstance(node, yaml.MappingNode):
            stack += [(n, depth + 1) for pair in node.value for n in pair]
        elif isinstance(node, yaml.SequenceNode):
            stack += [(n, depth + 1) for n in node.value]


class YamlBodies:
    """ASGI middleware: a request with a YAML media type reaches the routes as JSON."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or _media_type(scope) not in YAML_TYPES:
            await self.app(scope, receive, send)
            return
        chunks: list[bytes] = []
        while True:
            message = await receive()
            if message["type"] != "http.request":
                await self.app(scope, receive, send)  # disconnected: let the app see it
                return
            chunks.append(message.get("body", b""))
            if not message.get("more_body", False):
                break
        try:
            value = parse_yaml_body(b"".join(chunks))
            body = json.dumps(value, allow_nan=True, default=str).encode("utf-8")
        except (YamlBodyError, RecursionError) as exc:
            detail = str(exc) if isinstance(exc, YamlBodyError) else "the YAML body is nested too deeply"
            await problem_response(422, detail, field="body")(scope, receive, send)
            return
        headers = [(k, v) for k, v in scope["headers"] if k not in (b"content-type", b"content-length")]
        headers += [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]
        sent = False

        async def replay() -> Message:
            nonlocal sent
            if not sent:
                sent = True
                return {"type": "http.request", "body": body, "more_body": False}
            return await receive()

        await self.app({**scope, "headers": headers}, replay, send)


def _media_type(scope: Scope) -> str:
    for name, value in scope.get("headers", []):
        if name == b"content-type":
            return value.decode("latin-1").split(";", 1)[0].strip().lower()
    return ""
