"""What remote resource managers (SSH, Docker, Kubernetes, YARN) call: the response address,
the launcher's callback, and the launcher's comm port.

A remote kernel is started by the launcher (``kernelspecs/launcher/launch_ipykernel.py``), which
calls back to the gateway's response address with the kernel's connection info, then listens on
a comm port for signals and shutdown. A resource manager uses it like this::

    @hookimpl
    async def eg_launch_process(kernel, cmd):
        launch_key = await remote.expect_callback(kernel)   # before anything starts
        ... start cmd remotely, giving it EG_LAUNCH_KEY=launch_key (not on a command line) ...

    @hookimpl
    async def eg_confirm_startup(kernel):
        await remote.wait_for_callback(kernel, host=<address the gateway dials>, exited=<awaitable>)

    @hookimpl
    async def eg_send_signal(kernel, signum):
        await remote.send_signal(kernel, signum, fallback=<signal it through the backend>)

    @hookimpl
    async def eg_terminate(kernel):
        await remote.terminate(kernel, fallback=<signal it through the backend>)

The kernelspec's argv gets ``{response_address}``, ``{public_key}``, ``{port_range}`` and
``{kernel_id}`` filled by the core. Enterprise Gateway launchers (payload version 1) work too:
call ``expect_callback(kernel, legacy=True)``.

Without a session store (``kernel.survives_gateway`` False) no later gateway would adopt or
remove a remote kernel, so it ends with this gateway process instead: :func:`launcher_env` starts
the launcher with ``EG_LAUNCHER_LEASE=1`` and :func:`wait_for_callback` holds one connection to
its comm port (the lease; one descriptor per kernel, no task), which the core closes once the
kernel is cleaned up (:func:`release_lease`). When this process dies, however, its sockets close
and the launcher stops the kernel.
"""

from __future__ import annotations

import asyncio
import logging
import signal as signals
from typing import Any, Awaitable, Callable

from . import launcher_comm
from .context import KernelContext
from .kernelspecs.launcher.launch_ipykernel import LEASE_ENV
from .launcher_comm import LauncherRequestRejected
from .errors import BadRequest, LaunchFailed
from .response import ResponseListener

_listener: ResponseListener | None = None
log = logging.getLogger("eg")
Fallback = Callable[[KernelContext, int], Awaitable[Any]]


def launcher_path() -> str:
    """The path of eg's kernel launcher (``launch_ipykernel.py``, standard library only): copy it
    to where the kernel runs (a remote host, an image) or run it from here."""
    from .kernelspecs.launcher import launch_ipykernel

    return str(launch_ipykernel.__file__)
_starting: asyncio.Lock | None = None


async def start_listener(parent: Any = None) -> ResponseListener:
    """The process's response listener, started on first use (the gateway starts it at startup
    when a remote resource manager is installed, with its config as ``parent``)."""
    global _listener, _starting
    if _listener is not None:
        return _listener
    if _starting is None:
        _starting = asyncio.Lock()
    async with _starting:
        if _listener is None:
            listener = ResponseListener(parent=parent)
            await listener.start()
            _listener = listener
    return _listener


async def stop_listener() -> None:
    global _listener
    if _listener is not None:
        await _listener.stop()
        _listener = None


def substitutions() -> dict[str, str]:
    """``{response_address}`` and ``{public_key}`` for kernelspec argv, once the listener runs."""
    if _listener is None:
        return {}
    return {"response_address": _listener.address, "public_key": _listener.public_key}


def legacy_launcher(kernel: KernelContext) -> bool:
    """Whether the kernel's launcher is Enterprise Gateway's (it sends the version-1 payload and
    takes no launch key): the kernelspec's ``config.legacy_launcher`` when set, else true for an
    Enterprise Gateway kernelspec (``metadata.process_proxy``), whose images (elyra/kernel-py
    and the like) carry EG's launchers. A resource manager calls it at launch, before
    :func:`expect_callback`; a value that is not true or false raises :class:`eg_core.BadRequest`.
    """
    value = kernel.config.get("legacy_launcher")
    if value is None or value == "":
        return "process_proxy" in (kernel.spec.get("metadata") or {})
    if isinstance(value, bool):
        return value
    if isinstance(value, str) and value.strip().lower() in ("true", "false"):
        return value.strip().lower() == "true"
    raise BadRequest(f"kernelspec {kernel.kernel_name!r}: config.legacy_launcher must be true or false, not {value!r}")


async def expect_callback(kernel: KernelContext, *, legacy: bool = False) -> str | None:
    """Register the kernel with the response listener; call it before the launcher can start.

    Returns the launch key the launcher needs in its environment as ``EG_LAUNCH_KEY`` (deliver
    it through the environment or stdin, never on a command line), or ``None`` with ``legacy``
    (Enterprise Gateway's launchers, which encrypt with ``{public_key}`` instead).
    """
    listener = await start_listener()
    key = None if legacy else listener.new_launch_key()
    kernel.handles["callback"] = listener.expect(kernel.kernel_id, key)
    kernel.state["launch_key"] = key
    return key


