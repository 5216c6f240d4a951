"""The ``berth`` command: one typer app; each command lives in its own module."""

from __future__ import annotations

import importlib
from typing import Annotated

import typer

__all__ = ["app", "main"]

app = typer.Typer(
    name="berth",
    help="Policy-driven, globally optimal placement of workloads across Kubernetes clusters.",
    no_args_is_help=True,
    add_completion=True,  # --install-completion / --show-completion (bash, zsh, fish, powershell)
    pretty_exceptions_enable=False,
)


def _version() -> str:
    """The installed distribution's version: the one ``pip`` and bug reports speak of."""
    from importlib.metadata import PackageNotFoundError  # slow to import; only --version needs it
    from importlib.metadata import version as package_version

    try:
        return package_version("berth")
    except PackageNotFoundError:  # run from a source tree that was never installed
        return "unknown (not installed)"


def _print_version(value: bool) -> None:
    if value:
        typer.echo(f"berth {_version()}")
        raise typer.Exit()


@app.callback()
def _root(
    version: Annotated[bool, typer.Option("--version", callback=_print_version, is_eager=True,
                                          help="Print the version of Berth and exit.")] = False,
) -> None:
    """Policy-driven, globally optimal placement of workloads across Kubernetes clusters."""

#: modules that each export ``register(app)``; optional ones may not be installed yet
COMMAND_MODULES = (
    "adapters.cli.place",
    "adapters.cli.verify",
    "adapters.cli.status",
    "adapters.cli.fleet",
    "adapters.cli.serve",
    "adapters.cli.reoptimize",
    "adapters.cli.whatif",
    "adapters.cli.history",
    "adapters.cli.rollout",
    "adapters.cli.watch",
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
