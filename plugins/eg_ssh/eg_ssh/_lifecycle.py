"""The life of an SSH kernel, one function per resource-manager hook (called from :mod:`eg_ssh.plugin`).

``kernel.state`` (persisted) holds ``host`` (the configured entry), ``ip`` (the address the
gateway dials), ``ssh_port``, ``user``, ``pgid`` (the launcher's process group), ``log`` (the
remote log path) and what :mod:`eg_core.remote` records (``comm_ip``, ``comm_port``,
``launch_key``...). ``kernel.handles["ssh_process"]`` is the live :class:`RemoteProcess` while
this gateway process holds the launcher's channel.
"""

from __future__ import annotations

import asyncio
import signal
import time

from eg_core import KernelContext, LaunchFailed, remote

from . import _orphans, _remote, _tunnels
from ._hosts import hosts
from ._remote import RemoteProcess
from ._settings import remote_user, resolve, split_host
from ._settings import target as ssh_target
from ._ssh import HostUnreachable, LoginRejected, SessionRefused, Target, pool

_LIVENESS_INTERVAL = 5.0
_LAUNCH_STATE = ("host", "ip", "ssh_port", "user", "pgid", "log", "comm_ip", "comm_port", "remote_pid", "remote_pgid", "tunnel")
_KILL_WAIT = 10.0


def _process(kernel: KernelContext) -> RemoteProcess | None:
    return kernel.handles.get("ssh_process")


def _target(kernel: KernelContext, settings=None, entry: str | None = None, user: str | None = None) -> Target:
    """The SSH target of host ``entry`` (default: the launched kernel's, from its state, also
    after adoption)."""
    s = settings or resolve(kernel)
    host, port = split_host(entry or kernel.state["host"], s.ssh_port)
    if entry is None:
        port = int(kernel.state["ssh_port"])
    return ssh_target(s, host, port, user or kernel.state["user"])


async def launch_process(kernel: KernelContext, cmd: list[str]) -> None:
    """Pick a host, start the launcher there; see ``eg_launch_process``."""
    settings = resolve(kernel)
    user = remote_user(kernel, settings)
    previous = kernel.state.get("host") if kernel.restarting else None
    for stale in _LAUNCH_STATE:  # a relaunch must not act on the previous launcher
        kernel.state.pop(stale, None)
    candidates = hosts.candidates(
        settings.remote_hosts, settings.load_balancing_algorithm, kernel.env.get("KERNEL_REMOTE_HOST"), previous
    )
    argv, launcher_args = _remote.prepare_argv(cmd, settings.remote_python, settings.replace_eg_launcher)
    launch_key = await remote.expect_callback(kernel, legacy=not launcher_args)
    env = {**remote.launcher_env(kernel, launch_key, key_on_stdin=True), **_orphans.marks()}
    log = _remote.log_path(settings.kernel_log_dir, kernel.kernel_id)
    kernel.handles.pop("ssh_process", None)
    kernel.handles.pop("exit_reported", None)
    failures = []
    for entry in candidates:
        target = _target(kernel, settings, entry, user)
        start = time.monotonic()
        try:
            conn, process = await _start_on(kernel, target, settings, argv, launcher_args, env, log, launch_key)
        except HostUnreachable as exc:
            hosts.mark_down(entry, str(exc), settings.down_host_retry_interval)
            failures.append(f"{entry}: {exc}")
            kernel.log.warning("ssh: skipping host %s: %s", entry, exc)
            continue
        except LoginRejected as exc:
            raise LaunchFailed("launch_process", str(exc)) from None
        except LaunchFailed:
            kernel.handles["exit_reported"] = True  # the error carries the remote output already
            raise
        hosts.mark_up(entry)
        hosts.assign(entry, kernel.kernel_id)
        kernel.state.update(host=entry, ip=conn.peer_ip, ssh_port=target.port, user=user, pgid=process.pid, log=log)
        kernel.log.info(
            "ssh: launcher pid %s started on %s in %.3fs", process.pid, target, time.monotonic() - start
        )
        return
    raise LaunchFailed("launch_process", "no remote host could be reached: " + "; ".join(failures))


async def _start_on(kernel, target, settings, argv, launcher_args, env, log, launch_key):
    """Start the launcher on ``target``; when sshd refuses another session on a pooled
    connection (MaxSessions), retry on another connection."""
    for attempt in range(3):
        conn = await pool.acquire(target, settings.max_sessions_per_connection, settings.connection_idle_timeout)
        try:
            return conn, await _remote.start(
                kernel, conn, argv, launcher_args, settings.launcher_dir, settings.remote_python,
                env, log, settings.keep_kernel_logs, launch_key,
            )
        except SessionRefused as exc:
            kernel.log.info("ssh: %s; using another connection", exc)
            if attempt == 2:
                raise


