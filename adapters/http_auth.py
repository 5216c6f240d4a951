"""An authenticated ``httpx.Client`` for one Prometheus (bearer token, basic auth, headers, TLS).

Secrets are read from a file or an environment variable when the session is
made, never from the bundle, and live only in the session: they are not put in
messages, warnings, plans or logs. Error messages name the field and the file or
variable, never the value.
"""

from __future__ import annotations

import os
import ssl
from pathlib import Path

import httpx

from engine import HttpClientSettings, InputError, SecretRef

__all__ = ["client_session"]


def _secret(ref: SecretRef, field: str) -> str:
    if ref.file is not None:
        try:
            value = Path(ref.file).read_text(encoding="utf-8").strip()
        except (OSError, UnicodeDecodeError) as exc:
            reason = exc.strerror if isinstance(exc, OSError) and exc.strerror else type(exc).__name__
            raise InputError(f"cannot read {ref.file}: {reason}", field=f"{field}.file") from None
        where = f"file {ref.file}"
    else:
        value = os.environ.get(ref.env or "", "").strip()
        where = f"environment variable {ref.env}"
    if not value:
        raise InputError(f"{where} is empty or not set", field=f"{field}.file" if ref.file else f"{field}.env")
    return value


def _existing(path: str, field: str) -> str:
    if not Path(path).is_file():
        raise InputError(f"{path} is not a readable file", field=field)
    return path


def client_session(settings: HttpClientSettings, field: str, *, timeout: float) -> httpx.Client:
    """A client that authenticates as ``settings`` says.

    TLS goes through one :class:`ssl.SSLContext` (the CA bundle and the client certificate loaded
    into it), which is how httpx wants them; redirects are followed (a gateway may answer 30x).

    Args:
        settings: the Prometheus' HTTP client settings.
        field: where they are in the MetricsSource (``spec.prometheus``), for messages.
        timeout: seconds for each request (connect, read, write, pool).

    Raises:
        InputError: a secret file or variable that cannot be read, a missing or unusable TLS file.
    """
    headers = dict(settings.headers)
    if settings.bearer_token is not None:
        token = _secret(settings.bearer_token, f"{field}.bearerToken")
        headers["Authorization"] = f"Bearer {token}"
    auth: tuple[str, str] | None = None
    if settings.basic_auth is not None:
        password = _secret(settings.basic_auth.password, f"{field}.basicAuth.password")
        auth = (settings.basic_auth.username, password)
    return httpx.Client(headers=headers, auth=auth, verify=_verify(settings, field), timeout=timeout,
                        follow_redirects=True, max_redirects=2)


def _verify(settings: HttpClientSettings, field: str) -> ssl.SSLContext | bool:
    """What httpx verifies the server with: ``False`` when told to skip, else a context."""
    tls = settings.tls
    if tls is None:
        return True
    if tls.insecure_skip_verify:
        if tls.cert_file is None:
            return False
        context = ssl.create_default_context()
        context.check_hostname = False
        context.verify_mode = ssl.CERT_NONE
    else:
        ca = _existing(tls.ca_file, f"{field}.tls.caFile") if tls.ca_file is not None else None
        try:
            context = ssl.create_default_context(cafile=ca)
        except ssl.SSLError as exc:
            raise InputError(f"{ca} is not a PEM CA bundle ({exc.reason})", field=f"{field}.tls.caFile") from None
    if tls.cert_file is not None:
        cert = _existing(tls.cert_file, f"{field}.tls.certFile")
        key = _existing(tls.key_file, f"{field}.tls.keyFile") if tls.key_file else None
        try:
            context.load_cert_chain(cert, key)
        except ssl.SSLError as exc:
            raise InputError(f"{cert} and its key are not a usable PEM client certificate ({exc.reason})",
                             field=f"{field}.tls.certFile") from None
    return context
