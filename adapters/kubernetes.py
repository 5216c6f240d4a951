"""Live inventory from Kubernetes API servers (spec section 6), via the kubernetes client.

One kubeconfig context per cluster. For each context the adapter lists nodes
(allocatable, labels, taints, ``spec.unschedulable``) and pods (requests,
phase, node) and computes the same free capacity as the Prometheus adapter:
allocatable of schedulable nodes minus the requests of Running and Pending
pods that Berth does not manage, on those nodes or not yet bound.

- A node is schedulable unless ``spec.unschedulable`` is true or it has a
  ``NoSchedule``/``NoExecute`` taint whose key is not in
  ``spec.schedulableTaints`` (default ``nvidia.com/gpu``, ``amd.com/gpu``).
- A pod's request per resource is what kube-scheduler uses:
  ``max(sum of containers (and sidecar init containers), largest init container)``
  plus ``spec.overhead``; each counted pod uses one ``pods``.
- Region and zone are the most common ``topology.kubernetes.io/region|zone``
  values of the schedulable nodes, unless the MetricsSource maps the context.
- A context that cannot be read (unreachable, timed out, 401/403, 5xx) does not
  crash the run: its cluster carries ``error`` and :func:`engine.documents.live.apply_live`
  treats it as stale (file value or refusal, as configured).

Each request has ``spec.kubernetes.timeout`` (connect and read) and
``spec.kubernetes.retries`` connection retries; lists are paged 500 at a time.
"""

from __future__ import annotations

import json
from collections import Counter
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import urllib3
import yaml
from kubernetes import client, config
from kubernetes.client.exceptions import ApiException
from kubernetes.config.config_exception import ConfigException
from urllib3.util.retry import Retry

from engine import (
    Bundle,
    ClusterLive,
    InputError,
    LiveFleet,
    MetricsSource,
    QuantityError,
    find_source,
    parse_duration,
    parse_quantity,
)

__all__ = ["fetch_inventory", "inventory_from_objects"]

_PAGE = 500
_REGION = "topology.kubernetes.io/region"
_ZONE = "topology.kubernetes.io/zone"


class _Unreadable(Exception):
    """A context could not be read; the message is safe to show (no credentials)."""


def _add(into: dict[str, int], resource: str, amount: int) -> None:
    into[resource] = into.get(resource, 0) + amount


def _requests(items: list[dict[str, Any]] | None, warn: list[str]) -> dict[str, int]:
    out: dict[str, int] = {}
    for container in items or []:
        for resource, raw in ((container.get("resources") or {}).get("requests") or {}).items():
            try:
                _add(out, resource, parse_quantity(resource, raw))
            except QuantityError as exc:
                warn.append(f"ignored request {resource}={raw!r}: {exc}")
    return out


def pod_requests(pod: dict[str, Any], warn: list[str]) -> dict[str, int]:
    """The effective request of a pod per resource, as kube-scheduler computes it."""
    spec = pod.get("spec") or {}
    inits = spec.get("initContainers") or []
    sidecars = [c for c in inits if c.get("restartPolicy") == "Always"]
    plain = [c for c in inits if c.get("restartPolicy") != "Always"]
    total = _requests(spec.get("containers"), warn)
    for resource, amount in _requests(sidecars, warn).items():
        _add(total, resource, amount)
    for init in plain:
        for resource, amount in _requests([init], warn).items():
            total[resource] = max(total.get(resource, 0), amount)
    for resource, raw in (spec.get("overhead") or {}).items():
        try:
            _add(total, resource, parse_quantity(resource, raw))
        except QuantityError as exc:
            warn.append(f"ignored overhead {resource}={raw!r}: {exc}")
    return total


def _majority(values: list[str]) -> str | None:
    counted = Counter(v for v in values if v)
    return counted.most_common(1)[0][0] if counted else None


