"""Namespaces the gateway creates for kernels ('per-user' and 'per-kernel' modes).

Enterprise Gateway's behaviour: the namespace is labelled as eg's, a RoleBinding of the
``kernel_cluster_role`` ClusterRole to the kernel's service account is created in it, and it
is deleted when its kernel (per-kernel) or its user's last kernel (per-user) shuts down. A
namespace named by ``KERNEL_NAMESPACE`` or the kernelspec is assumed to exist and never deleted.

A launch for a user whose last kernel is being shut down races the deletion of their namespace:
within one gateway process a per-namespace lock orders the two (the launch waits for a namespace
already terminating, then creates it again; a deletion skips a namespace a launch is filling). A
launch through another gateway replica that meets a terminating namespace waits for it likewise.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
from typing import AsyncIterator

from kubernetes import client
from kubernetes.client.rest import ApiException
from kubernetes.watch.watch import iter_resp_lines

from eg_core import KernelContext, LaunchFailed
from eg_core.watch import iterate_in_thread

from . import _api as api
from . import _clusters as clusters
from ._manifest import APP, COMPONENT, LABEL_APP, LABEL_COMPONENT, LABEL_GATEWAY, LABEL_KERNEL_ID
from ._request import KernelPod, creates_namespace, dns_name

ROLE_BINDING = "eg-kernel"
LABEL_USER = "eg.jupyter.org/user"
# Per namespace this process creates: launches between ensuring it and creating their pod (a
# per-user namespace is not deleted under them), and the lock that orders those with deletions.
# Both are per namespace of the current cluster.
_launching: dict[tuple[object, str], int] = {}
_locks: dict[tuple[object, str], asyncio.Lock] = {}


def _lock(namespace: str) -> asyncio.Lock:
    return _locks.setdefault((clusters.current(), namespace), asyncio.Lock())


@contextlib.asynccontextmanager
async def in_use(kernel: KernelContext, kp: KernelPod, timeout: float) -> AsyncIterator[None]:
    """Around creating the kernel's objects: the namespace exists (see :func:`ensure`) and a
    release of the user's last kernel (:func:`release`) leaves it alone until the pod exists."""
    namespace = kp.namespace
    key = (clusters.current(), namespace)
    async with _lock(namespace):
        await ensure(kernel, kp, timeout)
        _launching[key] = _launching.get(key, 0) + 1
    try:
        yield
    finally:
        _launching[key] -= 1
        if not _launching[key]:
            del _launching[key]


def _labels(kernel: KernelContext, kp: KernelPod) -> dict[str, str]:
    labels = {LABEL_APP: APP, LABEL_COMPONENT: COMPONENT, LABEL_GATEWAY: kp.gateway_id}
    if kp.namespace_mode == "per-kernel":
        labels[LABEL_KERNEL_ID] = kernel.kernel_id
    else:
        labels[LABEL_USER] = dns_name(kernel.user or "anonymous") or "anonymous"
    return labels


async def _gone(name: str, timeout: float) -> None:
    """Wait (on a watch of that one namespace) until namespace ``name`` no longer exists."""
    core = api.core()
    try:
        current = await api.call_raw(core.read_namespace, name)
    except ApiException as exc:
        if exc.status == 404:
            return
        raise
    response = await api.call(
        core.list_namespace, field_selector=f"metadata.name={name}", watch=True,
        resource_version=current["metadata"]["resourceVersion"], timeout_seconds=max(int(timeout), 1), _preload_content=False,
    )

    async def deleted() -> None:
        async for line in iterate_in_thread(lambda: iter_resp_lines(response), close=response.close):
            if line and json.loads(line).get("type") == "DELETED":
                return

    await asyncio.wait_for(deleted(), timeout)


async def ensure(kernel: KernelContext, kp: KernelPod, timeout: float) -> None:
    """Create the kernel's namespace and RoleBinding (existing ones are reused; one being
    deleted is waited for, then created again)."""
    core = api.core()
    body = {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": kp.namespace, "labels": _labels(kernel, kp)}}
    for _ in range(2):
        try:
            await api.call(core.create_namespace, body)
            break
        except ApiException as exc:
            if exc.status != 409:
                raise LaunchFailed("launch_process", f"cannot create namespace {kp.namespace}: {api.message(exc)}") from exc
        existing = await api.call_raw(core.read_namespace, kp.namespace)
        if (existing.get("status") or {}).get("phase") != "Terminating":
            break
        kernel.progress("namespace_terminating", namespace=kp.namespace)
        await _gone(kp.namespace, timeout)
    kernel.state["created_namespace"] = True
    if kp.kernel_cluster_role:
        binding = {
            "apiVersion": "rbac.authorization.k8s.io/v1",
            "kind": "RoleBinding",
            "metadata": {"name": ROLE_BINDING, "namespace": kp.namespace, "labels": _labels(kernel, kp)},
            "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": kp.kernel_cluster_role},
            "subjects": [{"kind": "ServiceAccount", "name": kp.service_account, "namespace": kp.namespace}],
        }
        try:
            await api.call(api.rbac().create_namespaced_role_binding, kp.namespace, binding)
        except ApiException as exc:
            if exc.status != 409:
                raise LaunchFailed(
                    "launch_process", f"cannot bind ClusterRole {kp.kernel_cluster_role} in namespace {kp.namespace}: {api.message(exc)}"
                ) from exc


async def release(kernel: KernelContext) -> None:
    """Delete the namespace this kernel's launch created: always for 'per-kernel', for
    'per-user' when no kernel pod is left in it."""
    namespace = kernel.state.get("namespace")
    if not kernel.state.get("created_namespace") or not namespace:
        return
    core = api.core()
    if kernel.state.get("namespace_mode") != "per-user":
        await _delete(core, namespace)
    else:
        async with _lock(namespace):
            if _launching.get((clusters.current(), namespace)):
                return  # a launch of this user's is creating its pod there
            left = await api.call_raw(core.list_namespaced_pod, namespace, label_selector=f"{LABEL_COMPONENT}={COMPONENT}")
            if any(p["metadata"].get("labels", {}).get(LABEL_KERNEL_ID) != kernel.kernel_id for p in left.get("items") or []):
                return
            await _delete(core, namespace)
    kernel.state.pop("created_namespace", None)


async def _delete(core: client.CoreV1Api, namespace: str) -> None:
    await api.ignore_missing(core.delete_namespace, namespace, body=client.V1DeleteOptions(propagation_policy="Background"))
