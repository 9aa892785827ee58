"""One kernel's life on Docker, whichever the mode: one function per resource-manager hook, named
as the hook without ``eg_`` (:func:`eg_core.hooks_from` makes them :mod:`eg_docker.plugin`'s hooks). Mode-specific work is in :mod:`._containers` (``docker run``) and :mod:`._services`
(Swarm); the kernel's mode is in ``kernel.state["mode"]``.
"""

from __future__ import annotations

import asyncio
import signal as signals
import time
from types import ModuleType

from eg_core import KernelContext, remote

from . import _containers, _services
from ._client import DockerError, client_for
from ._command import container_command, container_env, env_list
from ._settings import resolve, settings


def backend(kernel: KernelContext) -> ModuleType:
    return _services if kernel.state.get("mode") == "swarm" else _containers


async def launch_process(kernel: KernelContext, cmd: list[str]) -> None:
    """Check every setting (400/403 before anything exists), have the image, register for the
    launcher's callback, then create and start the container or service."""
    start = time.monotonic()
    kc = resolve(kernel)
    kernel.state.update(
        mode=kc.mode, docker_host=kc.docker_host, name=kc.name, image=kc.image, host=kc.host,
        remove=kc.remove, log_tail_lines=kc.log_tail_lines, confirmed=False,
        task_poll_interval=settings().task_poll_interval,
    )
    kernel.handles["docker_settings"] = kc
    await kernel.checkpoint()  # the name is recorded: a crash from here on leaves nothing unknown
    docker = client_for(kc.docker_host)
    await _containers.check_network(docker, kc)
    await _containers.ensure_image(docker, kc, timeout=max(kernel.launch_timeout, 1.0), kernel=kernel)
    launch_key = await remote.expect_callback(kernel, legacy=kc.legacy_launcher)
    command = container_command(kernel, kc, cmd)
    env = env_list(container_env(kernel, kc, cmd, launch_key))
    await backend(kernel).create_and_start(kernel, kc, command, env, launch_key)
    kernel.log.info(
        "started %s %s from image %s in %.3fs", "service" if kc.mode == "swarm" else "container",
        kc.name, kc.image, time.monotonic() - start,
    )


async def confirm_startup(kernel: KernelContext) -> None:
    """Wait for the launcher's callback; the container (or task) ending first fails the launch."""
    kc = kernel.handles.get("docker_settings")
    b = backend(kernel)
    host = kernel.state.get("host") or None
    await remote.wait_for_callback(kernel, host=host, exited=b.exited(kernel))
    if host is None and kc is not None and kc.mode == "swarm":
        address = await _services.address(kernel, kc)
        if address:
            kernel.connection_info["ip"] = address
            kernel.state["comm_ip"] = address
    kernel.state["confirmed"] = True
    remote.forget(kernel)


async def poll(kernel: KernelContext) -> int | None:
    try:
        return await backend(kernel).poll(kernel)
    except DockerError as exc:
        kernel.log.warning("cannot poll: %s", exc)
        return None  # the engine is unreachable: that says nothing about the kernel


async def wait(kernel: KernelContext) -> int:
    while True:
        try:
            return await backend(kernel).wait(kernel)
        except DockerError as exc:  # engine restarting or unreachable: retry, do not call it dead
            kernel.log.warning("waiting on the kernel's container failed (%s); retrying", exc)
            await asyncio.sleep(2.0)


async def signal_container(kernel: KernelContext, signum: int) -> None:
    """The backend's way to signal the kernel: the engine's kill of the container (or task)."""
    if signum:
        await backend(kernel).signal(kernel, signals.Signals(signum).name)


async def send_signal(kernel: KernelContext, signum: int) -> None:
    """Through the launcher's comm port (interrupts reach the kernel's process group), else
    through the engine (:func:`eg_core.remote.send_signal`'s policy)."""
    await remote.send_signal(kernel, signum, fallback=signal_container)


async def terminate(kernel: KernelContext) -> None:
    await remote.terminate(kernel, fallback=signal_container)


async def kill(kernel: KernelContext) -> None:
    await backend(kernel).kill(kernel)


async def cleanup(kernel: KernelContext, restart: bool) -> None:
    """Remove the container or service (kept stopped only after a normal shutdown with
    ``remove_containers`` off)."""
    kernel.handles.pop("docker_settings", None)
    if restart or kernel.state.get("remove", True) or not kernel.state.get("confirmed"):
        await backend(kernel).remove(kernel)


async def describe_exit(kernel: KernelContext) -> str | None:
    text = await backend(kernel).describe(kernel)
    if remote.awaiting_callback(kernel):
        text = f"{text}\n{remote.diagnose(kernel)}" if text else remote.diagnose(kernel)
    return text


async def backend_log(kernel: KernelContext, lines: int) -> list[str] | None:
    """``eg_backend_log``: the container's (or the swarm service's) last log lines."""
    return await backend(kernel).log_tail(kernel, lines)


async def load_process_info(kernel: KernelContext, info: dict) -> None:
    """Re-attach to a kernel launched by an earlier gateway process, from its saved state."""
    kernel.state = dict(info)
    kernel.handles.clear()
    if not await backend(kernel).reattach(kernel):
        kernel.log.warning("its %s is gone; it will be reported dead", "service" if kernel.state.get("mode") == "swarm" else "container")