def inventory_from_objects(
    name: str,
    nodes: list[dict[str, Any]],
    pods: list[dict[str, Any]],
    source: MetricsSource,
    *,
    observed_at: datetime,
    warnings: list[str] | None = None,
) -> ClusterLive:
    """Free capacity of one cluster from its Node and Pod objects (API JSON). Pure.

    Args:
        name: the Cluster's name in the bundle.
        nodes: ``NodeList.items``.
        pods: ``PodList.items`` (every namespace).
        source: for ``schedulableTaints`` and ``managedPods``.
        observed_at: when the lists were read.
        warnings: receives a sentence per quantity that could not be parsed.
    """
    spec = source.spec
    tolerated = set(spec.schedulable_taints)
    live = ClusterLive(name=name, observed_at=observed_at)
    warn: list[str] = []
    included: set[str] = set()
    regions: list[str] = []
    zones: list[str] = []
    for node in nodes:
        meta, node_spec = node.get("metadata") or {}, node.get("spec") or {}
        if node_spec.get("unschedulable"):
            continue
        if any(
            t.get("effect") in ("NoSchedule", "NoExecute") and t.get("key") not in tolerated
            for t in node_spec.get("taints") or []
        ):
            continue
        included.add(meta.get("name", ""))
        labels = meta.get("labels") or {}
        regions.append(labels.get(_REGION, ""))
        zones.append(labels.get(_ZONE, ""))
        for resource, raw in ((node.get("status") or {}).get("allocatable") or {}).items():
            try:
                _add(live.allocatable, resource, parse_quantity(resource, raw))
            except QuantityError as exc:
                warn.append(f"ignored allocatable {resource}={raw!r}: {exc}")
    managed = spec.managed_pods
    for pod in pods:
        meta = pod.get("metadata") or {}
        if (pod.get("status") or {}).get("phase") not in ("Running", "Pending"):
            continue
        if managed is not None and (meta.get("labels") or {}).get(managed.label_key) == (
            managed.label_value
        ):
            continue
        node_name = (pod.get("spec") or {}).get("nodeName")
        if node_name and node_name not in included:
            continue
        for resource, amount in pod_requests(pod, warn).items():
            _add(live.requested, resource, amount)
        _add(live.requested, "pods", 1)
    live.nodes = len(included)
    live.region = _majority(regions)
    live.zone = _majority(zones)
    if warnings is not None:
        warnings += [f"cluster {name}: {w}" for w in warn]
    return live


def _api_error(exc: ApiException, context: str) -> _Unreadable:
    status = exc.status
    if status == 401:
        return _Unreadable(f"context {context}: the API server refused the credentials (HTTP 401)")
    if status == 403:
        return _Unreadable(
            f"context {context}: forbidden (HTTP 403); Berth needs to list nodes and pods "
            "in all namespaces"
        )
    if status == 0:
        return _Unreadable(f"context {context}: TLS or request error")
    return _Unreadable(f"context {context}: the API server answered HTTP {status}")


def _list_all(call: Any, context: str, timeout: float) -> list[dict[str, Any]]:
    items: list[dict[str, Any]] = []
    token: str | None = None
    while True:
        kwargs: dict[str, Any] = {"limit": _PAGE, "_preload_content": False,
                                  "_request_timeout": (timeout, timeout)}
        if token:
            kwargs["_continue"] = token
        try:
            response = call(**kwargs)
            status = getattr(response, "status", 200)
            if not 200 <= status <= 299:
                raise ApiException(status=status, reason=getattr(response, "reason", ""))
            body = json.loads(response.data)
        except ApiException as exc:
            raise _api_error(exc, context) from None
        except (urllib3.exceptions.TimeoutError, urllib3.exceptions.MaxRetryError) as exc:
            reason = getattr(exc, "reason", None) or exc
            # NewConnectionError subclasses ConnectTimeoutError in urllib3 2: test it first.
            if not isinstance(reason, urllib3.exceptions.NewConnectionError) and isinstance(
                reason, urllib3.exceptions.TimeoutError
            ):
                raise _Unreadable(
                    f"context {context}: timed out after {timeout:g} s"
                ) from None
            raise _Unreadable(f"context {context}: could not connect to the API server") from None
        except urllib3.exceptions.HTTPError:
            raise _Unreadable(f"context {context}: the connection failed") from None
        except ValueError:
            raise _Unreadable(f"context {context}: the answer was not Kubernetes API JSON") from None
        if not isinstance(body, dict) or not isinstance(body.get("items"), list):
            raise _Unreadable(f"context {context}: the answer was not a Kubernetes list")
        items += body["items"]
        token = (body.get("metadata") or {}).get("continue") or None
        if not token:
            return items


