"""The ``berth`` command: one typer app; each command lives in its own module."""

from __future__ import annotations

import importlib

import typer

__all__ = ["app", "main"]

app = typer.Typer(
    name="berth",
    help="Policy-driven, globally optimal placement of workloads across Kubernetes clusters.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)

#: modules that each export ``register(app)``; optional ones may not be installed yet
COMMAND_MODULES = (
    "adapters.cli.place",
    "adapters.cli.verify",
    "adapters.cli.status",
    "adapters.cli.fleet",
    "adapters.cli.serve",
    "adapters.cli.reoptimize",
    "adapters.cli.whatif",
)

for _name in COMMAND_MODULES:
    try:
        _module = importlib.import_module(_name)
    except ModuleNotFoundError as _exc:
        if _exc.name != _name:
            raise
        continue
    _module.register(app)


def main() -> None:
    """Console-script entry point."""
    app()
