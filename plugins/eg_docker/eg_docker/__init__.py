"""eg-docker: Jupyter kernels in Docker containers or Swarm services, for the eg gateway.

Install it next to eg-core (``pip install ./plugins/eg_docker`` from the eg repository) and use a kernelspec such as::

    {"argv": ["python", "/usr/local/share/eg/launch_ipykernel.py", "--kernel-id", "{kernel_id}",
              "--port-range", "{port_range}", "--response-address", "{response_address}",
              "--public-key", "{public_key}", "--ip", "{kernel_bind_ip}"],
     "metadata": {"kernel_provisioner": {"provisioner_name": "eg-docker",
                                         "config": {"image_name": "eg/kernel-py:local"}}}}

Enterprise Gateway's ``DockerProcessProxy`` and ``DockerSwarmProcessProxy`` kernelspecs work too.
Gateway-wide settings are ``--DockerSettings.*`` (see ``eg-gateway --help-all``). Kernel
containers a gateway no longer knows are listed (and removed) with ``eg-docker-orphans`` or
:func:`remove_orphans`.
"""

from __future__ import annotations

from typing import Iterable

from ._client import DockerClient
from ._orphans import KernelResource, find_orphans, remove_resources
from ._settings import DockerSettings

__version__ = "0.1.0"


async def list_orphans(
    known_kernel_ids: Iterable[str], *, docker_host: str | None = None, gateway_id: str | None = "eg"
) -> list[KernelResource]:
    """Kernel containers/services of ``gateway_id`` whose kernel id is not in ``known_kernel_ids``."""
    docker = DockerClient(docker_host)
    try:
        return await find_orphans(docker, known_kernel_ids, gateway_id)
    finally:
        await docker.aclose()


async def remove_orphans(
    known_kernel_ids: Iterable[str], *, docker_host: str | None = None, gateway_id: str | None = "eg"
) -> list[KernelResource]:
    """Remove the orphans :func:`list_orphans` finds; returns what was removed."""
    docker = DockerClient(docker_host)
    try:
        return await remove_resources(docker, await find_orphans(docker, known_kernel_ids, gateway_id))
    finally:
        await docker.aclose()


__all__ = ["DockerSettings", "KernelResource", "list_orphans", "remove_orphans", "__version__"]
