"""One kernel on a remote host: start its launcher through the bootstrap, watch, signal, stop it.

:func:`start` runs on a pooled SSH connection the fixed command ``exec <python> -c <stub>``, sends
the bootstrap (:mod:`eg_ssh._bootstrap`) and the job over stdin, and returns once the launcher
runs (its pid known). The channel stays open while the launcher runs; :class:`RemoteProcess`
turns its end into an event (exit status plus the log's tail).
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import os
import shlex
import signal as signals
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import asyncssh

from eg_core import KernelContext, LaunchFailed, remote

from . import _bootstrap
from ._ssh import Connection, HostUnreachable, SessionRefused, Target, pool

STUB = "import sys,json;exec(json.loads(sys.stdin.readline()))"
LAUNCHER_TOKEN = "{launcher}"
EG_LAUNCHER_NAME = "launch_ipykernel.py"
_STARTUP_TIMEOUT = 30.0
_COMMAND_TIMEOUT = 10.0
_STDERR_LIMIT = 16000


@dataclass
class Code:
    """Source texts sent to remote hosts, read once (in a thread) and cached."""

    bootstrap: str
    launcher: str
    launcher_sha256: str


_code: Code | None = None


async def code() -> Code:
    global _code
    if _code is None:
        def read() -> Code:
            launcher = Path(remote.launcher_path()).read_text(encoding="utf-8")
            return Code(
                bootstrap=Path(_bootstrap.__file__).read_text(encoding="utf-8"),
                launcher=launcher,
                launcher_sha256=hashlib.sha256(launcher.encode("utf-8")).hexdigest(),
            )

        _code = await asyncio.to_thread(read)
    return _code


def prepare_argv(cmd: list[str], remote_python: str, replace_eg_launcher: bool) -> tuple[list[str], list[int]]:
    """The argv to run remotely and the positions where the launcher's path goes.

    ``python``/``python3`` as first word becomes ``remote_python``; ``{launcher}`` (and, with
    ``replace_eg_launcher``, any ``.../launch_ipykernel.py``) becomes eg's launcher.
    """
    argv = list(cmd)
    if argv and argv[0] in ("python", "python3"):
        argv[0] = remote_python
    positions = [
        i for i, arg in enumerate(argv)
        if arg == LAUNCHER_TOKEN or (replace_eg_launcher and i > 0 and os.path.basename(arg) == EG_LAUNCHER_NAME)
    ]
    return argv, positions


def log_path(log_dir: str, kernel_id: str) -> str:
    return f"{log_dir.rstrip('/') or ''}/kernel-{kernel_id}.log"


def _send(proc: asyncssh.SSHClientProcess, data: bytes) -> None:
    """Write to the bootstrap's stdin; a channel that already ended (the remote command failed
    at once, e.g. no such Python) is not an error here: its end is told through ``messages``."""
    try:
        proc.stdin.write(data)
    except (asyncssh.Error, OSError):
        pass


class RemoteProcess:
    """The bootstrap's SSH channel for one kernel, from the launcher's start to its end."""

    def __init__(self, proc: asyncssh.SSHClientProcess, conn: Connection):
        self.proc = proc
        self.conn = conn
        self.pid: int | None = None
        self.exit_code: int | None = None  # the launcher's, as reported by the bootstrap
        self.messages: asyncio.Queue[dict] = asyncio.Queue()  # the bootstrap's answers; {} at the end
        self._stderr: list[str] = []
        self.ended: asyncio.Future = asyncio.get_running_loop().create_future()
        self._watch = asyncio.ensure_future(self._watch_end())

    async def _watch_end(self) -> None:
        """Read the bootstrap's answers until the channel ends, then resolve :attr:`ended`."""
        try:
            stderr_reader = asyncio.ensure_future(self._read_stderr())
            while True:
                line = await self.proc.stdout.readline()
                if not line:
                    break
                message = _parse(line)
                if "exit" in message:
                    self.exit_code = int(message["exit"])
                if message:
                    self.messages.put_nowait(message)
            await stderr_reader
            await self.proc.wait_closed()
        except (asyncssh.Error, OSError):
            pass
        finally:
            self.messages.put_nowait({})
            pool.release(self.conn)
            if not self.ended.done():
                self.ended.set_result(self.describe())

    async def _read_stderr(self) -> None:
        size = 0
        while True:
            chunk = await self.proc.stderr.read(4096)
            if not chunk:
                return
            self._stderr.append(chunk.decode("utf-8", "replace"))
            size += len(chunk)
            while size > _STDERR_LIMIT and len(self._stderr) > 1:
                size -= len(self._stderr.pop(0).encode())

    @property
    def running(self) -> bool:
        return not self.ended.done()

    @property
    def definitive(self) -> bool:
        """Whether the bootstrap saw the launcher end (rather than the channel being lost)."""
        return self.exit_code is not None

    def status(self) -> int:
        if self.exit_code is not None:
            return self.exit_code
        return self.proc.returncode if self.proc.returncode is not None else 0

    def describe(self) -> str:
        where = str(self.conn.target)
        stderr = "".join(self._stderr).strip()
        if self.exit_code is not None:
            head = f"the remote launcher (pid {self.pid}) on {where} exited with status {self.exit_code}"
        elif self.proc.exit_status is not None or self.proc.exit_signal is not None:
            head = f"the remote command on {where} ended with status {self.proc.returncode}"
        else:
            head = f"the SSH channel to {where} was lost"
        return f"{head}; its output:\n{stderr}" if stderr else head

    async def wait(self) -> str:
        """The description of the end, once it happened (shielded: callers may be cancelled)."""
        return await asyncio.shield(self.ended)

    def close(self) -> None:
        """Drop the channel (the remote launcher is not affected)."""
        if self.running:
            self.proc.close()


