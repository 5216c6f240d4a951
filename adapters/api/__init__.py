"""Placement as a service (FastAPI). See docs/service.md.

Public API::

    create_app(config, *, state=None) -> FastAPI
    load_config(path) -> ServiceConfig
    hash_token(token) -> str          # what the config stores
"""

from adapters.api.app import create_app
from adapters.api.config import ServiceConfig, hash_token, load_config

__all__ = ["ServiceConfig", "create_app", "hash_token", "load_config"]
