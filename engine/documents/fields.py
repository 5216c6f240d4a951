"""What every document kind is made of: names, labels, metadata, resource and price maps.

The field types and validators shared by the kinds of :mod:`engine.documents.kinds` and the
other kinds (``MetricsSource``, ``Scenario``); errors name the field and the entry.
"""

from __future__ import annotations

import re
from typing import Annotated, Any

from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    field_validator,
)
from pydantic.alias_generators import to_camel

from engine.limits import (
    MAX_PRICE,
    echo,
)
from engine.quantity import QuantityError, parse_quantity

__all__ = [
    "API_VERSION",
    "EntryError",
    "LabelKey",
    "LabelValue",
    "Metadata",
    "PriceMap",
    "ResourceMap",
    "_Model",
    "is_dns_label",
    "is_label_key",
]

API_VERSION = "placement.berth.dev/v1alpha1"

#: names and namespaces become object names, folder names and label values: DNS-1123 labels.
#: Patterns are used with ``fullmatch`` after a length check (no backtracking on huge input).
_DNS1123_LABEL = re.compile(r"[a-z0-9]([-a-z0-9]*[a-z0-9])?")
_DNS1123_SUBDOMAIN = re.compile(r"[a-z0-9]([-a-z0-9.]*[a-z0-9])?")
_LABEL_NAME = re.compile(r"[A-Za-z0-9]([-A-Za-z0-9_.]*[A-Za-z0-9])?")
_LABEL_VALUE = re.compile(r"([A-Za-z0-9]([-A-Za-z0-9_.]*[A-Za-z0-9])?)?")


def is_dns_label(value: str) -> bool:
    """A DNS-1123 label: at most 63 of ``[a-z0-9-]``, alphanumeric at both ends."""
    return len(value) <= 63 and _DNS1123_LABEL.fullmatch(value) is not None


def is_label_key(value: str) -> bool:
    """A Kubernetes label key (or resource name): ``[prefix/]name``, as kubectl checks it."""
    if len(value) > 253 + 1 + 63:
        return False
    prefix, sep, name = value.rpartition("/")
    if sep and (len(prefix) > 253 or not _DNS1123_SUBDOMAIN.fullmatch(prefix)):
        return False
    return len(name) <= 63 and _LABEL_NAME.fullmatch(name) is not None


def _check_label_value(value: str) -> str:
    if len(value) > 63 or not _LABEL_VALUE.fullmatch(value):
        raise ValueError(
            f"{echo(value)} is not a valid label value: at most 63 letters, digits, '-', '_' or '.', "
            "starting and ending with a letter or digit"
        )
    return value


def _stringify_label(value: Any) -> Any:
    """YAML reads ``pci: true`` as a bool; Kubernetes labels are strings."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return str(value)
    return value


def _check_label_key(value: str) -> str:
    if not is_label_key(value):
        raise ValueError(f"{echo(value)} is not a valid label key: [prefix/]name, name at most 63 characters")
    return value


LabelValue = Annotated[str, BeforeValidator(_stringify_label), AfterValidator(_check_label_value)]
LabelKey = Annotated[str, AfterValidator(_check_label_key)]


class _Model(BaseModel):
    model_config = ConfigDict(
        extra="forbid",
        alias_generator=to_camel,
        populate_by_name=True,
        frozen=False,
        allow_inf_nan=False,
    )


class EntryError(ValueError):
    """A bad entry of a map field: the loader adds ``key`` to the field it names (``spec.resources.cpu``)."""

    def __init__(self, key: str, message: str) -> None:
        super().__init__(message)
        self.key = key


def _check_resources(value: dict[str, Any]) -> dict[str, int]:
    """Parse a ``{resource: quantity}`` map into base units."""
    if not isinstance(value, dict):
        raise ValueError(f"expected a mapping of resource names to quantities, got {echo(value)}")
    out: dict[str, int] = {}
    for name, raw in value.items():
        if not isinstance(name, str) or not is_label_key(name):
            raise ValueError(f"{echo(name)} is not a resource name")
        try:
            out[name] = parse_quantity(name, raw)
        except QuantityError as exc:
            raise EntryError(name, str(exc)) from exc
    return out


def _check_prices(value: dict[str, Any]) -> dict[str, float]:
    if not isinstance(value, dict):
        raise ValueError(f"expected a mapping of resource names to prices, got {echo(value)}")
    out: dict[str, float] = {}
    for name, raw in value.items():
        if not isinstance(name, str) or not is_label_key(name):
            raise ValueError(f"{echo(name)} is not a resource name")
        expected = f"expected a price per unit-hour such as '0.04', got {echo(raw)}"
        if isinstance(raw, bool) or not isinstance(raw, int | float | str) or (
            isinstance(raw, str) and len(raw) > 64
        ):
            raise EntryError(name, expected)
        try:
            price = float(raw)
        except (TypeError, ValueError, OverflowError) as exc:
            raise EntryError(name, expected) from exc
        if not 0 <= price <= MAX_PRICE:  # also refuses nan and inf
            raise EntryError(name, f"a price must be a number from 0 to {MAX_PRICE:g}, got {echo(raw)}")
        out[name] = price
    return out


def _check_dns_label(value: str, what: str) -> str:
    if not is_dns_label(value):
        raise ValueError(f"{what} {echo(value)} is not a valid name: a DNS-1123 label")
    return value


def _check_subdomain(value: str, what: str) -> str:
    if len(value) > 253 or not _DNS1123_SUBDOMAIN.fullmatch(value):
        raise ValueError(f"{what} {echo(value)} is not a valid object name (a DNS-1123 subdomain)")
    return value


def _whole_number(value: Any) -> Any:
    """Refuse what pydantic would coerce into an int: booleans, strings, fractions."""
    if isinstance(value, bool | str) or (isinstance(value, float) and not value.is_integer()):
        raise ValueError(f"expected an integer, got {value!r}")
    return value


ResourceMap = Annotated[dict[str, int], BeforeValidator(_check_resources)]
PriceMap = Annotated[dict[str, float], BeforeValidator(_check_prices)]


class Metadata(_Model):
    name: str
    namespace: str | None = None
    labels: dict[str, LabelValue] = Field(default_factory=dict)
    annotations: dict[str, str] = Field(default_factory=dict)

    @field_validator("name", "namespace")
    @classmethod
    def _dns_name(cls, value: str | None) -> str | None:
        if value is not None and not is_dns_label(value):
            raise ValueError(
                f"{echo(value)} is not a valid name: a DNS-1123 label of at most 63 lower-case letters, "
                "digits and '-', starting and ending with a letter or digit"
            )
        return value

    @field_validator("labels")
    @classmethod
    def _label_keys(cls, value: dict[str, str]) -> dict[str, str]:
        for key in value:
            if not is_label_key(key):
                raise ValueError(f"{echo(key)} is not a valid label key")
        return value
