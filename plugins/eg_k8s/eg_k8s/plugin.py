"""The ``k8s`` resource manager: each kernel in its own Kubernetes pod.

The resource-manager hooks are :mod:`._lifecycle`'s functions (one kernel's life); the rest of
the work is in :mod:`._request` (the pod's values and their checks), :mod:`._manifest` (the
objects), :mod:`._pods` (the shared pod watch), :mod:`._namespaces`, :mod:`._access` (RBAC
checks), :mod:`._store` (sessions in the cluster) and :mod:`._orphans`. The ``kubernetes`` client is
imported by the first API call (:mod:`._api`): a gateway with no cluster never loads it.
"""

from __future__ import annotations

import asyncio
import logging
import os

from eg_core import hookimpl, hooks_from, orphans, provisioner_for

from . import _access as access
from . import _api as api
from . import _orphans
from . import _pods as pods
from . import _pool as pool
from . import _pulls as pulls
from . import _store as store
from ._settings import KubernetesSettings, settings

KubernetesProvisioner = provisioner_for("k8s")
log = logging.getLogger("eg.k8s")
KERNELSPECS = os.path.join(os.path.dirname(__file__), "kernelspecs")
_startup: asyncio.Task | None = None  # eg_startup's check of the cluster, in the background


# -- registration ----------------------------------------------------------------------------------


@hookimpl
def eg_configurables():
    return [KubernetesSettings]


@hookimpl
def eg_kernelspec_aliases():
    """gateway_provisioners' and Enterprise Gateway's names for this resource manager (not their
    Spark operator and custom-resource proxies, which create more than a pod: the core refuses
    those kernelspecs by name)."""
    return {
        "kubernetes-provisioner": "k8s",
        "KubernetesProcessProxy": "k8s",
    }


@hookimpl
def eg_launch_parameters(kernel):
    """What a request may set for this kernelspec's pods (``metadata.parameters``)."""
    from ._parameters import launch_parameters

    return launch_parameters(kernel)


@hookimpl
def eg_requested_resources(kernel):
    """What the kernel's pod will request of the cluster (its kernelspec's settings, the
    request's allowed values over them): for resource quotas."""
    from ._request import requested_resources, resolve

    return requested_resources(resolve(kernel))


@hookimpl
def eg_kernelspec_dirs():
    return [KERNELSPECS]


@hookimpl
async def eg_doctor(kernels):
    from ._doctor import checks

    return await checks(kernels)


@hookimpl
async def eg_ready():
    """Called at each readiness probe (``GET /api/ready``): the API server answers."""
    from ._ready import problems

    return await problems()


@hookimpl
async def eg_startup():
    """Called before the gateway serves: start :func:`_check_cluster` in the background, so a
    slow or unreachable cluster does not hold up the gateway. With no Kubernetes configuration
    at all there is nothing to check."""
    global _startup
    missing = api.missing_configuration()
    if missing:
        log.debug("%s: the cluster is not checked", missing)
        return
    _startup = asyncio.ensure_future(_check_cluster())


async def _check_cluster() -> None:
    """Check the gateway's permissions for the configured namespace mode (each missing one is
    logged with its verb and resource) and sync the shared pod watch."""
    s = settings()
    try:
        shared = s.namespace_mode == "shared"
        lacking = await access.missing(access.KERNEL_NAMESPACE, s.namespace if shared else "")
        if not shared:
            lacking += await access.missing(access.CREATED_NAMESPACE + access.ALL_NAMESPACES, "")
        for permission in lacking:
            log.warning("Kubernetes RBAC: the gateway may not %s; kernel launches needing it will be refused", permission)
        watch = pods.pods(s.namespace if shared else None, s.gateway_id)
        await watch.synced()
    except Exception as exc:  # the cluster may come later; launches report what is wrong then
        log.warning("Kubernetes API not usable at startup: %s", exc)


@hookimpl
async def eg_reconcile(known_kernel_ids):
    """Called at startup once the gateway adopted its stored kernels: kernel pods of this
    gateway id that it does not know are logged or removed per ``orphans_at_startup``. No
    configuration, or an API that fails, is reported as unreachable."""
    policy = settings().orphans_at_startup
    if policy == "ignore":
        return
    missing = api.missing_configuration()
    if missing:
        orphans.unreachable("k8s", missing)
        return
    try:
        found = await _orphans.find(known_kernel_ids)
        for orphan in found:
            removing = policy == "remove" or orphan.removable_when_logged
            if removing:
                await _orphans.remove(orphan)
            log.warning(
                "%s kernel pod %s/%s (kernel %s, %s) of gateway %r, unknown to this gateway%s",
                "Removed" if removing else "Found", orphan.namespace, orphan.name, orphan.kernel_id,
                orphan.phase, settings().gateway_id, f" (waiting in a warm pool; its gateway: {orphan.waiting})" if orphan.waiting else "",
            )
    except Exception as exc:
        orphans.unreachable("k8s", exc)


@hookimpl
def eg_kernel_event(kernel, event, details):
    """Called on each lifecycle event: a pod kernel claimed from a warm pool has its pod's
    metadata made its claimant's (:func:`eg_k8s._pool.claim`, in the background)."""
    if event == "pool_claimed" and kernel.resource_manager == "k8s":
        pool.claim(kernel)


@hookimpl
async def eg_shutdown():
    """Called once when the gateway stops: stop the startup check, the pod watches and the client."""
    global _startup
    if _startup is not None:
        _startup.cancel()
        _startup = None
    await pods.close()
    await pulls.close()
    api.close()


# -- resource-manager hooks: eg_<name> for each function <name> of ._lifecycle, imported on first
# use (it imports the kubernetes client, which a gateway that runs no pod kernel does not need) ---

globals().update(hooks_from("eg_k8s._lifecycle"))


# -- sessions in the cluster (pod kernels only; other kernels fall through to the next store) ------


@hookimpl
def eg_store_save(record):
    return store.save(record)


@hookimpl
def eg_store_load(kernel_id):
    return _once_started(store.load, kernel_id)


@hookimpl
def eg_store_delete(kernel_id):
    return _once_started(store.delete, kernel_id)


def _once_started(answer, kernel_id):
    """``answer(kernel_id)`` (a store's answer: None or an awaitable), after the startup check
    while it runs: the store knows pod kernels from the pod watch, which it syncs."""
    if _startup is None or _startup.done():
        return answer(kernel_id)
    return _after(_startup, answer, kernel_id)


async def _after(startup: asyncio.Task, answer, kernel_id):
    await asyncio.wait({startup})
    result = answer(kernel_id)
    return await result if result is not None else None


@hookimpl
async def eg_store_load_all():
    try:
        return await store.load_all()
    except Exception as exc:
        log.warning("cannot read kernel sessions from the cluster: %s", exc)
        return None
