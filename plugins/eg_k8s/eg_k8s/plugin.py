"""The ``k8s`` resource manager: each kernel in its own Kubernetes pod.

The resource-manager hooks are :mod:`._lifecycle`'s functions (one kernel's life); the rest of
the work is in :mod:`._request` (the pod's values and their checks), :mod:`._manifest` (the
objects), :mod:`._pods` (the shared pod watch), :mod:`._namespaces`, :mod:`._access` (RBAC
checks), :mod:`._store` (sessions in the cluster), :mod:`._orphans` and :mod:`._clusters` (which
cluster each kernel and API call uses). The ``kubernetes`` client is
imported by the first API call (:mod:`._api`): a gateway with no cluster never loads it.
"""

from __future__ import annotations

import asyncio
import logging
import os

from eg_core import hookimpl, hooks_from, orphans, provisioner_for

from . import _access as access
from . import _api as api
from . import _clusters as clusters
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
async def eg_startup(gateway):
    """Called before the gateway serves: learn the clusters the k8s kernelspecs name
    (:func:`eg_k8s._clusters.configure`) and start :func:`_check_clusters` in the background, so a
    slow or unreachable cluster does not hold up the gateway: on the gateway's own cluster its own
    place (its settings' namespace scope; not when it has no Kubernetes configuration at all), on
    each other cluster every place the kernelspecs name. ``gateway`` None (the plugin driven
    outside a gateway): the gateway settings' cluster alone."""
    global _startup
    clusters.configure(_targets(gateway.kernelspecs("k8s") if gateway is not None else []))
    own = clusters.own_target()
    checked = [t for t in clusters.targets() if t.cluster != clusters.default()]
    if not api.missing_configuration(own.cluster):
        checked.insert(0, own)
    if not checked:
        log.debug("%s: the cluster is not checked", api.missing_configuration(clusters.default()))
        return
    _startup = asyncio.ensure_future(_check_clusters(checked))


def _targets(kernels) -> list[clusters.Target]:
    """The gateway's own place and each one a kernelspec names (its cluster, namespace scope and
    gateway id); a kernelspec whose values are invalid is left to its launches to report."""
    from eg_core import EGError

    from ._request import resolve

    found = {clusters.own_target()}
    for kernel in kernels:
        try:
            kp = resolve(kernel)
        except EGError:
            continue
        found.add(clusters.Target(clusters.of_config(kernel.config), kp.namespace if kp.namespace_mode == "shared" else None, kp.gateway_id))
    return list(found)


async def _check_clusters(targets) -> None:
    await asyncio.gather(*(_check_cluster(target) for target in targets))


async def _check_cluster(target: clusters.Target) -> None:
    """Check the gateway's permissions in a place (each missing one is logged with its verb and
    resource) and sync its shared pod watch, if the gateway may list and watch pods there."""
    with clusters.using(target.cluster):
        try:
            shared = target.scope is not None
            lacking = await access.missing(access.KERNEL_NAMESPACE, target.scope if shared else "")
            if not shared:
                lacking += await access.missing(access.CREATED_NAMESPACE + access.ALL_NAMESPACES, "")
            for permission in lacking:
                log.warning("Kubernetes RBAC in %s: the gateway may not %s; kernel launches needing it will be refused",
                            target.cluster, permission)
            if await access.missing([("list", "pods", ""), ("watch", "pods", "")], target.scope or ""):
                return  # no watch to sync: it would retry until the gateway may list pods there
            await pods.pods(target.scope, target.gateway_id).synced()
        except Exception as exc:  # the cluster may come later; launches report what is wrong then
            log.warning("Kubernetes API not usable at startup: %s: %s", target.cluster, exc)


@hookimpl
async def eg_reconcile(known_kernel_ids):
    """Called at startup once the gateway adopted its stored kernels: kernel pods of this
    gateway id that it does not know, in each cluster its kernelspecs name, are logged or removed
    per ``orphans_at_startup``. A cluster with no configuration, or whose API fails, is reported
    as unreachable."""
    policy = settings().orphans_at_startup
    if policy == "ignore":
        return
    known = set(known_kernel_ids)
    seen: set[tuple] = set()  # a pod two places cover (a namespace, and all namespaces of its cluster)
    for target in clusters.targets():
        name = "k8s" if target.cluster == clusters.default() else f"k8s ({target.cluster})"
        missing = api.missing_configuration(target.cluster)
        if missing:
            orphans.unreachable(name, missing)
            continue
        try:
            for orphan in await _orphans.find_in(target, known):
                if (orphan.cluster, orphan.namespace, orphan.name) in seen:
                    continue
                seen.add((orphan.cluster, orphan.namespace, orphan.name))
                removing = policy == "remove" or orphan.removable_when_logged
                if removing:
                    await _orphans.remove(orphan)
                log.warning(
                    "%s kernel pod %s/%s (kernel %s, %s) of gateway %r in %s, unknown to this gateway%s",
                    "Removed" if removing else "Found", orphan.namespace, orphan.name, orphan.kernel_id, orphan.phase,
                    target.gateway_id, target.cluster, f" (waiting in a warm pool; its gateway: {orphan.waiting})" if orphan.waiting else "",
                )
        except Exception as exc:
            orphans.unreachable(name, exc)


@hookimpl
def eg_kernel_event(kernel, event, details):
    """Called on each lifecycle event: a pod kernel claimed from a warm pool has its pod's
    metadata made its claimant's (:func:`eg_k8s._pool.claim`, in the background)."""
    if event == "pool_claimed" and kernel.resource_manager == "k8s":
        pool.claim(kernel)


@hookimpl
async def eg_shutdown():
    """Called once when the gateway stops: stop the startup check, the pod watches and every cluster's client."""
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
