"""One kernel's life on the backend, one function per resource-manager hook, named as the hook
without ``eg_`` (``launch_process`` is ``eg_launch_process``): :func:`eg_core.hooks_from` makes
them the plugin's hooks. A hook this module does not define gets the core's default.

The backend here is the gateway's own host: each kernel is eg's launcher, started as a process
in its own session. A real resource manager keeps this shape and replaces the bodies with its
backend's calls (submit a job, ask its state, signal it, cancel it). ``kernel.state`` (saved, so
an adopting gateway gets it back) holds ``pid`` and what :mod:`eg_core.remote` records;
``kernel.handles["process"]`` is the live process, in the gateway that started it.
"""

from __future__ import annotations

import asyncio
import os
import signal
import tempfile
from pathlib import Path

from eg_core import KernelContext, LaunchFailed, process, remote
from eg_core.argv import fill
from eg_core.config import kernelspec_settings

from ._settings import HostProcSettings

ADOPTED_POLL_INTERVAL = 1.0


def _log(kernel: KernelContext) -> Path:
    return Path(tempfile.gettempdir()) / f"eg-hostproc-{kernel.kernel_id}.log"


async def launch_process(kernel: KernelContext, cmd: list[str]) -> None:
    """Called once per (re)launch: check the settings, expect the launcher's callback, start the launcher."""
    settings = kernelspec_settings(kernel, HostProcSettings)  # a bad kernelspec value: 400, nothing started
    launch_key = await remote.expect_callback(kernel)  # before the launcher can call back
    argv = fill(cmd, {"launcher": remote.launcher_path()})
    if argv[0] in ("python", "python3"):
        argv[0] = settings.python
    # The launch key reaches the launcher in a file only the kernel's user can read (the
    # launcher removes it), never in the job's environment or on its command line: backends
    # show those to other users. Pass uid=/gid= when the kernel runs as another user, and a
    # directory the kernel's host sees when it is not this host.
    key_file = await remote.write_key_file(kernel, launch_key) if launch_key else None
    env = process.gateway_env(remote.launcher_env(kernel, launch_key, key_file=key_file))
    with open(_log(kernel), "ab") as log:
        try:
            proc = await asyncio.create_subprocess_exec(
                *argv, env=env, stdin=asyncio.subprocess.DEVNULL, stdout=log, stderr=log, start_new_session=True)
        except OSError as exc:
            raise LaunchFailed("launch_process", f"cannot run {argv[0]!r}: {exc.strerror}") from None
    kernel.handles["process"] = proc
    kernel.state["pid"] = proc.pid


async def confirm_startup(kernel: KernelContext) -> None:
    """Called after ``launch_process``: wait for the launcher's callback; its process ending first fails the launch."""
    async def exited() -> str:
        return f"exit status {await kernel.handles['process'].wait()}"

    await remote.wait_for_callback(kernel, exited=exited())


def poll(kernel: KernelContext) -> int | None:
    """``None`` while the launcher runs, else its exit status (0 when it is not our child)."""
    proc = kernel.handles.get("process")
    if proc is not None:
        return proc.returncode
    try:
        os.kill(kernel.state["pid"], 0)
    except ProcessLookupError:
        return 0
    return None


async def wait(kernel: KernelContext) -> int:
    proc = kernel.handles.get("process")
    if proc is not None:
        return await proc.wait()
    # Adopted from an earlier gateway: not our child, so no exit event; ask at an interval.
    while (status := poll(kernel)) is None:
        await asyncio.sleep(ADOPTED_POLL_INTERVAL)
    return status


async def signal_group(kernel: KernelContext, signum: int) -> None:
    """The backend's own way to signal the kernel: the launcher's process group."""
    try:
        os.killpg(kernel.state["pid"], signum)
    except (ProcessLookupError, KeyError):
        pass


async def send_signal(kernel: KernelContext, signum: int) -> None:
    """Through the launcher's comm port; the process group when that fails."""
    await remote.send_signal(kernel, signum, fallback=signal_group)


async def terminate(kernel: KernelContext) -> None:
    """A shutdown that the kernel's shutdown_request did not end: SIGTERM, the same way."""
    await remote.terminate(kernel, fallback=signal_group)


async def kill(kernel: KernelContext) -> None:
    """SIGKILL the launcher's group and wait (bounded) until it has ended."""
    if "pid" not in kernel.state:
        return
    await signal_group(kernel, signal.SIGKILL)
    settings = kernelspec_settings(kernel, HostProcSettings)
    try:
        await asyncio.wait_for(wait(kernel), settings.kill_wait)
    except asyncio.TimeoutError:
        kernel.log.warning("hostproc: pid %s outlived SIGKILL for %gs", kernel.state["pid"], settings.kill_wait)


def cleanup(kernel: KernelContext) -> None:
    kernel.handles.pop("process", None)


def describe_exit(kernel: KernelContext) -> str | None:
    """The end of the launcher's output, for the launch error or the ``died`` event."""
    try:
        lines = _log(kernel).read_text(errors="replace").splitlines()[-20:]
    except OSError:
        return None
    return "the launcher's output ends with:\n" + "\n".join(lines) if lines else None


async def doctor_checks(kernels: list[KernelContext]):
    """Each kernelspec's Python runs and imports ipykernel (a bad kernelspec value: a failed check)."""
    from eg_core.doctor import Check, each_kernelspec

    found: list[Check] = []
    for _, what, settings in each_kernelspec(kernels, lambda kernel: kernelspec_settings(kernel, HostProcSettings), found):
        python = settings.python
        done = await process.run([python, "-c", "import ipykernel"], timeout=60)
        found.append(Check(what, done.returncode == 0,
                           f"{python} {'imports' if done.returncode == 0 else 'cannot import'} ipykernel",
                           f"{python} -m pip install ipykernel, or set HostProcSettings.python"))
    return found
