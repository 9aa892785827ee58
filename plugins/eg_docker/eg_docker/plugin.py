"""The ``docker`` resource manager: each kernel in its own Docker container, or Swarm service.

The resource-manager hooks are :mod:`._lifecycle`'s functions (one kernel's life); the rest of
the work is in :mod:`._containers` / :mod:`._services` (the two modes), :mod:`._settings` (what the container
looks like, and the checks), :mod:`._client` (async Docker Engine API) and :mod:`._orphans`.
"""

from __future__ import annotations

from pathlib import Path

from eg_core import hookimpl, hooks_from, orphans, provisioner_for

from . import _orphans
from ._client import client_for, close_clients, engine_absent
from ._settings import DockerSettings, pool_misfit, requested_resources, resolve, settings

DockerProvisioner = provisioner_for("docker")


# -- registration ----------------------------------------------------------------------------------


@hookimpl
def eg_configurables():
    return [DockerSettings]


@hookimpl
async def eg_reconcile(known_kernel_ids):
    """Called at startup once the gateway adopted its stored kernels: deal with kernel
    containers of this gateway id that it does not know, per ``orphans_at_startup``. With
    plainly no engine (no socket file), that is reported as unreachable without a Docker client."""
    if settings().orphans_at_startup == "ignore":
        return
    absent = engine_absent(settings().docker_host)
    if absent:
        orphans.unreachable("docker", absent)
        return
    docker = client_for(settings().docker_host)
    await orphans.sweep(
        "docker",
        known_kernel_ids,
        lambda: _orphans.kernel_resources(docker, settings().gateway_id),
        lambda resource: _orphans.remove(docker, resource),
        policy=settings().orphans_at_startup,
    )


@hookimpl
def eg_requested_resources(kernel):
    """What the kernel's container will ask of the engine (its kernelspec's settings, the
    request's allowed values over them): for resource quotas."""
    return requested_resources(resolve(kernel))


@hookimpl
def eg_kernelspec_aliases():
    """gateway_provisioners' and Enterprise Gateway's names for this resource manager."""
    return {
        "docker-provisioner": "docker",
        "docker-swarm-provisioner": "docker",
        "DockerProcessProxy": "docker",
        "DockerSwarmProcessProxy": "docker",
    }


@hookimpl
def eg_kernelspec_dirs():
    """The ``python_docker`` kernelspec this package ships."""
    return [str(Path(__file__).parent / "kernelspecs")]


@hookimpl
async def eg_shutdown():
    await close_clients()


# -- resource-manager hooks: eg_<name> for each function <name> of ._lifecycle ---------------------

globals().update(hooks_from("eg_docker._lifecycle"))


@hookimpl
def eg_pool_fit(kernel, request):
    return pool_misfit(kernel, request)


@hookimpl
async def eg_doctor(kernels):
    """Each Docker kernelspec's engine answers and has its image."""
    from . import _doctor

    return await _doctor.checks(kernels)


@hookimpl
def eg_launch_parameters(kernel):
    """What a request may set for this kernelspec's containers (``metadata.parameters``)."""
    from ._parameters import launch_parameters

    return launch_parameters(kernel)