async def wait_for_callback(
    kernel: KernelContext, *, host: str | None = None, exited: Awaitable[Any] | None = None
) -> dict[str, Any]:
    """Wait for the launcher's connection info and store it in the kernel's context.

    ``host`` replaces the ``ip`` the launcher reported (the address this gateway dials).
    ``exited`` (e.g. the remote command or the container ending) fails the launch as soon as it
    completes first; its result (text) goes into the error. Returns the connection info.
    """
    future: asyncio.Future = kernel.handles["callback"]
    waiters = {asyncio.ensure_future(future)}
    exit_task = asyncio.ensure_future(exited) if exited is not None else None
    if exit_task:
        waiters.add(exit_task)
    try:
        done, _ = await asyncio.wait(waiters, return_when=asyncio.FIRST_COMPLETED)
    finally:
        if exit_task:
            exit_task.cancel()
    if not future.done():
        why = exit_task.result() if exit_task in done and not exit_task.cancelled() and exit_task.exception() is None else None
        raise LaunchFailed("confirm_startup", f"the kernel launcher ended before calling back{': ' + str(why) if why else ''}")
    info = dict(future.result())
    comm_ip = host or info.get("ip")
    kernel.state.update(
        comm_ip=comm_ip,
        comm_port=info.pop("comm_port", 0),
        remote_pid=info.pop("pid", None),
        remote_pgid=info.pop("pgid", None),
    )
    info.pop("kernel_id", None)
    if host:
        info["ip"] = host
    kernel.connection_info = info
    if _leased(kernel) and kernel.state["comm_port"]:
        await _take_lease(kernel)
    return info


def _leased(kernel: KernelContext) -> bool:
    """Whether the kernel must end with this gateway process: no session store records it (a
    later gateway would neither adopt nor remove it) and our launcher runs it (a launch key)."""
    return not kernel.survives_gateway and bool(kernel.state.get("launch_key"))


async def _take_lease(kernel: KernelContext) -> None:
    release_lease(kernel)
    host, port, key = _comm(kernel)
    try:
        kernel.handles["lease"] = await launcher_comm.hold_lease(host, port, key)
    except (OSError, asyncio.TimeoutError, LauncherRequestRejected, ValueError) as exc:
        kernel.log.warning("could not take the launcher's lease (%s): the launcher stops the kernel unless a lease comes within 60 s", exc)


def release_lease(kernel: KernelContext) -> None:
    """Close the kernel's lease connection, if it has one (the launcher then stops the kernel
    unless it was asked to shut down). The core calls it once the kernel is cleaned up."""
    lease = kernel.handles.pop("lease", None)
    if lease is not None:
        lease.close()


def diagnose(kernel: KernelContext) -> str:
    """What the response listener saw of this kernel's launcher (for launch errors)."""
    return _listener.diagnose(kernel.kernel_id) if _listener else "the response listener is not running"


def forget(kernel: KernelContext) -> None:
    """Stop waiting for this kernel's callback. The core calls it after ``eg_cleanup`` (every
    shutdown, relaunch and failed launch); a resource manager needs it only to give up earlier."""
    kernel.handles.pop("callback", None)
    if _listener is not None:
        _listener.forget(kernel.kernel_id)


def _comm(kernel: KernelContext) -> tuple[str, int, str | None]:
    return kernel.state.get("comm_ip") or "", int(kernel.state.get("comm_port") or 0), kernel.state.get("launch_key")


def has_comm_port(kernel: KernelContext) -> bool:
    return bool(_comm(kernel)[1])


async def signal(kernel: KernelContext, signum: int) -> None:
    """Send ``signum`` to the kernel through its launcher's comm port."""
    host, port, key = _comm(kernel)
    await launcher_comm.signal(host, port, signum, key)


async def shutdown_launcher(kernel: KernelContext) -> None:
    """Ask the launcher to stop the kernel and exit; a launcher already gone is fine."""
    host, port, key = _comm(kernel)
    if port:
        try:
            await launcher_comm.shutdown(host, port, key)
        except (OSError, asyncio.TimeoutError):
            pass


async def is_alive(kernel: KernelContext) -> bool:
    """Whether the launcher answers on its comm port (refused means the kernel is gone)."""
    host, port, key = _comm(kernel)
    return bool(port) and await launcher_comm.is_alive(host, port, key)


def launcher_env(kernel: KernelContext, launch_key: str | None) -> dict[str, str]:
    """The launcher's environment: the kernel's (``kernel.env``) plus ``EG_LAUNCH_KEY`` when
    there is a launch key (from :func:`expect_callback`). Deliver it as an environment (a
    container's, a job's, over an SSH channel), never on a command line."""
    env = dict(kernel.env)
    if launch_key:
        env["EG_LAUNCH_KEY"] = launch_key
        if not kernel.survives_gateway:  # see _leased
            env[LEASE_ENV] = "1"
    return env


async def send_signal(kernel: KernelContext, signum: int, fallback: Fallback | None = None) -> None:
    """Send ``signum`` to the kernel: the one policy for every remote resource manager.

    Through the launcher's comm port when the launcher reported one. A refused connection means
    the launcher, and the kernel with it, is gone: nothing more to do. Any other failure (a
    timeout, a network error, a refused request) is logged and ``fallback(kernel, signum)``
    (the backend's own way: ``kill`` over SSH, the engine's kill, ``scancel --signal``) is
    tried; so is it when there is no comm port (an Enterprise Gateway launcher that never
    called back, a launch that failed early).
    """
    if has_comm_port(kernel):
        try:
            await signal(kernel, signum)
            return
        except ConnectionRefusedError:
            return
        except (OSError, asyncio.TimeoutError, LauncherRequestRejected, ValueError) as exc:
            if fallback is None:
                raise
            kernel.log.warning("signal %s through the launcher's comm port failed (%s); using the backend", signum, exc)
    if fallback is not None:
        await fallback(kernel, signum)


async def terminate(kernel: KernelContext, fallback: Fallback | None = None) -> None:
    """Ask the kernel to stop: the launcher's shutdown request through its comm port, else
    ``fallback(kernel, SIGTERM)``."""
    if has_comm_port(kernel):
        await shutdown_launcher(kernel)
    elif fallback is not None:
        await fallback(kernel, signals.SIGTERM)
