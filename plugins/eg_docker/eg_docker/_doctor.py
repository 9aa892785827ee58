"""``eg-gateway doctor`` for Docker: each Docker kernelspec's engine answers and has its image."""

from __future__ import annotations

from eg_core.doctor import Check, each_kernelspec

from ._client import DockerError, client_for, close_clients
from ._settings import resolve, settings


async def checks(kernels) -> list[Check]:
    found: list[Check] = []
    engines: dict[str, str | None] = {}  # docker_host -> why it does not answer (None: it does)
    try:
        for _, what, kc in each_kernelspec(kernels, lambda kernel: resolve(kernel, settings()), found):
            docker = client_for(kc.docker_host)
            if kc.docker_host not in engines:
                try:
                    version = await docker.version()
                    engines[kc.docker_host] = None
                    found.append(Check(f"engine {kc.docker_host}", True, f"Docker {version.get('Version', '?')} answers"))
                except (DockerError, OSError) as exc:
                    engines[kc.docker_host] = str(exc)
                    found.append(Check(f"engine {kc.docker_host}", False, str(exc), "start the Docker engine, or set DockerSettings.docker_host (DOCKER_HOST) to one that runs"))
            if engines[kc.docker_host] is not None:
                continue
            present = await docker.image_inspect(kc.image) is not None
            detail = f"image {kc.image} is {'present' if present else 'not on the engine'}"
            found.append(Check(what, present, detail, f"docker pull {kc.image} (or build it) on that engine; otherwise the first launch pulls it, if a registry is reachable"))
    finally:
        await close_clients()
    return found
