"""Dependencies as named ``Annotated`` aliases: the state, the caller, the admin."""

from __future__ import annotations

import hmac
from typing import Annotated

from fastapi import Depends, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from adapters.api.config import hash_token
from adapters.api.problems import Problem
from adapters.api.state import Principal, ServiceState

__all__ = ["Admin", "Caller", "State"]

_bearer = HTTPBearer(auto_error=False, description="A token from the service config (stored there as sha256).")


def get_state(request: Request) -> ServiceState:
    return request.app.state.berth  # type: ignore[no-any-return]


State = Annotated[ServiceState, Depends(get_state)]


def get_caller(state: State, credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)]
               ) -> Principal:
    """The principal of the bearer token; 401 without a known token. The token is never logged."""
    unauthorized = Problem(401, "send Authorization: Bearer <token> with a token the service knows",
                           headers={"WWW-Authenticate": 'Bearer realm="berth"'})
    if credentials is None or not credentials.credentials:
        raise unauthorized
    digest = hash_token(credentials.credentials)
    for entry in state.config.tokens:
        if hmac.compare_digest(digest, entry.sha256):
            return Principal(entry.name, entry.admin, frozenset(entry.namespaces), entry.sources, digest)
    raise unauthorized


Caller = Annotated[Principal, Depends(get_caller)]


def get_admin(caller: Caller) -> Principal:
    if not caller.admin:
        raise Problem(403, "this endpoint needs an admin token")
    return caller


Admin = Annotated[Principal, Depends(get_admin)]
