"""The ``local`` resource manager: kernels as processes on the gateway's host.

A builtin plugin written exactly as a third-party one: thin hook implementations that delegate
to :mod:`eg_core._builtin._local_process`.
"""

from __future__ import annotations

from eg_core import hookimpl, provisioner_for

from . import _local_orphans as orphans
from . import _local_process as process

LocalProvisioner = provisioner_for("local")


@hookimpl
def eg_configurables():
    """Called once at gateway startup: the settings class (``gateway_id``, ``orphans_at_startup``)."""
    return [orphans.LocalResourceManager]


@hookimpl
def eg_kernelspec_aliases():
    return {"local-provisioner": "local", "LocalProcessProxy": "local"}


@hookimpl
async def eg_launch_process(kernel, cmd):
    await process.start(kernel, cmd)


@hookimpl
def eg_confirm_startup(kernel):
    """Nothing to wait for: the core's kernel_info phase proves the kernel is up, and an early
    exit is seen through ``eg_wait``."""


@hookimpl
def eg_poll(kernel):
    return process.poll(kernel)


@hookimpl
async def eg_wait(kernel):
    return await process.wait(kernel)


@hookimpl
def eg_send_signal(kernel, signum):
    process.signal_group(kernel, signum)


@hookimpl
def eg_kill(kernel):
    process.kill(kernel)


@hookimpl
def eg_cleanup(kernel, restart):
    process.cleanup(kernel, restart)


@hookimpl
def eg_describe_exit(kernel):
    return process.output_tail(kernel)


@hookimpl
def eg_load_process_info(kernel, info):
    process.adopt(kernel, info)


@hookimpl
async def eg_reconcile(known_kernel_ids):
    """At startup: this gateway's local kernels that no store knows and no live gateway owns,
    logged or killed (``LocalResourceManager.orphans_at_startup``)."""
    await orphans.reconcile(known_kernel_ids)


@hookimpl
async def eg_doctor(kernels):
    """Each local kernelspec's program runs here."""
    return [await process.check(kernel) for kernel in kernels]
