"""Kubernetes resource quantities, parsed exactly.

Every quantity is turned into an integer in a *base unit* so that capacity
sums never suffer from floating point: cpu in millicores, byte-valued
resources (memory, ephemeral-storage, hugepages-*) in bytes, every other
(counted/extended) resource in units. Prices are per *natural* unit (core,
GiB, device), so :func:`natural_per_base` converts back for costing.
"""

from __future__ import annotations

import re
from decimal import ROUND_CEILING, Decimal, InvalidOperation
from functools import lru_cache

from engine.limits import MAX_BYTES, MAX_COUNT, MAX_CPU_MILLI, echo

__all__ = [
    "QuantityError",
    "format_quantity",
    "is_byte_resource",
    "max_quantity",
    "natural_per_base",
    "parse_quantity",
]

_BINARY = {"Ki": 2**10, "Mi": 2**20, "Gi": 2**30, "Ti": 2**40, "Pi": 2**50, "Ei": 2**60}
_DECIMAL = {
    "n": Decimal("1e-9"),
    "u": Decimal("1e-6"),
    "m": Decimal("1e-3"),
    "": Decimal(1),
    "k": Decimal(10**3),
    "M": Decimal(10**6),
    "G": Decimal(10**9),
    "T": Decimal(10**12),
    "P": Decimal(10**15),
    "E": Decimal(10**18),
}
_PATTERN = re.compile(r"([+-]?[0-9]+(?:\.[0-9]*)?|[+-]?\.[0-9]+)(?:[eE]([+-]?[0-9]+))?([a-zA-Z]*)")
#: longer quantity strings are refused before parsing (Kubernetes' own are a few characters)
_MAX_LENGTH = 64


class QuantityError(ValueError):
    """A quantity string is not valid Kubernetes notation for its resource."""


def is_byte_resource(resource: str) -> bool:
    """Whether a resource is measured in bytes (priced per GiB)."""
    return resource in ("memory", "ephemeral-storage", "storage") or resource.startswith(
        "hugepages-"
    )


def max_quantity(resource: str) -> tuple[int, str]:
    """Largest quantity of ``resource`` in base units (:mod:`engine.limits`), and how a person writes it."""
    if resource == "cpu":
        return MAX_CPU_MILLI, "1000000 cores"
    if is_byte_resource(resource):
        return MAX_BYTES, "1Pi bytes"
    return MAX_COUNT, "1000000000 units"


def _to_decimal(value: object) -> Decimal:
    expected = f"expected a quantity such as '500m', '2' or '4Gi', got {echo(value)}"
    if isinstance(value, bool):
        raise QuantityError(expected)
    if isinstance(value, int):
        return Decimal(value)
    if isinstance(value, float):
        if value != value or value in (float("inf"), float("-inf")):
            raise QuantityError(expected)
        return Decimal(repr(value))
    if not isinstance(value, str) or len(value) > _MAX_LENGTH:
        raise QuantityError(expected)
    match = _PATTERN.fullmatch(value.strip())
    if not match:
        raise QuantityError(expected)
    number, exponent, suffix = match.groups()
    try:
        amount = Decimal(number)
    except InvalidOperation as exc:  # pragma: no cover - the regex already guards this
        raise QuantityError(f"not a number: {echo(value)}") from exc
    if exponent is not None:
        if suffix:
            raise QuantityError(f"a quantity takes an exponent or a suffix, not both: {echo(value)}")
        if abs(int(exponent)) > 30:
            raise QuantityError(f"exponent out of range in {echo(value)}")
        amount = amount.scaleb(int(exponent))
    if suffix in _BINARY:
        return amount * _BINARY[suffix]
    if suffix in _DECIMAL:
        return amount * _DECIMAL[suffix]
    raise QuantityError(
        f"unknown suffix {echo(suffix)} in {echo(value)} (use m, k, M, G, T, Ki, Mi, Gi, Ti)"
    )


def parse_quantity(resource: str, value: object) -> int:
    """Parse ``value`` for ``resource`` into an integer count of base units.

    A fleet writes the same few quantities thousands of times ("500m", "1Gi"): strings and
    integers are parsed once each (errors are raised again each time, never cached).

    Raises:
        QuantityError: malformed, negative, beyond :func:`max_quantity`,
            or fractional where the resource is counted (``nvidia.com/gpu: 0.5``).
    """
    if isinstance(value, str | int) and not isinstance(value, bool) and (not isinstance(value, str)
                                                                         or len(value) <= _MAX_LENGTH):
        return _parse_once(resource, value)
    return _parse(resource, value)


@lru_cache(maxsize=8192, typed=True)
def _parse_once(resource: str, value: str | int) -> int:
    return _parse(resource, value)


def _parse(resource: str, value: object) -> int:
    amount = _to_decimal(value)
    if amount < 0:
        raise QuantityError(f"a quantity cannot be negative, got {echo(value)}")
    limit, written = max_quantity(resource)
    if resource == "cpu":
        amount *= 1000  # Kubernetes rounds cpu up to the millicore.
    if amount > limit:
        raise QuantityError(f"{echo(value)} is out of range: at most {written}")
    if resource == "cpu" or is_byte_resource(resource):
        return int(amount.to_integral_value(rounding=ROUND_CEILING))
    if amount != amount.to_integral_value():
        raise QuantityError(f"{resource} is counted in whole units, got {echo(value)}")
    return int(amount)


def natural_per_base(resource: str) -> float:
    """Natural units (core, GiB, device) in one base unit, for pricing."""
    if resource == "cpu":
        return 1e-3
    if is_byte_resource(resource):
        return 1.0 / 2**30
    return 1.0


def format_quantity(resource: str, base: float) -> str:
    """Render base units for people: ``3.5`` cores, ``12Gi``, ``2``."""
    if resource == "cpu":
        cores = base / 1000
        return f"{cores:g}"
    if is_byte_resource(resource):
        gib = base / 2**30
        if gib >= 1 or base == 0:
            return f"{gib:.4g}Gi"
        return f"{base / 2**20:.4g}Mi"
    return f"{base:g}"