def _contexts(kubeconfig: Path) -> list[str]:
    try:
        found, _ = config.list_kube_config_contexts(config_file=str(kubeconfig))
    except (ConfigException, OSError, yaml.YAMLError, TypeError, KeyError) as exc:
        raise InputError(f"not a usable kubeconfig: {exc}", file=str(kubeconfig)) from None
    return [c["name"] for c in found or []]


def _api(kubeconfig: Path, context: str, retries: int) -> client.CoreV1Api:
    cfg = client.Configuration()
    try:
        config.load_kube_config(
            config_file=str(kubeconfig), context=context, client_configuration=cfg,
            persist_config=False,
        )
    except ConfigException as exc:
        raise InputError(
            f"context {context!r} cannot be loaded: {exc}", file=str(kubeconfig), field="--context"
        ) from None
    cfg.retries = Retry(total=retries, connect=retries, read=0, status=0, redirect=0,
                        backoff_factor=0.2, raise_on_status=False)
    return client.CoreV1Api(client.ApiClient(cfg))


def fetch_inventory(
    bundle: Bundle,
    kubeconfig: Path,
    contexts: list[str],
    *,
    source: MetricsSource | None = None,
    now: datetime | None = None,
) -> LiveFleet:
    """Read nodes and pods of each context into a :class:`LiveFleet`.

    Args:
        bundle: the bundle (for its MetricsSource when ``source`` is not given).
        kubeconfig: the kubeconfig file.
        contexts: the contexts to read, one per cluster; empty means every
            context of the kubeconfig. A context's cluster is
            ``spec.kubernetes.contexts[ctx].cluster`` or the context's name.
        source: the configuration (default: the bundle's MetricsSource or the defaults).
        now: the snapshot time (default: now, UTC).

    Raises:
        InputError: the kubeconfig cannot be read, or a context is not in it.
    """
    source = source or find_source(bundle) or MetricsSource.default()
    settings = source.spec.kubernetes
    timeout = parse_duration(settings.timeout).total_seconds()
    available = _contexts(Path(kubeconfig))
    chosen = list(contexts) or available
    unknown = [c for c in chosen if c not in available]
    if unknown:
        raise InputError(
            f"no context {', '.join(map(repr, unknown))} (contexts: {', '.join(available) or 'none'})",
            file=str(kubeconfig),
            field="--context",
        )
    at = (now or datetime.now(UTC)).astimezone(UTC)
    fleet = LiveFleet(source=f"the Kubernetes API ({Path(kubeconfig).name})", at=at)
    for context in chosen:
        mapping = settings.contexts.get(context)
        name = (mapping.cluster if mapping else None) or context
        api = _api(Path(kubeconfig), context, settings.retries)
        try:
            nodes = _list_all(api.list_node, context, timeout)
            pods = _list_all(api.list_pod_for_all_namespaces, context, timeout)
            live = inventory_from_objects(
                name, nodes, pods, source, observed_at=at, warnings=fleet.warnings
            )
        except _Unreadable as exc:
            live = ClusterLive(name=name, error=str(exc))
            fleet.warnings.append(f"cluster {name}: {exc}")
        finally:
            api.api_client.close()
        if mapping is not None:
            live.region = mapping.region or live.region
            live.zone = mapping.zone or live.zone
        if name in fleet.clusters:
            raise InputError(
                f"two contexts map to cluster {name!r}", file=str(kubeconfig), field="--context"
            )
        fleet.clusters[name] = live
    return fleet
