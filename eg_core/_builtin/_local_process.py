"""Local kernel processes: start, watch, signal, adopt; one function per resource-manager hook,
named as the hook without ``eg_`` (:func:`eg_core.hooks_from` makes them :mod:`.local`'s hooks).

Each kernel runs in its own session (process group), so that a gateway that keeps its kernels
in the session store (``kernel.survives_gateway``) can be killed or stopped while they run on,
for the next gateway to adopt; without a store, a kernel gets a parent-death signal and ends
with the gateway. stdout and stderr go to a per-kernel log file whose tail explains an early
exit. The exit is an event, never polled: SIGCHLD for the gateway's own children (no descriptor
per kernel), a pidfd registered with the event loop for adopted processes.
A kernel's environment carries ``KERNEL_ID``, so one whose pid a crashed gateway never recorded
is still found, and its owner (:mod:`eg_core._builtin._local_orphans`), so an orphan is known as
this gateway's.
"""

from __future__ import annotations

import asyncio
import os
import select
import shutil
import signal
import subprocess
import sys
import tempfile
from pathlib import Path

from eg_core import BadRequest, KernelContext, LaunchFailed, procinfo
from eg_core.doctor import Check
from eg_core.process import kernel_process_env

from ._child_exits import watch_child
from ._local_orphans import marks

TAIL_BYTES = 4000


def _log_path(kernel: KernelContext) -> Path:
    log_dir = Path(kernel.config.get("log_dir") or tempfile.gettempdir())
    return log_dir / f"eg-kernel-{kernel.kernel_id}.log"


async def launch_process(kernel: KernelContext, cmd: list[str]) -> None:
    """Start ``cmd`` in a new session with the gateway's environment plus ``kernel.env``."""
    env = {**kernel_process_env(kernel), **marks()}
    log_path = _log_path(kernel)
    cwd = kernel.cwd or None
    if cwd and not os.path.isdir(cwd):
        raise BadRequest(f"working directory {cwd[:200]!r} (KERNEL_WORKING_DIR or 'path') does not exist on the gateway host")
    preexec = None if kernel.survives_gateway else _die_with(os.getpid())
    with open(log_path, "ab") as log:
        try:
            proc = subprocess.Popen(
                cmd, env=env, cwd=cwd, stdin=subprocess.DEVNULL, stdout=log, stderr=log, start_new_session=True,
                preexec_fn=preexec,
            )
        except OSError as exc:
            raise LaunchFailed("launch_process", f"cannot run {cmd[0]!r}: {exc.strerror}") from exc
    kernel.handles["process"] = proc
    kernel.state.update(pid=proc.pid, pgid=proc.pid, log=str(log_path), started=procinfo.start_time(proc.pid))
    _watch(kernel)
    kernel.log.debug("started local process %s", proc.pid)


def _die_with(parent: int):
    """A ``preexec_fn``: the kernel gets SIGKILL when the gateway process ends (Linux's
    parent-death signal; the launching thread is the event loop's, which lives as long as the
    gateway). A gateway that already ended before this runs is seen as a changed parent."""

    def preexec() -> None:
        procinfo.prctl(procinfo.PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)
        if os.getppid() != parent:
            os._exit(1)

    return preexec


def _watch(kernel: KernelContext) -> None:
    """Resolve ``handles["exit"]`` with the exit status when the process ends: from SIGCHLD for
    the gateway's own child, through a pidfd for an adopted process."""
    loop = asyncio.get_running_loop()
    exited = loop.create_future()
    kernel.handles["exit"] = exited

    def ended() -> None:
        if not exited.done():
            exited.set_result(_reap(kernel))

    if kernel.handles.get("process") is not None and watch_child(kernel.state["pid"], ended):
        return
    try:
        fd = os.pidfd_open(kernel.state["pid"])
    except ProcessLookupError:
        exited.set_result(_reap(kernel))
        return
    probe = select.poll()  # not select(): a gateway holding hundreds of kernels has fds >= 1024
    probe.register(fd, select.POLLIN)
    if probe.poll(0):  # already ended (or a zombie nobody reaped yet)
        os.close(fd)
        exited.set_result(_reap(kernel))
        return

    def on_exit() -> None:
        loop.remove_reader(fd)
        os.close(fd)
        ended()

    loop.add_reader(fd, on_exit)


def _reap(kernel: KernelContext) -> int:
    """Collect our child's exit status (an adopted process is reaped by init: status 0)."""
    proc = kernel.handles.get("process")
    if proc is None:
        return 0
    status = proc.wait()
    return status


def poll(kernel: KernelContext) -> int | None:
    exited = kernel.handles.get("exit")
    if exited is not None:
        return exited.result() if exited.done() else None
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
    exited = kernel.handles.get("exit")
    if exited is None:
        return poll(kernel) if poll(kernel) is not None else 0
    return await asyncio.shield(exited)


