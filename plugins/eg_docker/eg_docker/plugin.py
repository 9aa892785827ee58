"""The ``docker`` resource manager: each kernel in its own Docker container, or Swarm service.

Thin hook implementations; the work is in :mod:`._lifecycle` (one kernel's life),
:mod:`._containers` / :mod:`._services` (the two modes), :mod:`._settings` (what the container
looks like, and the checks), :mod:`._client` (async Docker Engine API) and :mod:`._orphans`.
"""

from __future__ import annotations

import logging

from eg_core import hookimpl, provisioner_for

from . import _lifecycle as lifecycle
from . import _orphans
from ._client import DockerError, client_for, close_clients
from ._settings import DockerSettings, pool_misfit, settings

DockerProvisioner = provisioner_for("docker")
log = logging.getLogger("eg.docker")


# -- registration ----------------------------------------------------------------------------------


@hookimpl
def eg_configurables():
    return [DockerSettings]


@hookimpl
async def eg_reconcile(known_kernel_ids):
    """Called at startup once the gateway adopted its stored kernels: deal with kernel
    containers of this gateway id that it does not know, per ``orphans_at_startup``."""
    policy = settings().orphans_at_startup
    if policy == "ignore":
        return
    known = set(known_kernel_ids)
    docker = client_for(settings().docker_host)
    try:
        orphans = await _orphans.find_orphans(docker, known, settings().gateway_id)
        if orphans and policy == "remove":
            orphans = await _orphans.remove_resources(docker, orphans)
    except DockerError as exc:
        log.warning("Docker engine %s not reachable at startup: %s", settings().docker_host, exc)
        return
    for orphan in orphans:
        log.warning(
            "%s kernel %s %s %s (%s) of gateway %r, unknown to this gateway",
            "Removed" if policy == "remove" else "Found", orphan.kind, orphan.name, orphan.id[:12],
            orphan.state, settings().gateway_id,
        )


@hookimpl
async def eg_shutdown():
    await close_clients()


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


@hookimpl
def eg_pool_fit(kernel, request):
    return pool_misfit(kernel, request)


@hookimpl
async def eg_doctor(kernels):
    """Each Docker kernelspec's engine answers and has its image."""
    from . import _doctor

    return await _doctor.checks(kernels)
