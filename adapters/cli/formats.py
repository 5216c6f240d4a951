"""One meaning for the output flags of every command, as ``kubectl`` has it.

``-o``/``--format`` chooses what standard output shows: ``table`` (the default), ``wide`` (the
same tables, never cut or wrapped, for names longer than the terminal), ``json`` or ``yaml``
(the command's data, nothing else, for ``jq`` and scripts). ``--output FILE`` writes the command's
document to a file (the plan for ``place`` and ``reoptimize``); ``--output -`` writes it to
standard output, in which case the tables go to standard error.
"""

from __future__ import annotations

import json
import sys
from typing import Any

import typer
import yaml
from rich.console import Console

from adapters.cli.common import console
from engine import InputError, echo

__all__ = ["FORMATS", "FORMAT_HELP", "check_format", "format_option", "print_data", "table_console"]

FORMATS = ("table", "wide", "json", "yaml")
FORMAT_HELP = "Standard output: table (default), wide (tables never cut), json or yaml (the data only)."
#: wide tables are as wide as their content: a console far wider than any name
WIDE = 100_000


def format_option() -> Any:
    """The ``-o/--format`` option of every command."""
    return typer.Option("--format", "-o", help=FORMAT_HELP)


def check_format(value: str) -> str:
    """``value`` if it is a format, else exit 2 (a file name says to use ``--output``).

    Raises:
        InputError: not one of :data:`FORMATS`.
    """
    if value not in FORMATS:
        hint = "" if value.isalpha() else f"; to write a file use --output {echo(value)}"
        raise InputError(f"expected one of {', '.join(FORMATS)}, got {echo(value)}{hint}", field="-o/--format")
    return value


def table_console(fmt: str, default: Console | None = None) -> Console:
    """Where tables go: for ``wide`` a console as wide as its longest row (nothing cut or wrapped)."""
    base = default or console
    if fmt != "wide":
        return base
    return Console(file=base.file, width=WIDE, soft_wrap=True, color_system=base.color_system,
                   force_terminal=base.is_terminal, highlight=False)


def print_data(fmt: str, data: Any, *, documents: bool = False) -> None:
    """The command's data on standard output, as JSON or YAML (no markup, no wrapping); with
    ``documents``, a list is a YAML stream of documents (Kubernetes style)."""
    if fmt == "json":
        text = json.dumps(data, indent=2) + "\n"
    elif documents:
        text = yaml.safe_dump_all(data, sort_keys=False)
    else:
        text = yaml.safe_dump(data, sort_keys=False)
    sys.stdout.write(text)
    sys.stdout.flush()
