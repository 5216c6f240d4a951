"""Credentials out of text and out of generated objects: one home for both.

Remote URLs often carry ``user:password@`` or ``token@``; passwords hold raw
``@``, ``:``, ``?`` or ``#`` more often than one would like. Two rules:

- :func:`redact` (messages, logs, plans): every ``scheme://userinfo@`` becomes
  ``scheme://***@``; the userinfo ends at the **last** ``@`` before the first
  ``/`` of the URL, so ``https://u:p@ss@host/x`` loses all of ``u:p@ss``.
- :func:`strip_userinfo` (URLs written into GitOps objects): the userinfo is
  removed, except an SSH user name without a password (``ssh://git@host``),
  which is an address, not a secret. Controllers get credentials from a
  Secret that the objects reference by name.

A password with a raw ``/`` is not a URL git can use either: percent-encode it.
"""

from __future__ import annotations

import re
from urllib.parse import urlsplit, urlunsplit

__all__ = ["has_credentials", "is_ssh", "redact", "strip_userinfo"]

_SCHEME = re.compile(r"[A-Za-z][A-Za-z0-9+.-]*://")
_END = re.compile(r"[\s'\"<>`]")
_SCP = re.compile(r"^(?P<user>[^@/:\s]+(?::[^/\s]*)?)@(?P<host>[^@/:\s]+):(?P<path>.*)$")


def redact(text: str) -> str:
    """``text`` with the userinfo of every URL in it replaced by ``***``."""
    if "@" not in text:
        return text
    out: list[str] = []
    pos = 0
    for m in _SCHEME.finditer(text):
        if m.start() < pos:
            continue
        start = m.end()
        end_m = _END.search(text, start)
        end = end_m.start() if end_m else len(text)
        slash = text.find("/", start, end)
        authority_end = slash if slash >= 0 else end
        at = text.rfind("@", start, authority_end)
        if at < 0:
            continue
        out.append(text[pos:start])
        out.append("***")
        pos = at
    out.append(text[pos:])
    return "".join(out)


def _split(url: str) -> tuple[str, str, str] | None:
    """(scheme://, userinfo, rest) for a URL with a scheme; ``None`` without one."""
    m = _SCHEME.match(url)
    if m is None:
        return None
    slash = url.find("/", m.end())
    authority_end = slash if slash >= 0 else len(url)
    at = url.rfind("@", m.end(), authority_end)
    if at < 0:
        return m.group(0), "", url[m.end():]
    return m.group(0), url[m.end():at], url[at + 1:]


def is_ssh(url: str) -> bool:
    """``ssh://...`` or the scp-like ``user@host:path`` form git accepts."""
    return url.lower().startswith(("ssh://", "git+ssh://", "ssh+git://")) or (
        "://" not in url and _SCP.match(url) is not None)


def has_credentials(url: str) -> bool:
    """Whether ``url`` carries a secret: a password, or any userinfo of a non-SSH URL."""
    parts = _split(url)
    if parts is None:
        m = _SCP.match(url)
        return m is not None and ":" in m.group("user")
    _, userinfo, _ = parts
    if not userinfo:
        return False
    return ":" in userinfo or not is_ssh(url)


def strip_userinfo(url: str) -> str:
    """``url`` fit for a generated object: no password, no token, an SSH user name kept."""
    parts = _split(url)
    if parts is None:
        m = _SCP.match(url)
        if m is None:
            return url
        user = m.group("user").partition(":")[0]
        return f"{user}@{m.group('host')}:{m.group('path')}"
    scheme, userinfo, rest = parts
    if not userinfo:
        return url
    if is_ssh(url):
        user = userinfo.partition(":")[0]
        if "@" not in user:
            return f"{scheme}{user}@{rest}"
    cleaned = f"{scheme}{rest}"
    try:  # normalise what urllib can parse (it keeps the rest as it was)
        split = urlsplit(cleaned)
        return urlunsplit(split)
    except ValueError:
        return cleaned
