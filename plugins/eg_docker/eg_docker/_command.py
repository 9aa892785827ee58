"""The command and environment a kernel's container runs with.

Two kinds of kernelspec reach this resource manager:

- ours (``python_docker``): ``argv`` is the command run *inside* the container (the launcher,
  with ``{response_address}``, ``{port_range}``, ``{kernel_id}``, ``{kernel_bind_ip}`` filled);
- Enterprise Gateway's (``DockerProcessProxy`` / ``DockerSwarmProcessProxy``): ``argv`` runs
  ``launch_docker.py`` on the gateway host, which is not needed here. The container runs its
  image's default command instead (EG images start ``bootstrap-kernel.sh``), with the launch
  parameters in the environment as ``launch_docker.py`` would have put them
  (``RESPONSE_ADDRESS``, ``PUBLIC_KEY``, ``PORT_RANGE``, ``KERNEL_ID``...).

The per-kernel launch key goes into the container's environment as ``EG_LAUNCH_KEY``, never
onto a command line.
"""

from __future__ import annotations

from eg_core import KernelContext, containers, remote

from ._settings import KernelContainer

uses_image_command = containers.uses_image_command


def container_command(kernel: KernelContext, kc: KernelContainer, cmd: list[str]) -> list[str] | None:
    """The container's command (None: the image's default); see :mod:`eg_core.containers`."""
    return containers.container_command(kernel, cmd, kc.bind_ip)


def container_env(
    kernel: KernelContext, kc: KernelContainer, cmd: list[str], launch_key: str | None
) -> dict[str, str]:
    """The container's environment (:func:`eg_core.containers.container_env`) with what
    Enterprise Gateway's Docker launcher adds, the working directory and the launch key."""
    extra = {"KERNEL_IMAGE": kc.image, "KERNEL_UID": str(kc.uid), "KERNEL_GID": str(kc.gid), "EG_DOCKER_MODE": kc.mode}
    env = containers.container_env(kernel, cmd, kc.bind_ip, {**remote.launcher_env(kernel, launch_key), **extra})
    if kc.working_dir:
        env["KERNEL_WORKING_DIR"] = kc.working_dir
    else:
        env.pop("KERNEL_WORKING_DIR", None)
    return env


def env_list(env: dict[str, str]) -> list[str]:
    return [f"{k}={v}" for k, v in env.items()]
