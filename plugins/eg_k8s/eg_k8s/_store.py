"""The cluster as the session store of pod kernels.

A kernel pod carries its session record (what a gateway needs to re-attach: the kernel's
context and connection info) in the annotation :data:`ANNOTATION`; the one secret part, the
kernel's connection key, goes into the kernel's launch Secret (owned by the pod). So a restarted
gateway, or any replica, finds every pod kernel in the cluster with no shared filesystem.

The ``eg_store_*`` hooks answer for pod kernels only, and decline (return None) for any other
kernel, so the gateway's own store keeps those. Which kernel ids are pod kernels is known from
the shared pod watches, synced at startup. A record is kept in the kernel's own cluster (its
state names it, :mod:`._clusters`), and :func:`load_all` reads every cluster the gateway's
kernelspecs name.

A launch is recorded before anything is created, when there is no pod to hold the record: such
a record (and one of a restart between pods) is declined, so the gateway's own store keeps it,
and the next gateway removes what that launch created if it ends unfinished. Once the pod
exists, its annotation holds the record and the core has the gateway's store forget its copy
(deletes are declined too after the annotation is removed, so every store forgets the kernel).
"""

from __future__ import annotations

import base64
import copy
import json
import logging
from typing import Any, Awaitable

from . import _api as api
from . import _clusters as clusters
from . import _pods as pods
from ._clusters import Cluster, Target
from ._manifest import selector
from ._settings import settings

log = logging.getLogger("eg.k8s")

ANNOTATION = "eg.jupyter.org/session"
KEY_FIELD = "connection-key"
_written: dict[tuple[Cluster, str, str], str] = {}  # (cluster, namespace, Secret) -> the connection key this process wrote there


def _is_k8s(record: dict[str, Any]) -> bool:
    return ((record.get("provisioner") or {}).get("eg") or {}).get("resource_manager") == "k8s"


def _secret_places(record: dict[str, Any]) -> list[tuple[dict, str]]:
    """Where a record holds secrets: the connection key (twice) and the launch key (twice)."""
    provisioner = record.get("provisioner") or {}
    eg = provisioner.get("eg") or {}
    places = [(provisioner.get("connection_info"), "key"), (eg.get("connection_info"), "key"),
              (eg.get("state"), "launch_key"), (eg.get("process_info"), "launch_key")]
    return [(holder, name) for holder, name in places if isinstance(holder, dict)]


def _split_key(record: dict[str, Any]) -> tuple[dict[str, Any], str | None]:
    """The record without its secrets, and the connection key (the launch key is in the
    kernel's Secret already, as ``launch-key``)."""
    record = copy.deepcopy(record)
    key = None
    for holder, name in _secret_places(record):
        if name in holder:
            value = holder.pop(name)
            if name == "key":
                key = text(value)
    return record, key


def _join_key(record: dict[str, Any], key: str | None, launch_key: str | None) -> dict[str, Any]:
    for holder, name in _secret_places(record):
        value = key if name == "key" else launch_key
        if value is not None:
            holder[name] = value
    return record


def save(record: dict[str, Any]) -> Awaitable[bool] | None:
    if not settings().store_sessions or not _is_k8s(record):
        return None
    return _save(record)


async def _save(record: dict[str, Any]) -> bool | None:
    state = record["provisioner"]["eg"].get("state") or {}
    name, namespace, secret = state.get("pod"), state.get("namespace"), state.get("secret")
    if not name or not namespace or not state.get("pod_uid"):
        return None  # no pod yet: the next store keeps it
    public, key = _split_key(record)
    cluster = clusters.of_state(state)
    with clusters.using(cluster):
        return await _write(cluster, public, key, name, namespace, secret)


async def _write(cluster: Cluster, public: dict[str, Any], key: str | None, name: str, namespace: str, secret: str | None) -> bool | None:
    from kubernetes.client.rest import ApiException

    core = api.core()
    try:
        if secret and key is not None and _written.get((cluster, namespace, secret)) != key:  # once per key: a claim writes no Secret
            await api.call(core.patch_namespaced_secret, secret, namespace, {"stringData": {KEY_FIELD: key}}, _preload_content=False)
            _written[(cluster, namespace, secret)] = key
        # the answer is not read: the client's models of a pod cost more CPU than the call
        await api.call(core.patch_namespaced_pod, name, namespace, {"metadata": {"annotations": {ANNOTATION: json.dumps(public)}}},
                       _preload_content=False)
    except ApiException as exc:
        if exc.status != 404:
            raise
        return None  # the pod is gone (a restart between pods): the next store keeps it
    return True


