"""The ``local`` resource manager: kernels as processes on the gateway's host.

A builtin plugin written exactly as a third-party one: its resource-manager hooks are the
functions of :mod:`eg_core._builtin._local_process`.
"""

from __future__ import annotations

import logging

from eg_core import hookimpl, hooks_from, provisioner_for

from . import _local_orphans as orphans
from . import _local_pod as pod
from . import _local_process as process

LocalProvisioner = provisioner_for("local")
log = logging.getLogger("eg.local")


@hookimpl
def eg_configurables():
    """Called once at gateway startup: the settings class (``gateway_id``, ``orphans_at_startup``,
    ``allow_in_pod``)."""
    return [orphans.LocalResourceManager]


@hookimpl
def eg_kernelspec_aliases():
    return {"local-provisioner": "local", "LocalProcessProxy": "local"}


@hookimpl
def eg_refused_resource_managers():
    """Called once at startup: ``local`` is refused in a Kubernetes pod unless ``allow_in_pod``."""
    why = pod.refusal()
    return {"local": why} if why else None


@hookimpl
def eg_startup():
    """Called before the gateway serves: warn once when local kernels run in a pod."""
    warning = pod.allowed_warning()
    if warning:
        log.warning("%s", warning)


# The resource-manager hooks: eg_<name> for each function <name> of ._local_process. No
# eg_confirm_startup: the core's kernel_info phase proves the kernel is up, and an early exit is
# seen through eg_wait.
globals().update(hooks_from("eg_core._builtin._local_process"))


@hookimpl
async def eg_reconcile(known_kernel_ids):
    """At startup: this gateway's local kernels that no store knows and no live gateway owns,
    logged or killed (``LocalResourceManager.orphans_at_startup``)."""
    await orphans.reconcile(known_kernel_ids)


@hookimpl
async def eg_doctor(kernels):
    """Whether local kernels run in this pod (a row always), and each local kernelspec's program runs here."""
    return [pod.check(), *[await process.check(kernel) for kernel in kernels]]
