"""Running commands on the gateway host, for resource managers driven by command-line tools
(``sbatch``, ``squeue``, ``qsub``...) and for kernels started as local processes.

::

    result = await process.run(["squeue", "--noheader", "--jobs", job_id], timeout=10)
    if result.returncode:
        raise LaunchFailed("launch_process", result.explain())

Commands run with ``asyncio.create_subprocess_exec`` (never a shell: pass user values as
separate arguments), their output captured and bounded; on timeout the whole process group is
killed and :class:`CommandTimeout` raised.
"""

from __future__ import annotations

import asyncio
import os
import signal
from dataclasses import dataclass
from typing import Mapping, Sequence

from ._runtime.context import KernelContext
from ._runtime.env import SECRET_NAMES

# Never inherited by a kernel or a command: gateway secrets, and the variable that makes a
# kernel exit with a parent Jupyter process.
UNINHERITED = frozenset(SECRET_NAMES | {"JPY_PARENT_PID"})
MAX_OUTPUT = 1024 * 1024


class CommandTimeout(Exception):
    """A command did not finish within its timeout (it has been killed)."""


@dataclass(frozen=True)
class Completed:
    """A finished command: its argv, exit status and captured output (text)."""

    argv: tuple[str, ...]
    returncode: int
    stdout: str
    stderr: str

    def explain(self) -> str:
        """One message saying what failed: the command, its status and its stderr (or stdout)."""
        output = (self.stderr or self.stdout).strip()
        text = f"{self.argv[0]} exited with status {self.returncode}"
        return f"{text}: {output[-2000:]}" if output else text


def gateway_env(extra: Mapping[str, str] | None = None) -> dict[str, str]:
    """The gateway's environment without its secrets, plus ``extra`` (e.g. ``kernel.env``):
    what a kernel started on the gateway host, or a command run for it, gets."""
    env = {k: v for k, v in os.environ.items() if k not in UNINHERITED}
    env.update(extra or {})
    return env


def kernel_process_env(kernel: KernelContext) -> dict[str, str]:
    """The environment of a kernel started as a process on the gateway host."""
    return gateway_env(kernel.env)


async def run(
    argv: Sequence[str],
    *,
    timeout: float,
    input: str | None = None,
    env: Mapping[str, str] | None = None,
    cwd: str | None = None,
) -> Completed:
    """Run ``argv`` and return its status and output (at most 1 MiB of each is kept).

    ``env`` replaces the environment (default: :func:`gateway_env`). Raises
    :class:`CommandTimeout` after ``timeout`` seconds (the process group is killed first) and
    ``OSError`` when the program cannot be started.
    """
    proc = await asyncio.create_subprocess_exec(
        *argv,
        stdin=asyncio.subprocess.PIPE if input is not None else asyncio.subprocess.DEVNULL,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
        env=dict(env) if env is not None else gateway_env(),
        cwd=cwd,
        start_new_session=True,
    )
    try:
        out, err = await asyncio.wait_for(
            proc.communicate(input.encode() if input is not None else None), timeout
        )
    except asyncio.TimeoutError:
        _kill_group(proc.pid)
        await proc.wait()
        raise CommandTimeout(f"{argv[0]} did not finish within {timeout:g}s") from None
    except BaseException:
        _kill_group(proc.pid)
        raise
    return Completed(
        tuple(argv),
        proc.returncode,
        out[-MAX_OUTPUT:].decode(errors="replace"),
        err[-MAX_OUTPUT:].decode(errors="replace"),
    )


def _kill_group(pid: int) -> None:
    try:
        os.killpg(pid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        pass


__all__ = ["run", "Completed", "CommandTimeout", "gateway_env", "kernel_process_env", "UNINHERITED"]