async def confirm_startup(kernel: KernelContext) -> None:
    """Wait for the launcher's callback, failing as soon as it ends; see ``eg_confirm_startup``."""
    process = _process(kernel)
    try:
        await remote.wait_for_callback(kernel, host=kernel.state["ip"], exited=process.wait() if process else None)
    except LaunchFailed:
        kernel.handles["exit_reported"] = True
        raise
    settings = resolve(kernel)
    if settings.enable_tunneling:
        try:
            await _tunnels.open_tunnels(kernel, _target(kernel, settings), settings.max_sessions_per_connection, settings.connection_idle_timeout)
        except (HostUnreachable, LoginRejected, OSError) as exc:
            raise LaunchFailed("confirm_startup", f"cannot tunnel the kernel's ports through SSH: {exc}") from None


async def poll(kernel: KernelContext) -> int | None:
    """``None`` while the kernel runs: its launcher's channel is open, or (without a channel)
    its comm port answers; see ``eg_poll``."""
    process = _process(kernel)
    if process is not None and (process.running or process.definitive):
        return None if process.running else process.status()
    if not remote.has_comm_port(kernel):
        return process.status() if process is not None else 0
    try:
        return None if await remote.is_alive(kernel) else 0
    except Exception as exc:  # noqa: BLE001 - a network error tells nothing about the kernel
        kernel.log.debug("ssh: liveness check failed: %s", exc)
        return None


async def wait(kernel: KernelContext) -> int:
    """Wait for the launcher's end: the channel's end when this gateway holds it, else (after
    adoption, or when the SSH connection was lost) the comm port's liveness."""
    process = _process(kernel)
    if process is not None:
        await process.wait()
        if process.definitive or not remote.has_comm_port(kernel):
            return process.status()
        kernel.log.warning("ssh: lost the SSH channel of the launcher on %s; watching its comm port", process.conn.target)
    while (status := await poll(kernel)) is None:
        await asyncio.sleep(_LIVENESS_INTERVAL)
    return status


async def kill_over_ssh(kernel: KernelContext, signum: int) -> None:
    """The backend's way to signal the launcher's process group: ``kill`` over SSH."""
    pgid = kernel.state.get("pgid")
    if pgid and "host" in kernel.state:
        await _remote.kill_group(_target(kernel), pgid, signum)


async def send_signal(kernel: KernelContext, signum: int) -> None:
    await remote.send_signal(kernel, signum, fallback=kill_over_ssh)


async def terminate(kernel: KernelContext) -> None:
    await remote.terminate(kernel, fallback=kill_over_ssh)


async def kill(kernel: KernelContext) -> None:
    """SIGKILL the launcher's process group and wait (bounded) for its channel to end, so that
    nothing of the kernel is left on the host when this returns."""
    process = _process(kernel)
    if process is not None and not process.running:
        return
    if "pgid" not in kernel.state:
        return
    try:
        await send_signal(kernel, signal.SIGKILL)
    except (HostUnreachable, LoginRejected, OSError) as exc:
        kernel.log.warning("ssh: cannot kill the launcher on %s: %s", kernel.state.get("host"), exc)
        return
    if process is not None:
        try:
            await asyncio.wait_for(process.wait(), _KILL_WAIT)
        except asyncio.TimeoutError:
            kernel.log.warning("ssh: the launcher on %s outlived SIGKILL for %gs", kernel.state.get("host"), _KILL_WAIT)


def cleanup(kernel: KernelContext) -> None:
    """Release the host slot and the callback registration; drop the channel handle."""
    hosts.release(kernel.kernel_id)
    remote.forget(kernel)
    _tunnels.close_tunnels(kernel)
    process = kernel.handles.pop("ssh_process", None)
    if process is not None:
        process.close()


async def describe_exit(kernel: KernelContext) -> str | None:
    """Why the kernel ended or never called back, for the launch error or the ``died`` event."""
    process = _process(kernel)
    if process is not None and not process.running:
        return None if kernel.handles.get("exit_reported") else process.describe()
    if "host" not in kernel.state:
        return None
    where = f"{kernel.state.get('user')}@{kernel.state['host']}"
    if remote.has_comm_port(kernel):
        head = f"the kernel on {where} stopped answering"
    else:
        head = (
            f"the remote process (pid {kernel.state.get('pgid')}) on {where} started but has not called "
            f"back; {remote.diagnose(kernel)}"
        )
    try:
        output = await _remote.read_log(_target(kernel), kernel.state["log"])
    except Exception as exc:  # noqa: BLE001 - the account is a courtesy
        output = f"(cannot read it: {exc})"
    return f"{head}. Its log {kernel.state['log']} on that host ends with:\n{output}" if output else head


async def load_process_info(kernel: KernelContext, info: dict) -> None:
    """Re-attach to a kernel launched by an earlier gateway process (no channel: comm port only;
    its tunnels opened again when it had some)."""
    kernel.state = dict(info)
    kernel.handles.pop("ssh_process", None)
    if "host" in kernel.state:
        hosts.assign(kernel.state["host"], kernel.kernel_id)
    if "tunnel" in kernel.state:
        settings = resolve(kernel)
        await _tunnels.open_tunnels(kernel, _target(kernel, settings), settings.max_sessions_per_connection, settings.connection_idle_timeout)

