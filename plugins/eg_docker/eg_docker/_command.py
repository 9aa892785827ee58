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

import os

from eg_core import KernelContext, argv, remote

from ._settings import KernelContainer

_EG_CONTAINER_LAUNCHERS = ("launch_docker.py",)
_PORT_RANGE_FLAGS = ("--port-range", "--RemoteProcessProxy.port-range")


def uses_image_command(kernel: KernelContext, cmd: list[str]) -> bool:
    """True for Enterprise Gateway kernelspecs (their argv launches the container from the
    gateway host), for ``config.use_image_command``, and for an empty argv."""
    if kernel.config.get("use_image_command"):
        return True
    return not cmd or any(os.path.basename(arg) in _EG_CONTAINER_LAUNCHERS for arg in cmd[:3])


def _argument(cmd: list[str], flags: tuple[str, ...]) -> str | None:
    for i, arg in enumerate(cmd):
        for flag in flags:
            if arg == flag and i + 1 < len(cmd):
                return cmd[i + 1]
            if arg.startswith(flag + "="):
                return arg.split("=", 1)[1]
    return None


def container_command(kernel: KernelContext, kc: KernelContainer, cmd: list[str]) -> list[str] | None:
    """The container's command (None: the image's default), with the templates the core could
    not fill before the response listener ran filled now."""
    if uses_image_command(kernel, cmd):
        return None
    values = {"kernel_bind_ip": kc.bind_ip, "kernel_id": kernel.kernel_id, **remote.substitutions()}
    return argv.fill(cmd, values)


def container_env(
    kernel: KernelContext, kc: KernelContainer, cmd: list[str], launch_key: str | None
) -> dict[str, str]:
    """The container's environment: the kernel's (kernelspec env, allowed request values,
    ``KERNEL_*`` set by the core), what Enterprise Gateway's container launcher adds, and the
    launch key."""
    env = remote.launcher_env(kernel, launch_key)
    env.update(
        KERNEL_IMAGE=kc.image,
        KERNEL_UID=str(kc.uid),
        KERNEL_GID=str(kc.gid),
        EG_DOCKER_MODE=kc.mode,
    )
    if kc.working_dir:
        env["KERNEL_WORKING_DIR"] = kc.working_dir
    else:
        env.pop("KERNEL_WORKING_DIR", None)
    if uses_image_command(kernel, cmd):
        substitutions = remote.substitutions()
        env.update(
            RESPONSE_ADDRESS=substitutions.get("response_address", ""),
            PUBLIC_KEY=substitutions.get("public_key", ""),
            PORT_RANGE=_argument(cmd, _PORT_RANGE_FLAGS) or str(kernel.config.get("port_range") or "0..0"),
            KERNEL_ID=kernel.kernel_id,
            KERNEL_IP=kc.bind_ip,
            KERNEL_SPARK_CONTEXT_INIT_MODE=env.get("KERNEL_SPARK_CONTEXT_INIT_MODE", "none"),
        )
        env.setdefault("KERNEL_LANGUAGE", str(kernel.spec.get("language", "python")).lower())
    return env


def env_list(env: dict[str, str]) -> list[str]:
    return [f"{k}={v}" for k, v in env.items()]
