"""Local kernel processes: start, watch, signal, adopt.

Each kernel runs in its own session (process group), with stdout and stderr in a per-kernel log
file whose tail explains an early exit.
"""

from __future__ import annotations

import asyncio
import os
import signal
import tempfile
from pathlib import Path

from ..context import KernelContext
from ..env import SECRET_NAMES
from ..errors import LaunchFailed

TAIL_BYTES = 4000


def _log_path(kernel: KernelContext) -> Path:
    log_dir = Path(kernel.config.get("log_dir") or tempfile.gettempdir())
    return log_dir / f"eg-kernel-{kernel.kernel_id}.log"


async def start(kernel: KernelContext, cmd: list[str]) -> None:
    """Start ``cmd`` in a new session with the gateway's environment plus ``kernel.env``."""
    env = {k: v for k, v in os.environ.items() if k not in SECRET_NAMES}
    env.update(kernel.env)
    log_path = _log_path(kernel)
    cwd = kernel.cwd or None
    if cwd and not os.path.isdir(cwd):
        raise LaunchFailed("launch_process", f"working directory {cwd!r} does not exist on the gateway host")
    with open(log_path, "ab") as log:
        try:
            proc = await asyncio.create_subprocess_exec(
                *cmd,
                env=env,
                cwd=cwd,
                stdin=asyncio.subprocess.DEVNULL,
                stdout=log,
                stderr=log,
                start_new_session=True,
            )
        except OSError as exc:
            raise LaunchFailed("launch_process", f"cannot run {cmd[0]!r}: {exc.strerror}") from exc
    kernel.handles["process"] = proc
    kernel.state.update(pid=proc.pid, pgid=proc.pid, log=str(log_path))
    kernel.log.debug("started local process %s", proc.pid)


def poll(kernel: KernelContext) -> int | None:
    proc = kernel.handles.get("process")
    if proc is not None:
        return proc.returncode
    pid = kernel.state.get("pid")
    if not pid:
        return 0
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return 0
    except PermissionError:
        return None
    return None


async def wait(kernel: KernelContext) -> int | None:
    """Wait for the process: our child's exit, or an adopted process's pidfd becoming readable."""
    proc = kernel.handles.get("process")
    if proc is not None:
        return await proc.wait()
    pid = kernel.state.get("pid")
    if not pid:
        return 0
    try:
        fd = os.pidfd_open(pid)
    except ProcessLookupError:
        return 0
    loop = asyncio.get_running_loop()
    ended = loop.create_future()
    loop.add_reader(fd, lambda: ended.done() or ended.set_result(None))
    try:
        await ended
    finally:
        loop.remove_reader(fd)
        os.close(fd)
    return 0


def signal_group(kernel: KernelContext, signum: int) -> None:
    """Signal the kernel's process group (the kernel and what it spawned)."""
    pgid = kernel.state.get("pgid")
    if not pgid or poll(kernel) is not None:
        return
    try:
        os.killpg(pgid, signum)
    except ProcessLookupError:
        pass


def kill(kernel: KernelContext) -> None:
    signal_group(kernel, signal.SIGKILL)


def cleanup(kernel: KernelContext, restart: bool) -> None:
    kernel.handles.pop("process", None)
    log = kernel.state.get("log")
    if log and not restart:
        Path(log).unlink(missing_ok=True)


def output_tail(kernel: KernelContext) -> str | None:
    """The last lines the kernel wrote, for a launch error or a ``died`` event."""
    log = kernel.state.get("log")
    if not log or not os.path.exists(log):
        return None
    with open(log, "rb") as f:
        f.seek(0, os.SEEK_END)
        f.seek(max(f.tell() - TAIL_BYTES, 0))
        tail = f.read().decode(errors="replace").strip()
    status = poll(kernel)
    head = f"kernel process exited with status {status}" if status is not None else "the kernel process is running"
    if not tail:
        return head if status is not None else None
    return f"{head}; its last output:\n{tail}"


def adopt(kernel: KernelContext, info: dict) -> None:
    """Re-attach to a process started by an earlier gateway: only its pid is known now."""
    kernel.state = dict(info)
    kernel.handles.pop("process", None)
