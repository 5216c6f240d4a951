"""The service's one configuration object, read from a YAML or JSON file.

Example (``docs/service.md`` explains every field)::

    bundle: [../examples/edge-retail]        # paths relative to this file
    tokens:
      - {name: ops, sha256: 5e88...d8, admin: true}
      - {name: retail-ci, sha256: 9f86...08, namespaces: [retail]}
    gitops: {repo: /srv/deploy, format: flux, push: false}
    live: {prometheus: http://prometheus:9090, refreshSeconds: 60, maxAgeSeconds: 300, onStale: fallback}
    limits: {maxRequestBytes: 1048576, maxWorkloadsPerRequest: 50, timeLimitSeconds: 5}
    failover: {maxMoves: 20, graceSeconds: 300}   # self-healing with live inputs (docs/failover.md)
    stateFile: /var/lib/berth/accepted.yaml

Tokens are stored only as sha256 hex digests of the bearer token.

The environment overrides the file (pydantic-settings, as a container platform sets it):
``BERTH_CONFIG`` names the file when ``--config`` is not given, ``BERTH_STATE_FILE`` and
``BERTH_SOURCES_DIR`` set those fields, and ``BERTH_<SECTION>__<FIELD>`` one field of ``gitops``,
``live`` or ``limits`` (``BERTH_GITOPS__PUSH=true``, ``BERTH_LIVE__PROMETHEUS=http://prom:9090``).
Tokens come only from the file.
"""

from __future__ import annotations

import hashlib
import json
import re
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator
from pydantic.alias_generators import to_camel
from pydantic_settings import BaseSettings, SettingsConfigDict

from adapters.failover import FailoverSettings
from engine import InputError

__all__ = ["GitOpsSettings", "Limits", "LiveSettings", "ServiceConfig", "ServiceEnvironment", "TokenEntry",
           "hash_token", "load_config"]

_HEX64 = re.compile(r"^[0-9a-f]{64}$")


def hash_token(token: str) -> str:
    """The digest stored in the config for a bearer token."""
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


class _Cfg(BaseModel):
    model_config = ConfigDict(extra="forbid", alias_generator=to_camel, populate_by_name=True)


class TokenEntry(_Cfg):
    name: str
    sha256: str
    admin: bool = False
    namespaces: list[str] = Field(default_factory=list)
    #: the folder this token's ``source.path`` values must resolve into (default: sourcesDir/<namespace>/)
    sources: Path | None = None

    @field_validator("sha256")
    @classmethod
    def _hex(cls, value: str) -> str:
        value = value.lower().removeprefix("sha256:")
        if not _HEX64.match(value):
            raise ValueError("expected the 64 hex digits of sha256(token), not the token itself")
        return value

    @model_validator(mode="after")
    def _bound(self) -> TokenEntry:
        if not self.admin and not self.namespaces:
            raise ValueError(f"token {self.name!r} needs admin: true or at least one namespace")
        return self


