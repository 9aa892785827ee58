"""The ``culling`` plugin: shut down kernels idle longer than ``KernelCuller.cull_idle_timeout``.

A builtin policy written exactly as a third-party one: thin hook implementations over
:mod:`eg_core._builtin._culler`. Settings (Enterprise Gateway's names, also from its ``EG_CULL_*``
environment variables)::

    eg-gateway --KernelCuller.cull_idle_timeout=3600 --KernelCuller.cull_interval=300 \\
               --KernelCuller.cull_connected=False --KernelCuller.cull_busy=False

Each cull is logged with its reason and reported to every plugin as a ``culled`` kernel event
(``details``: ``reason``, ``idle_seconds``, ``cull_idle_timeout``, ``execution_state``,
``connections``) before the kernel is shut down.
"""

from __future__ import annotations

from eg_core import hookimpl

from ._culler import KernelCuller


@hookimpl
def eg_configurables():
    return [KernelCuller]


@hookimpl
def eg_startup(gateway):
    KernelCuller.instance().start(gateway)


@hookimpl
async def eg_shutdown(gateway):
    if KernelCuller.initialized():
        await KernelCuller.instance().stop()
