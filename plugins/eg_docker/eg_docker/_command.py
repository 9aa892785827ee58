"""The command and environment a kernel's container runs with.

Two kinds of kernelspec reach this resource manager:

- ours (``python_docker``): ``argv`` is the command run *inside* the container (the launcher,
  with ``{response_address}``, ``{port_range}``, ``{kernel_id}``, ``{kernel_bind_ip}`` filled);
- Enterprise Gateway's (``DockerProcessProxy`` / ``DockerSwarmProcessProxy``): ``argv`` runs
  ``launch_docker.py`` on the gateway host, which is not needed here. The container runs its
  image's default command instead (EG images start ``bootstrap-kernel.sh``), with the launch
  parameters in the environment as ``launch_docker.py`` would have put them
  (``RESPONSE_ADDRESS``, ``PUBLIC_KEY``, ``PORT_RANGE``, ``KERNEL_ID``...).

The per-kernel launch key is in neither the container's environment nor its command (``docker
inspect`` shows both to anyone who may use the engine): a container gets it as a file copied in
before it starts (:data:`KEY_FILE`, mode 0400, owned by the container's user, removed by the
launcher once read), a Swarm service as a Docker secret (:data:`SECRET_FILE`). The environment
names the file (``EG_LAUNCH_KEY_FILE``).
"""

from __future__ import annotations

from eg_core import KernelContext, containers, remote

from ._settings import KernelContainer

uses_image_command = containers.uses_image_command
KEY_DIR = "/tmp"  # sticky and world-writable in images: the container's user may remove its own file
KEY_NAME = "eg-launch.key"
KEY_FILE = f"{KEY_DIR}/{KEY_NAME}"
SECRET_FILE = "/run/secrets/eg-launch-key"


def container_command(kernel: KernelContext, kc: KernelContainer, cmd: list[str]) -> list[str] | None:
    """The container's command (None: the image's default); see :mod:`eg_core.containers`."""
    return containers.container_command(kernel, cmd, kc.bind_ip)


def container_env(
    kernel: KernelContext, kc: KernelContainer, cmd: list[str], launch_key: str | None
) -> dict[str, str]:
    """The container's environment (:func:`eg_core.containers.container_env`) with what
    Enterprise Gateway's Docker launcher adds, the working directory and where the launch key
    is (:data:`SECRET_FILE` in swarm mode, else :data:`KEY_FILE`)."""
    extra = {"KERNEL_IMAGE": kc.image, "KERNEL_UID": str(kc.uid), "KERNEL_GID": str(kc.gid), "EG_DOCKER_MODE": kc.mode}
    key_file = SECRET_FILE if kc.mode == "swarm" else KEY_FILE
    env = containers.container_env(kernel, cmd, kc.bind_ip, {**remote.launcher_env(kernel, launch_key, key_file=key_file), **extra})
    if kc.working_dir:
        env["KERNEL_WORKING_DIR"] = kc.working_dir
    else:
        env.pop("KERNEL_WORKING_DIR", None)
    return env


def env_list(env: dict[str, str]) -> list[str]:
    return [f"{k}={v}" for k, v in env.items()]
