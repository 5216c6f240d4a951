"""An authenticated ``requests.Session`` for one Prometheus (bearer token, basic auth, headers, TLS).

Secrets are read from a file or an environment variable when the session is
made, never from the bundle, and live only in the session: they are not put in
messages, warnings, plans or logs. Error messages name the field and the file or
variable, never the value.
"""

from __future__ import annotations

import os
from pathlib import Path

import requests

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


def client_session(settings: HttpClientSettings, field: str) -> requests.Session:
    """A session that authenticates as ``settings`` says.

    Args:
        settings: the Prometheus' HTTP client settings.
        field: where they are in the MetricsSource (``spec.prometheus``), for messages.

    Raises:
        InputError: a secret file or variable that cannot be read, a missing TLS file.
    """
    session = requests.Session()
    session.headers.update(settings.headers)
    if settings.bearer_token is not None:
        token = _secret(settings.bearer_token, f"{field}.bearerToken")
        session.headers["Authorization"] = f"Bearer {token}"
    if settings.basic_auth is not None:
        password = _secret(settings.basic_auth.password, f"{field}.basicAuth.password")
        session.auth = (settings.basic_auth.username, password)
    tls = settings.tls
    if tls is not None:
        if tls.insecure_skip_verify:
            session.verify = False
        elif tls.ca_file is not None:
            session.verify = _existing(tls.ca_file, f"{field}.tls.caFile")
        if tls.cert_file is not None:
            cert = _existing(tls.cert_file, f"{field}.tls.certFile")
            key = _existing(tls.key_file, f"{field}.tls.keyFile") if tls.key_file else None
            session.cert = (cert, key) if key else cert
    return session