class GitOpsSettings(_Cfg):
    repo: Path
    format: Literal["flux", "argocd", "arc", "configsync"] = "flux"
    push: bool = False
    #: the Secret generated objects name for the repository's credentials (docs/gitops.md)
    credentials_secret: str | None = Field(default=None, pattern=r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$", max_length=63)


class LiveSettings(_Cfg):
    prometheus: str | None = None
    kubeconfig: Path | None = None
    contexts: list[str] = Field(default_factory=list)
    refresh_seconds: float = Field(default=60.0, gt=0)
    max_age_seconds: float = Field(default=300.0, gt=0)
    on_stale: Literal["fallback", "refuse"] = "fallback"


class Limits(_Cfg):
    max_request_bytes: int = Field(default=1 << 20, ge=1024)
    max_workloads_per_request: int = Field(default=50, ge=1)
    max_documents_per_plan: int = Field(default=2000, ge=1)
    time_limit_seconds: float = Field(default=5.0, gt=0)
    max_time_limit_seconds: float = Field(default=30.0, gt=0)


class ServiceConfig(_Cfg):
    bundle: list[Path] = Field(min_length=1)
    tokens: list[TokenEntry] = Field(default_factory=list)
    gitops: GitOpsSettings | None = None
    live: LiveSettings = Field(default_factory=LiveSettings)
    limits: Limits = Field(default_factory=Limits)
    #: self-healing: re-place what lost or shrunken clusters hold (needs live inputs)
    failover: FailoverSettings | None = None
    state_file: Path | None = None
    sources_dir: Path | None = None
    current: Path | None = None  # a plan file as the current placement when there is no gitops repo

    @model_validator(mode="after")
    def _unique_tokens(self) -> ServiceConfig:
        digests = [t.sha256 for t in self.tokens]
        if len(set(digests)) != len(digests):
            raise ValueError("two tokens share one sha256")
        return self

    def resolve(self, base: Path) -> ServiceConfig:
        """Paths relative to the config file's folder become absolute."""

        def fix(p: Path | None) -> Path | None:
            return None if p is None else (p if p.is_absolute() else (base / p).resolve())

        out = self.model_copy(deep=True)
        out.bundle = [fix(p) for p in self.bundle]  # type: ignore[misc]
        out.state_file = fix(self.state_file)
        out.sources_dir = fix(self.sources_dir) or base.resolve()
        out.current = fix(self.current)
        if out.gitops is not None:
            out.gitops.repo = fix(out.gitops.repo)  # type: ignore[assignment]
        out.live.kubeconfig = fix(out.live.kubeconfig)
        for token in out.tokens:
            token.sources = fix(token.sources)
        return out


class ServiceEnvironment(BaseSettings):
    """What the environment says over the file (``BERTH_`` variables; nested with ``__``)."""

    model_config = SettingsConfigDict(env_prefix="BERTH_", env_nested_delimiter="__", extra="ignore")

    config: Path | None = None
    state_file: Path | None = None
    sources_dir: Path | None = None
    gitops: dict[str, Any] = Field(default_factory=dict)
    live: dict[str, Any] = Field(default_factory=dict)
    limits: dict[str, Any] = Field(default_factory=dict)

    def overrides(self) -> dict[str, Any]:
        """The fields set in the environment, by their config names (snake_case)."""
        out: dict[str, Any] = {k: v for k, v in (("state_file", self.state_file), ("sources_dir", self.sources_dir))
                               if v is not None}
        for section in ("gitops", "live", "limits"):
            if getattr(self, section):
                out[section] = getattr(self, section)
        return out


def _merge(data: dict[str, Any], over: dict[str, Any]) -> dict[str, Any]:
    """``over`` on top of the file's ``data``; a section's field given in either spelling (camelCase
    in the file, snake_case in the environment) is replaced, not doubled."""
    out = dict(data)
    for key, value in over.items():
        camel = to_camel(key)
        if isinstance(value, dict):
            section = dict(out.pop(camel, None) or out.pop(key, None) or {})
            for field, v in value.items():
                section.pop(to_camel(field), None)
                section[field] = v
            out[key] = section
        else:
            out.pop(camel, None)
            out[key] = value
    return out


def load_config(path: Path | None = None) -> ServiceConfig:
    """Read and validate the config file (YAML or JSON), with the environment's overrides.

    Args:
        path: the file; default ``$BERTH_CONFIG``.

    Raises:
        InputError: no file named, or unreadable or invalid; the field (or variable) is named.
    """
    try:
        env = ServiceEnvironment()
    except ValidationError as exc:
        first = exc.errors()[0]
        name = "BERTH_" + "__".join(str(x) for x in first["loc"]).upper()
        raise InputError(f"{name}: {first['msg']}", field=name) from None
    if path is None:
        if env.config is None:
            raise InputError("give --config FILE or set BERTH_CONFIG", field="--config")
        path = env.config
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise InputError(f"cannot read: {exc.strerror or exc}", file=str(path)) from exc
    try:
        data: Any = json.loads(text) if path.suffix == ".json" else yaml.safe_load(text)
    except (json.JSONDecodeError, yaml.YAMLError) as exc:
        raise InputError(f"not valid YAML/JSON: {exc}", file=str(path)) from exc
    over = env.overrides()
    if over and isinstance(data or {}, dict):
        data = _merge(data or {}, over)
    try:
        config = ServiceConfig.model_validate(data or {})
    except ValidationError as exc:
        first = exc.errors()[0]
        loc = ".".join(str(x) for x in first["loc"])
        raise InputError(str(first["msg"]).removeprefix("Value error, "), file=str(path), field=loc or None) from None
    return config.resolve(path.parent)
