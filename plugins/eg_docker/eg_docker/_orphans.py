"""Kernel containers, services and launch-key secrets that no gateway knows any more, found by
their labels.

A kernel's container carries ``component=kernel``, ``app=enterprise-gateway``,
``kernel_id=<id>`` and ``eg.gateway=<gateway_id>``. Those of a ``gateway_id`` whose kernel id
the gateway does not know are orphans: left by a gateway that was killed, or by a failed cleanup.

Called at gateway startup (``eg_reconcile``, per ``DockerSettings.orphans_at_startup``), by the
``eg-docker-orphans`` command, and by :func:`eg_docker.remove_orphans` from any code that knows
the live kernel ids (a reconciler, the HA layer).
"""

from __future__ import annotations

from typing import Iterable

from eg_core.orphans import Resource, unknown

from ._client import DockerClient, DockerError
from ._settings import APP, COMPONENT, LABEL_APP, LABEL_COMPONENT, LABEL_GATEWAY, LABEL_KERNEL_ID


KernelResource = Resource  # the core's description of one kernel resource


def _labels(gateway_id: str | None) -> dict[str, str | None]:
    labels: dict[str, str | None] = {LABEL_COMPONENT: COMPONENT, LABEL_APP: APP, LABEL_KERNEL_ID: None}
    if gateway_id:
        labels[LABEL_GATEWAY] = gateway_id
    return labels


async def kernel_resources(docker: DockerClient, gateway_id: str | None) -> list[KernelResource]:
    """Every kernel container and service of ``gateway_id`` (all gateways' when None)."""
    labels = _labels(gateway_id)
    found = [
        KernelResource("container", c["Id"], (c.get("Names") or ["?"])[0].lstrip("/"), c["Labels"][LABEL_KERNEL_ID], c.get("State", ""))
        for c in await docker.containers(labels)
        if "com.docker.swarm.service.id" not in c["Labels"]  # a service's task: the service is listed
    ]
    try:
        services = await docker.services(labels)
        secrets = await docker.secrets(labels)  # a service's launch key (listed after it: removed after it)
    except DockerError as exc:
        if exc.status != 503:  # 503: the engine is not a swarm manager, so it has no services
            raise
        services, secrets = [], []
    found += [
        KernelResource(kind, s["ID"], s["Spec"]["Name"], s["Spec"]["Labels"][LABEL_KERNEL_ID], kind)
        for kind, listing in (("service", services), ("secret", secrets)) for s in listing
    ]
    return found


async def find_orphans(docker: DockerClient, known_kernel_ids: Iterable[str], gateway_id: str | None) -> list[KernelResource]:
    return unknown(await kernel_resources(docker, gateway_id), known_kernel_ids)


async def remove(docker: DockerClient, resource: KernelResource) -> bool:
    """Remove one container (forced), service or secret; whether it was there."""
    if resource.kind == "container":
        return await docker.container_remove(resource.id)
    if resource.kind == "secret":
        return await docker.secret_remove(resource.id)
    return await docker.service_remove(resource.id)


async def remove_resources(docker: DockerClient, resources: Iterable[KernelResource]) -> list[KernelResource]:
    """Remove containers (forced), services and secrets, in that order; returns those removed."""
    return [resource for resource in resources if await remove(docker, resource)]