async def start(kernel: KernelContext, conn: Connection, argv: list[str], launcher_args: list[int],
                launcher_dir: str, remote_python: str, env: dict[str, str], log: str, keep_log: bool,
                launch_key: str | None = None) -> RemoteProcess:
    """Start the kernel's launcher through the bootstrap; returns once it runs.

    ``launch_key`` reaches the launcher on its stdin (``env`` says so: ``EG_LAUNCH_KEY_STDIN``),
    through the encrypted channel: in no environment, file or command line on the host.

    Called by ``eg_launch_process`` on a connection slot acquired for this kernel (released when
    the channel ends). Raises :class:`eg_core.LaunchFailed` with the remote stderr when the
    bootstrap or the command cannot start, :class:`SessionRefused` when the server refuses
    another channel on this connection, and :class:`HostUnreachable` when the connection fails.
    """
    source = await code()
    job: dict[str, Any] = {
        "argv": argv,
        "launcher_args": launcher_args,
        "env": env,
        "cwd": kernel.cwd,
        "log": log,
        "keep_log": keep_log,
    }
    if launch_key:
        job["stdin"] = remote.key_line(launch_key).decode("ascii")
    if launcher_args:
        path = f"{launcher_dir.rstrip('/')}/launch_ipykernel-{source.launcher_sha256[:16]}.py"
        job["launcher"] = {"path": path, "sha256": source.launcher_sha256}
        if path not in conn.installed:
            job["launcher"]["source"] = source.launcher
    command = f"exec {shlex.quote(remote_python)} -c {shlex.quote(STUB)}"
    try:
        proc = await conn.conn.create_process(command, encoding=None)
    except asyncssh.ChannelOpenError as exc:
        pool.saturated(conn)
        pool.release(conn)
        raise SessionRefused(f"{conn.target} refused a new session ({exc.reason})") from None
    except (asyncssh.Error, OSError) as exc:
        pool.release(conn)
        raise HostUnreachable(f"SSH connection to {conn.target} failed: {getattr(exc, 'reason', exc)}") from None
    process = RemoteProcess(proc, conn)
    kernel.handles["ssh_process"] = process
    _send(proc, _line(source.bootstrap) + _line(job))
    try:
        first = await asyncio.wait_for(process.messages.get(), _STARTUP_TIMEOUT)
        if first.get("need_launcher"):
            _send(proc, _line(source.launcher))
            first = await asyncio.wait_for(process.messages.get(), _STARTUP_TIMEOUT)
    except asyncio.TimeoutError:
        process.close()
        raise LaunchFailed("launch_process", f"the bootstrap on {conn.target} did not start within {_STARTUP_TIMEOUT:g}s") from None
    try:
        if "pid" in first:
            proc.stdin.write(_line("go"))
        proc.stdin.write_eof()
    except (asyncssh.Error, OSError):
        pass  # the channel ended: told below, or seen by the watcher
    if "pid" not in first:
        why = await process.wait()
        raise LaunchFailed("launch_process", f"cannot start the kernel on {conn.target}: {why}")
    if launcher_args:
        conn.installed.add(job["launcher"]["path"])
    process.pid = int(first["pid"])
    for warning in first.get("warnings", ()):
        kernel.log.warning("on %s: %s", conn.target, warning)
    return process


def _line(value: Any) -> bytes:
    return json.dumps(value).encode("utf-8") + b"\n"


def _parse(line: bytes) -> dict:
    try:
        message = json.loads(line)
    except ValueError:
        return {}
    return message if isinstance(message, dict) else {}


# -- commands on a host, for kernels whose channel is gone or that never called back -----------


async def run(target: Target, command: str, timeout: float = _COMMAND_TIMEOUT) -> asyncssh.SSHCompletedProcess:
    """Run a short fixed command (every argument already quoted) on ``target``."""
    async with pool.channel(target) as c:
        return await c.conn.run(command, check=False, timeout=timeout)


async def kill_group(target: Target, pgid: int, signum: int) -> None:
    """Signal the launcher's process group over SSH (``kill -s NAME -- -PGID``)."""
    pgid = int(pgid)
    if pgid <= 1:
        return
    name = signals.Signals(signum).name.removeprefix("SIG")
    await run(target, f"kill -s {shlex.quote(name)} -- -{pgid} 2>/dev/null")


async def read_log(target: Target, path: str) -> str:
    """The last lines of a remote kernel log ('' when unreadable)."""
    result = await run(target, f"tail -c {_bootstrap.TAIL_BYTES} -- {shlex.quote(path)} 2>/dev/null")
    out = result.stdout or b""
    return (out.decode("utf-8", "replace") if isinstance(out, bytes) else out).strip()