def text(key: str | bytes) -> str:
    """A connection key as the Secret holds it."""
    return key.decode() if isinstance(key, bytes) else key


def secret_made(namespace: str, secret: str, key: str | None = None) -> None:
    """Called when a launch (re)creates a kernel's Secret (in the current cluster), holding the
    connection ``key`` under :data:`KEY_FIELD` already (a kernel run on the gateway's connection
    file: its record's save then writes no Secret) or none yet."""
    if key is None:
        _written.pop((clusters.current(), namespace, secret), None)
    else:
        _written[(clusters.current(), namespace, secret)] = key


async def _record(pod: dict[str, Any], cluster: Cluster) -> dict[str, Any] | None:
    """The session record on ``pod`` of ``cluster`` (the current one), with its keys from the
    kernel's Secret; a record that names no cluster (written before eg-k8s had several) gets ``cluster``."""
    from kubernetes.client.rest import ApiException

    text = ((pod.get("metadata") or {}).get("annotations") or {}).get(ANNOTATION)
    if not text:
        return None
    try:
        record = json.loads(text)
    except ValueError:
        return None
    eg = (record.get("provisioner") or {}).get("eg") or {}
    for held in (eg.get("state"), eg.get("process_info")):
        if isinstance(held, dict):
            held.setdefault("cluster", cluster.state())
    state = eg.get("state") or {}
    data: dict[str, str] = {}
    if state.get("secret"):
        try:
            secret = await api.call_raw(api.core().read_namespaced_secret, state["secret"], pod["metadata"]["namespace"])
            data = {k: base64.b64decode(v).decode() for k, v in (secret.get("data") or {}).items()}
        except ApiException as exc:
            if exc.status != 404:
                raise
    return _join_key(record, data.get(KEY_FIELD), data.get("launch-key") or None)


def load(kernel_id: str) -> Awaitable[dict[str, Any] | None] | None:
    if not settings().store_sessions:
        return None
    found = pods.find(kernel_id)
    return _in(found[0], _record(found[1], found[0])) if found is not None else None


def delete(kernel_id: str) -> Awaitable[bool] | None:
    if not settings().store_sessions:
        return None
    found = pods.find(kernel_id)
    return _in(found[0], _delete(found[1])) if found is not None else None


async def _in(cluster: Cluster, call: Awaitable[Any]) -> Any:
    with clusters.using(cluster):
        return await call


async def _delete(pod: dict[str, Any]) -> None:
    from kubernetes.client.rest import ApiException

    meta = pod["metadata"]
    try:
        await api.call(api.core().patch_namespaced_pod, meta["name"], meta["namespace"], {"metadata": {"annotations": {ANNOTATION: None}}})
    except ApiException as exc:
        if exc.status != 404:
            raise
    return None  # the next store may hold the record of the launch from before the pod existed


async def load_all() -> list[dict[str, Any]] | None:
    """Every pod kernel that carries a session record, in each place the gateway's kernelspecs
    name (:func:`eg_k8s._clusters.targets`). A cluster that cannot be read is logged and skipped
    (its kernels are not adopted; when none can, the error is raised); with no Kubernetes
    configuration at all there are none."""
    if not settings().store_sessions:
        return None
    records: dict[str, dict[str, Any]] = {}
    read, failed = 0, None
    for target in clusters.targets():
        if target.cluster == clusters.default() and api.missing_configuration(target.cluster):
            continue  # no cluster: no pod kernels
        try:
            with clusters.using(target.cluster):
                for record in await _records(target):
                    records.setdefault(str(record.get("kernel_id")), record)
            read += 1
        except Exception as exc:
            log.warning("cannot read kernel sessions from Kubernetes cluster %s: %s", target.cluster, exc)
            failed = exc
    if failed is not None and not read:
        raise failed
    return list(records.values())


async def _records(target: Target) -> list[dict[str, Any]]:
    core = api.core()
    found = selector(target.gateway_id)
    if target.scope is not None:
        listing = await api.call_raw(core.list_namespaced_pod, target.scope, label_selector=found)
    else:
        listing = await api.call_raw(core.list_pod_for_all_namespaces, label_selector=found)
    records = []
    for pod in listing.get("items") or []:
        record = await _record(pod, target.cluster)
        if record is not None:
            records.append(record)
    return records
