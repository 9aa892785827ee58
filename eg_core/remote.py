"""What remote resource managers (SSH, Docker, Kubernetes, YARN) call: the response address,
the launcher's callback, and the launcher's comm port.

A remote kernel is started by the launcher (``kernelspecs/launcher/launch_ipykernel.py``), which
calls back to the gateway's response address with the kernel's connection info, then listens on
a comm port for signals and shutdown. A resource manager uses it like this::

    @hookimpl
    async def eg_launch_process(kernel, cmd):
        launch_key = await remote.expect_callback(kernel)   # before anything starts
        key_file = await remote.write_key_file(kernel, launch_key, <dir the launcher sees>)
        env = remote.launcher_env(kernel, launch_key, key_file=key_file)
        ... start cmd remotely with env (the key is in no environment, job or command line) ...

    @hookimpl
    async def eg_confirm_startup(kernel):
        await remote.wait_for_callback(kernel, host=<address the gateway dials>, exited=<awaitable>)

    @hookimpl
    async def eg_send_signal(kernel, signum):
        await remote.send_signal(kernel, signum, fallback=<signal it through the backend>)

    @hookimpl
    async def eg_terminate(kernel):
        await remote.terminate(kernel, fallback=<signal it through the backend>)

The launch key must reach the launcher where no other user can read it: schedulers and APIs show
a job's environment to everyone (``qstat -j``, ``scontrol show job``, a YARN application's launch
context, ``docker inspect``, a pod spec). So :func:`launcher_env` never puts the key itself in
the environment unless asked (``key_in_env``, for an environment only the kernel's user sees);
it names how the launcher finds it instead: a file readable by its owner only
(:func:`write_key_file` on a filesystem the launcher sees, or one the resource manager puts in
place itself, e.g. in a container), which the launcher removes once read; or the launcher's stdin
(:func:`key_line`). A Kubernetes Secret referenced by the pod is the third way (eg-k8s).

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
import os
import re
import signal as signals
import tempfile
from collections.abc import Iterable
from typing import Any, Awaitable, Callable

from ._runtime import launcher_comm
from ._runtime.context import KernelContext
from .kernelspecs.launcher.launch_ipykernel import (
    LAUNCH_KEY_ENV, LAUNCH_KEY_FILE_ENV, LAUNCH_KEY_STDIN_ENV, LEASE_ENV,
)
from ._runtime.launcher_comm import LauncherRequestRejected
from ._runtime.errors import BadRequest, LaunchFailed, LaunchRefused
from ._runtime.callback_listener import ResponseListener

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

    Returns the launch key the launcher needs (deliver it as :func:`launcher_env` says: a key
    file or stdin, never an environment or a command line others can see), or ``None`` with
    ``legacy`` (Enterprise Gateway's launchers, which encrypt with ``{public_key}`` instead).
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
    await discard_key_file(kernel)  # the launcher has read it (and removed it, where it could)
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


def launcher_env(
    kernel: KernelContext, launch_key: str | None, *,
    key_file: str | None = None, key_on_stdin: bool = False, key_in_env: bool = False,
) -> dict[str, str]:
    """The launcher's environment; called by a resource manager's ``eg_launch_process``.

    Returns the kernel's environment (``kernel.env``), ``EG_LAUNCHER_LEASE=1`` when the kernel
    must end with this gateway, and, when there is a launch key (from :func:`expect_callback`),
    how the launcher finds it. Choose one:

    - ``key_file``: the path where the launcher finds the key (from :func:`write_key_file`, or a
      file the resource manager put in place, mode 0600/0400, owned by the kernel's user); sets
      ``EG_LAUNCH_KEY_FILE``. The launcher refuses a file others may read and removes it once read.
    - ``key_on_stdin``: the resource manager writes :func:`key_line` to the launcher's stdin;
      sets ``EG_LAUNCH_KEY_STDIN=1``.
    - ``key_in_env``: ``EG_LAUNCH_KEY`` holds the key itself. Only for an environment no other
      user can see (a child process of the gateway on its own host); never for a job, a
      container, an application or a pod spec, whose environment the backend shows to others.

    A launch key with none of these raises ``ValueError`` (the launcher could not call back).
    Deliver the environment as one (a container's, a job's, over an SSH channel), never on a
    command line.
    """
    env = dict(kernel.env)
    for name in (LAUNCH_KEY_ENV, LAUNCH_KEY_FILE_ENV, LAUNCH_KEY_STDIN_ENV):
        env.pop(name, None)  # only the gateway says how the launcher finds its key
    if not launch_key:
        return env
    if key_file:
        env[LAUNCH_KEY_FILE_ENV] = key_file
    elif key_on_stdin:
        env[LAUNCH_KEY_STDIN_ENV] = "1"
    elif key_in_env:
        env[LAUNCH_KEY_ENV] = launch_key
    else:
        raise ValueError("launcher_env: say how the launcher gets its key (key_file=, key_on_stdin= or key_in_env=)")
    if not kernel.survives_gateway:  # see _leased
        env[LEASE_ENV] = "1"
    return env


def key_line(launch_key: str) -> bytes:
    """What to write to the launcher's stdin with ``launcher_env(..., key_on_stdin=True)``: the
    key and a newline (then close stdin, or leave it: the launcher reads one line)."""
    return launch_key.encode("ascii") + b"\n"


async def write_key_file(
    kernel: KernelContext, launch_key: str, directory: str | None = None, *,
    uid: int | None = None, gid: int | None = None,
) -> str:
    """Write the launch key to a new file only its owner can read; called by ``eg_launch_process``
    when the launcher runs where it sees this host's files (this host, a shared filesystem).

    The file is made in ``directory`` (default: the system's temporary directory) with mode 0600,
    and handed to ``uid``/``gid`` when given (a gateway running as root that starts kernels as
    other users; the file must belong to the user the launcher runs as). Its path is recorded in
    ``kernel.state["launch_key_file"]``: the launcher removes the file once read, and the core
    removes it, if still there, once the launcher called back or the kernel is cleaned up.
    Returns the path, for ``launcher_env(..., key_file=path)``. Runs in a thread.
    """
    def write() -> str:
        fd, path = tempfile.mkstemp(prefix=f"eg-key-{kernel.kernel_id}-", suffix=".key", dir=directory)
        try:
            if uid is not None or gid is not None:
                os.fchown(fd, -1 if uid is None else uid, -1 if gid is None else gid)
            os.write(fd, launch_key.encode("ascii"))
        except BaseException:
            os.close(fd)
            os.unlink(path)
            raise
        os.close(fd)
        return path

    path = await asyncio.to_thread(write)
    kernel.state["launch_key_file"] = path
    return path


async def discard_key_file(kernel: KernelContext) -> None:
    """Remove the key file :func:`write_key_file` made, if still there. The core calls it once the
    launcher called back and when the kernel is cleaned up; a resource manager need not."""
    path = kernel.state.pop("launch_key_file", None)
    if path:
        try:
            await asyncio.to_thread(os.unlink, path)
        except FileNotFoundError:
            pass
        except OSError as exc:
            kernel.log.warning("cannot remove the launch key file %s: %s", path, exc.strerror)


async def send_signal(kernel: KernelContext, signum: int, fallback: Fallback | None = None) -> None:
    """Send ``signum`` to the kernel: the one policy for every remote resource manager.

    Through the launcher's comm port when the launcher reported one. A refused connection means
    the launcher, and the kernel with it, is gone: nothing more to do. Any other failure (a
    timeout, a network error, a refused request) is logged and ``fallback(kernel, signum)``
    (the backend's own way: ``kill`` over SSH, the engine's kill, ``scancel --signal``) is
    tried; so is it when there is no comm port (an Enterprise Gateway launcher that never
    called back, a launch that failed early). Except an interrupt that timed out: the launcher
    may have delivered it, and a second SIGINT would stop the user's next cell.
    """
    if has_comm_port(kernel):
        try:
            await signal(kernel, signum)
            return
        except ConnectionRefusedError:
            return
        except asyncio.TimeoutError:
            if signum == signals.SIGINT:
                kernel.log.warning("the launcher did not answer the interrupt in time; it may have delivered it, "
                                   "so it is not sent again through the backend")
                return
            if fallback is None:
                raise
            kernel.log.warning("signal %s through the launcher's comm port timed out; using the backend", signum)
        except (OSError, LauncherRequestRejected, ValueError) as exc:
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


def awaiting_callback(kernel: KernelContext) -> bool:
    """True while the kernel's launch still awaits the launcher's callback: one is expected
    (:func:`expect_callback` ran) and no connection info has arrived. A resource manager's
    ``eg_describe_exit`` calls it to decide whether to add :func:`diagnose` (what the response
    listener saw) to its account of a launch that failed; False once the callback came, and
    after :func:`forget`."""
    future = kernel.handles.get("callback")
    if future is None:
        return False
    return not future.done() or future.cancelled() or future.exception() is not None


_USER_NAME = re.compile(r"[a-z_][a-z0-9_.-]{0,31}\Z")


def requested_user(kernel: KernelContext, *, enabled: bool, prohibited: Iterable[str], setting: str) -> str | None:
    """The user a kernel runs as with impersonation ("run as the request's user"), checked at
    each launch (``eg_launch_process``, and ``eg_pool_fit`` for a pooled kernel).

    Returns None when the kernel runs as the resource manager's own user: impersonation is off
    (``enabled`` False), or no request named a user (``kernel.user_from_request`` False: the
    core's fallback, the gateway's own OS user, is no request). Otherwise returns the requested
    name. Raises :class:`eg_core.BadRequest` (400) for a name that is not a valid user name and
    :class:`eg_core.LaunchRefused` (403) for one in ``prohibited`` (``setting`` names that list).

    The rule: ``kernel.user`` is authoritative, ``kernel.env["KERNEL_USERNAME"]`` only a copy.
    The core sets ``kernel.user`` from the request (with per-user tokens and ``bind_username``, the
    token's user) and then copies it
    into the environment; a hook may change the environment, never who the kernel is for. The
    environment's value is read only when ``kernel.user`` is empty.
    """
    requested = kernel.user or kernel.env.get("KERNEL_USERNAME")
    if not enabled or not requested or not kernel.user_from_request:
        return None
    if not _USER_NAME.match(requested):
        raise BadRequest(
            "KERNEL_USERNAME must be a valid user name (lower-case letters, digits, '_', '.', '-'; "
            "at most 32 characters) to run a kernel as that user"
        )
    if requested in prohibited:
        raise LaunchRefused(f"kernels may not run as user {requested!r} ({setting})")
    return requested
