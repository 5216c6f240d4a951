"""The documented ranges of every number a bundle may hold (docs/input-limits.md).

One home for the limits, so that the pydantic boundary, the loader and the
docs agree. Each range is far beyond what a real fleet uses, and small enough
that every product the engine forms from them (replicas x request, summed
over a cluster or a tenant, scaled costs) stays inside a signed 64-bit
integer, which is what numpy arrays and CP-SAT coefficients hold.
"""

from __future__ import annotations

__all__ = [
    "MAX_BYTES",
    "MAX_CLUSTER_COUNT",
    "MAX_COUNT",
    "MAX_CPU_MILLI",
    "MAX_DEPTH",
    "MAX_DOCUMENTS",
    "MAX_DURATION_SECONDS",
    "MAX_ECHO",
    "MAX_FILE_BYTES",
    "MAX_FLEET_SUM",
    "MAX_GROUPS",
    "MAX_INT64",
    "MAX_LATENCY_MS",
    "MAX_MOVES",
    "MAX_PRICE",
    "MAX_PRIORITY",
    "MAX_REPLICAS",
    "MAX_SKEW",
    "MAX_TEXT",
    "MAX_TIERS",
    "MAX_WEIGHT",
    "WORKLOAD_TOTAL_FACTOR",
    "echo",
]

#: integers at or beyond 2^63 do not fit the engine's arrays anywhere
MAX_INT64 = 2**63 - 1

MAX_REPLICAS = 1_000_000
#: |priority|, as Kubernetes' user PriorityClass values (up to one billion)
MAX_PRIORITY = 1_000_000_000
#: cpu in millicores (one million cores), bytes (one PiB), counted units (one billion)
MAX_CPU_MILLI = 10**9
MAX_BYTES = 2**50
MAX_COUNT = 10**9
#: a workload's replicas x request may be this many times the largest quantity (it spans clusters)
WORKLOAD_TOTAL_FACTOR = 1000
#: the engine's sums of replicas x request over a whole fleet stay below this
MAX_FLEET_SUM = 2**61
#: per core-hour, GiB-hour or device-hour
MAX_PRICE = 1_000.0
MAX_LATENCY_MS = 1_000_000.0
MAX_WEIGHT = 1_000_000.0
MAX_MOVES = 1_000_000_000
#: clusters.min/max, minGroups/maxGroups
MAX_CLUSTER_COUNT = 100_000
MAX_GROUPS = 100_000
MAX_SKEW = MAX_REPLICAS
#: tiers of one clusterAffinities list (the engine keeps a tier index per cluster in 16 bits)
MAX_TIERS = 1_000
#: one year
MAX_DURATION_SECONDS = 365 * 86400

#: loader limits
MAX_DEPTH = 64
MAX_DOCUMENTS = 100_000
MAX_FILE_BYTES = 128 * 2**20
#: longest name, path or other free text a document may carry
MAX_TEXT = 4096

#: echoed values in error messages are cut to this many characters
MAX_ECHO = 80


def echo(value: object, limit: int = MAX_ECHO) -> str:
    """``repr`` of a value for an error message, cut to ``limit`` characters.

    Cheap on huge inputs: a long string or container is cut before it is rendered.
    """
    if isinstance(value, str | bytes) and len(value) > limit:
        return repr(value[:limit]) + f"…({len(value)} characters)"
    if isinstance(value, int) and not isinstance(value, bool) and value.bit_length() > 200:
        return f"an integer of {value.bit_length()} bits"
    if isinstance(value, dict | list | tuple) and len(value) > limit:
        return f"a {type(value).__name__} of {len(value)} items"
    try:
        text = repr(value)
    except (ValueError, RecursionError):  # an integer of more than 4300 digits inside a container
        return f"a {type(value).__name__}"
    if len(text) > limit:
        return text[:limit] + f"…({len(text)} characters)"
    return text
