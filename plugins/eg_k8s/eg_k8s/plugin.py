"""The ``k8s`` resource manager: each kernel in its own Kubernetes pod.

Thin hook implementations; the work is in :mod:`._lifecycle` (one kernel's life),
:mod:`._request` (the pod's values and their checks), :mod:`._manifest` (the objects),
:mod:`._pods` (the shared pod watch), :mod:`._namespaces`, :mod:`._access` (RBAC checks),
:mod:`._store` (sessions in the cluster) and :mod:`._orphans`.
"""

from __future__ import annotations

import logging
import os

from eg_core import hookimpl, provisioner_for

from . import _access as access
from . import _api as api
from . import _lifecycle as lifecycle
from . import _orphans as orphans
from . import _pods as pods
from . import _store as store
from ._settings import KubernetesSettings, settings

KubernetesProvisioner = provisioner_for("k8s")
log = logging.getLogger("eg.k8s")
KERNELSPECS = os.path.join(os.path.dirname(__file__), "kernelspecs")


# -- registration ----------------------------------------------------------------------------------


@hookimpl
def eg_configurables():
    return [KubernetesSettings]


@hookimpl
def eg_kernelspec_aliases():
    """gateway_provisioners' and Enterprise Gateway's names for this resource manager."""
    return {
        "kubernetes-provisioner": "k8s",
        "KubernetesProcessProxy": "k8s",
        "CustomResourceProcessProxy": "k8s",
        "SparkOperatorProcessProxy": "k8s",
    }


@hookimpl
def eg_kernelspec_dirs():
    return [KERNELSPECS]


@hookimpl
async def eg_doctor(kernels):
    from ._doctor import checks

    return await checks(kernels)


@hookimpl
async def eg_startup():
    """Check the gateway's permissions for the configured namespace mode (each missing one is
    logged with its verb and resource) and sync the shared pod watch before requests come."""
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
    gateway id that it does not know are logged or removed per ``orphans_at_startup``."""
    policy = settings().orphans_at_startup
    if policy == "ignore":
        return
    try:
        found = await orphans.find(known_kernel_ids)
        for orphan in found:
            if policy == "remove":
                await orphans.remove(orphan)
            log.warning(
                "%s kernel pod %s/%s (kernel %s, %s) of gateway %r, unknown to this gateway",
                "Removed" if policy == "remove" else "Found", orphan.namespace, orphan.name, orphan.kernel_id,
                orphan.phase, settings().gateway_id,
            )
    except Exception as exc:
        log.warning("Kubernetes orphan check failed: %s", exc)


@hookimpl
async def eg_shutdown():
    await pods.close()
    api.close()


# -- resource-manager hooks ------------------------------------------------------------------------


@hookimpl
async def eg_launch_process(kernel, cmd):
    await lifecycle.launch(kernel, cmd)


@hookimpl
async def eg_confirm_startup(kernel):
    await lifecycle.confirm(kernel)


@hookimpl
def eg_connection_info(kernel):
    return kernel.connection_info


@hookimpl
async def eg_poll(kernel):
    return await lifecycle.poll(kernel)


@hookimpl
async def eg_wait(kernel):
    return await lifecycle.wait(kernel)


@hookimpl
async def eg_send_signal(kernel, signum):
    await lifecycle.send_signal(kernel, signum)


@hookimpl
async def eg_terminate(kernel):
    await lifecycle.terminate(kernel)


@hookimpl
async def eg_kill(kernel):
    await lifecycle.kill(kernel)


@hookimpl
async def eg_cleanup(kernel, restart):
    await lifecycle.cleanup(kernel, restart)


@hookimpl
async def eg_describe_exit(kernel):
    return await lifecycle.describe_exit(kernel)


@hookimpl
async def eg_load_process_info(kernel, info):
    await lifecycle.adopt(kernel, info)


# -- sessions in the cluster (pod kernels only; other kernels fall through to the next store) ------


@hookimpl
def eg_store_save(record):
    return store.save(record)


@hookimpl
def eg_store_load(kernel_id):
    return store.load(kernel_id)


@hookimpl
def eg_store_delete(kernel_id):
    return store.delete(kernel_id)


@hookimpl
async def eg_store_load_all():
    try:
        return await store.load_all()
    except Exception as exc:
        log.warning("cannot read kernel sessions from the cluster: %s", exc)
        return None
