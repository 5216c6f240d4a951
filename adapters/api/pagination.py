"""``?limit=`` and ``continue`` for list endpoints, as Kubernetes lists do.

A list answers at most ``limit`` items in key order and, when more remain, a
``metadata.continue`` token and ``metadata.remainingItemCount``. The client sends the token
back as ``?continue=`` (with any ``limit``) for the next page. The token is *opaque* (clients
must not read it) and *tamper-evident*: it is the last key of the page, the list it belongs to
and the token it was given to, signed with HMAC-SHA256 under a key this process draws at start.

- A token changed by the client, or given to another bearer token, is 400.
- A token from before a restart (another signing key) is 410 Gone, as Kubernetes answers an
  expired token: list again from the start.
- Pages are taken from the current committed placement each time (no snapshot is held for
  a client): an item added or removed between two pages appears on a later page or not at
  all, never twice, since pages continue after a key rather than at an offset.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import secrets
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Generic, TypeVar

from adapters.api.problems import Problem

__all__ = ["MAX_LIMIT", "Page", "Paginator"]

MAX_LIMIT = 1000
T = TypeVar("T")


@dataclass(frozen=True)
class Page(Generic[T]):
    items: list[T]
    continue_token: str | None
    remaining: int | None


class Paginator:
    """Signs and checks continue tokens for one process."""

    def __init__(self, secret: bytes | None = None) -> None:
        self._secret = secret or secrets.token_bytes(32)
        self.epoch = hashlib.sha256(self._secret).hexdigest()[:8]  # public: tells "restarted" from "forged"

    def _mac(self, payload: bytes) -> str:
        return base64.urlsafe_b64encode(hmac.new(self._secret, payload, hashlib.sha256).digest()[:18]).decode()

    def token(self, *, list_name: str, caller: str, after: str) -> str:
        payload = json.dumps({"e": self.epoch, "l": list_name, "k": after}, separators=(",", ":")).encode()
        body = base64.urlsafe_b64encode(payload).decode().rstrip("=")
        return f"{body}.{self._mac(payload + b'|' + caller.encode())}"

    def after(self, token: str, *, list_name: str, caller: str) -> str:
        """The key a continue token continues after.

        Raises:
            Problem: 400 when it was changed or is not this caller's, 410 when it is from
                before a restart.
        """
        bad = Problem(400, "the continue token is not valid (changed, or given to another token); list again "
                           "without it", field="continue")
        try:
            body, mac = token.split(".", 1)
            payload = base64.urlsafe_b64decode(body + "=" * (-len(body) % 4))
            data = json.loads(payload)
            if not isinstance(data, dict):
                raise ValueError
            epoch, name, key = data["e"], data["l"], data["k"]
        except (ValueError, KeyError, TypeError, UnicodeDecodeError):
            raise bad from None
        if epoch != self.epoch:
            raise Problem(410, "the continue token has expired (the service restarted since); list again "
                               "without it", field="continue", title="Expired")
        if not hmac.compare_digest(mac, self._mac(payload + b"|" + caller.encode())) or name != list_name:
            raise bad
        return str(key)

    def page(self, keys: Sequence[str], items: Sequence[T], *, limit: int | None, token: str | None,
             list_name: str, caller: str) -> Page[T]:
        """One page of ``items`` (sorted by their ``keys``, which are unique)."""
        start = 0
        if token:
            after = self.after(token, list_name=list_name, caller=caller)
            from bisect import bisect_right

            start = bisect_right(keys, after)
        if limit is None:
            return Page(list(items[start:]), None, None)
        end = min(start + limit, len(items))
        more = len(items) - end
        next_token = self.token(list_name=list_name, caller=caller, after=keys[end - 1]) if more else None
        return Page(list(items[start:end]), next_token, more if more else None)