def send_signal(kernel: KernelContext, signum: int) -> None:
    """Signal the kernel's process group (the kernel and what it spawned)."""
    pgid = kernel.state.get("pgid")
    if not pgid or poll(kernel) is not None:
        return
    try:
        os.killpg(pgid, signum)
    except ProcessLookupError:
        pass


def kill(kernel: KernelContext) -> None:
    send_signal(kernel, signal.SIGKILL)


def cleanup(kernel: KernelContext, restart: bool) -> None:
    kernel.handles.pop("process", None)
    kernel.handles.pop("exit", None)
    log = kernel.state.get("log")
    if log and not restart:
        Path(log).unlink(missing_ok=True)


def describe_exit(kernel: KernelContext) -> str | None:
    """The last lines the kernel wrote, for a launch error or a ``died`` event."""
    tail = _tail(kernel, TAIL_BYTES)
    if tail is None:
        return None
    tail = tail.strip()
    status = poll(kernel)
    head = f"kernel process exited with status {status}" if status is not None else "the kernel process is running"
    if not tail:
        return head if status is not None else None
    return f"{head}; its last output:\n{tail}"


def load_process_info(kernel: KernelContext, info: dict) -> None:
    """Re-attach to a process started by an earlier gateway: watch its pid, unless that pid now
    belongs to another process (then the kernel is gone)."""
    kernel.state = dict(info)
    kernel.handles.pop("process", None)
    pid = kernel.state.get("pid")
    if not pid:  # a launch interrupted before its pid was recorded
        _find(kernel)
    elif procinfo.start_time(pid) not in (None, kernel.state.get("started")):
        kernel.state["pid"] = None
    if kernel.state.get("pid"):
        _watch(kernel)


def _find(kernel: KernelContext) -> None:
    """Find the kernel's process by the ``KERNEL_ID`` in its environment: the leader of its
    own session (children inherit the variable too)."""
    for pid in procinfo.with_env("KERNEL_ID", kernel.kernel_id):
        try:
            if os.getsid(pid) == pid:
                kernel.state.update(pid=pid, pgid=pid, started=procinfo.start_time(pid))
                return
        except ProcessLookupError:
            continue


async def check(kernel: KernelContext) -> Check:
    """Whether a kernelspec's program runs on this host (``eg_doctor``): its argv's program is
    found and, for ``python -m module``, that Python finds the module."""
    argv = list(kernel.spec.get("argv") or [])
    what = f"kernelspec {kernel.kernel_name}"
    if not argv:
        return Check(what, False, "its argv is empty", "give kernel.json an argv")
    python_names = ("python", f"python{sys.version_info[0]}")
    program = sys.executable if argv[0] in python_names else shutil.which(argv[0])
    kernel_json = os.path.join(kernel.spec["resource_dir"], "kernel.json") if kernel.spec.get("resource_dir") else "kernel.json"
    if program is None and os.sep in argv[0]:
        problem = "does not exist" if not os.path.exists(argv[0]) else "is not an executable file"
        return Check(what, False, f"{argv[0]!r} {problem}", f"install the kernel's program there, or fix argv[0] in {kernel_json}")
    if program is None:
        return Check(what, False, f"{argv[0]!r} is not found on the PATH", f"install it, or give its full path in {kernel_json}")
    if "-m" not in argv[:-1]:
        return Check(what, True, f"runs {program}")
    module = argv[argv.index("-m") + 1]
    probe = await asyncio.create_subprocess_exec(
        program, "-c", f"import importlib.util, sys; sys.exit(importlib.util.find_spec({module!r}) is None)",
        stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )
    try:
        found = await asyncio.wait_for(probe.wait(), 60) == 0
    except asyncio.TimeoutError:
        probe.kill()
        found = False
    if not found:
        return Check(what, False, f"{program} cannot import {module}", f"{program} -m pip install {module.split('.')[0].removesuffix('_launcher')}")
    return Check(what, True, f"{program} runs -m {module}")


def backend_log(kernel: KernelContext, lines: int) -> list[str] | None:
    """The last ``lines`` lines the kernel process wrote (its log file), or None without one."""
    text = _tail(kernel, TAIL_BYTES * 4)
    if text is None:
        return None
    return text.splitlines()[-lines:] if lines else []


def _tail(kernel: KernelContext, size: int) -> str | None:
    """The last ``size`` bytes of the kernel's log file, or None without one."""
    log = kernel.state.get("log")
    if not log or not os.path.exists(log):
        return None
    with open(log, "rb") as f:
        f.seek(0, os.SEEK_END)
        f.seek(max(f.tell() - size, 0))
        return f.read().decode(errors="replace")
