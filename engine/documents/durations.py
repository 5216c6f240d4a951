"""Prometheus durations (``30s``, ``5m``, ``1h30m``): parsing, the pydantic field rule, and display.

The ``MetricsSource`` kind (:mod:`engine.documents.live`) stores its durations as the text the
user wrote; the adapters and :mod:`engine.live` parse them here.
"""

from __future__ import annotations

import re
from datetime import timedelta
from typing import Any

from engine.limits import MAX_DURATION_SECONDS, echo

__all__ = ["coerce_duration", "human_duration", "parse_duration"]

_DURATION = re.compile(r"(?:(\d+)(ms|s|m|h|d|w|y))+")
_DURATION_PART = re.compile(r"(\d+)(ms|s|m|h|d|w|y)")
_UNIT_SECONDS = {
    "ms": 0.001, "s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800, "y": 31536000,
}


def parse_duration(text: str) -> timedelta:
    """Parse a Prometheus duration (``30s``, ``5m``, ``1h30m``) into a timedelta.

    Raises:
        ValueError: not a Prometheus duration.
    """
    if not isinstance(text, str) or len(text) > 64 or not _DURATION.fullmatch(text):
        raise ValueError(f"expected a duration such as '30s', '5m' or '1h', got {echo(text)}")
    seconds = sum(int(n) * _UNIT_SECONDS[u] for n, u in _DURATION_PART.findall(text))
    if seconds > MAX_DURATION_SECONDS:
        raise ValueError(f"{echo(text)} is out of range: at most one year (365d)")
    return timedelta(seconds=seconds)


def coerce_duration(value: Any) -> str:
    """A duration field's value as Prometheus text: a number of seconds becomes ``"<n>s"`` (a pydantic field rule)."""
    if isinstance(value, int | float) and not isinstance(value, bool):
        if not 0 <= value <= MAX_DURATION_SECONDS:  # also nan and inf
            raise ValueError(f"{echo(value)} seconds is out of range: at most one year (365d)")
        value = f"{int(value)}s"
    parse_duration(value)
    return str(value)


def human_duration(delta: timedelta) -> str:
    seconds = int(delta.total_seconds())
    if seconds < 120:
        return f"{seconds}s"
    if seconds < 7200:
        return f"{seconds // 60}m"
    return f"{seconds / 3600:.1f}h"
