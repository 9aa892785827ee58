"""Kernels as batch-scheduler jobs (Slurm, Grid Engine, PBS, LSF...): the settings and job
helpers every batch resource manager needs, so a plugin adds only its scheduler's commands.

A batch resource manager submits a job script that execs eg's launcher; the launcher calls back
to the gateway (:mod:`eg_core.remote`). :class:`Scheduler` is its lifecycle: a subclass writes
the scheduler's commands, and :func:`eg_core.hooks_from` makes its methods the hooks::

    class SgeSettings(batch.scheduler_settings("SGE", "Grid Engine")):   # the shared settings
        queue = Unicode("", config=True, help="...").tag(env="EG_SGE_QUEUE", kernelspec=True)

    class Sge(batch.Scheduler):
        name, settings_class, active = "sge", SgeSettings, {"qw", "r", "t", "s"}

        async def submit(self, settings, kernel, argv, env, requested=()):   # -> the job id
            return await batch.run(settings, "qsub", ..., *requested, input=batch.job_script(argv), env=env)
        async def states(self, settings): ...                      # job id -> state, all jobs
        async def account(self, settings, job_id): ...             # the scheduler's word on a job
        async def signal_job(self, settings, job_id, signum): ...
        async def cancel_job(self, settings, job_id): ...          # (and force_cancel_job)

    # plugin.py
    globals().update(hooks_from(Sge()))

Every scheduler command runs through :func:`run`: without a shell, within the settings'
``command_timeout``, its failure a :class:`SchedulerError` saying why.
"""

from __future__ import annotations

import asyncio
import shlex
from abc import ABC, abstractmethod
import sys
import tempfile
from collections.abc import Awaitable, Callable, Collection, Iterable
from pathlib import Path
from typing import Any

from traitlets import Enum, Float, Unicode
from traitlets.config import SingletonConfigurable

from . import process, remote
from .argv import fill
from .config import EnvDefaults, kernelspec_settings
from ._runtime.context import KernelContext
from ._runtime.errors import LaunchFailed
from .poller import StatusPoller

JOB_PREFIX = "eg-kernel-"


class SchedulerError(Exception):
    """A scheduler command failed, timed out or is not installed."""


class SchedulerNotInstalled(SchedulerError):
    """A scheduler command is not on the gateway's PATH (its client commands are not installed)."""


def scheduler_settings(prefix: str, scheduler: str, commands: str = "") -> type:
    """A settings base class for a batch resource manager, defined when the plugin's settings
    module is imported. Its traits, each read from ``EG_<prefix>_<NAME>``:

    - ``python`` (kernelspec-overridable): the Python that runs eg's launcher on the nodes
      (replaces ``python`` as the argv's first word; default: the gateway's own);
    - ``output_dir``: directory the nodes and the gateway share, for the jobs' output files
      (``eg-kernel-<id>.log``) and the launch-key files;
    - ``poll_interval``: seconds between status queries (one for all kernels);
    - ``command_timeout``: seconds a scheduler command may take;
    - ``gateway_id``: marks this gateway's jobs (the orphan sweep looks at these only);
    - ``orphans_at_startup``: ``log``, ``remove`` or ``ignore`` such jobs no kernel owns.

    ``scheduler`` names it in help texts ("Slurm"), ``commands`` lists its commands there.
    Subclass it with ``EnvDefaults``' conventions; add the scheduler's own settings.
    """
    env = f"EG_{prefix}_"
    named = f" ({commands})" if commands else ""
    body = {
        "__doc__": f"Settings every {scheduler} resource manager shares (eg_core.batch).",
        "python": Unicode(sys.executable, config=True, help="Python (with ipykernel) that runs eg's launcher on the nodes; replaces 'python' as the argv's first word. Default: the gateway's own, for installs on a filesystem the nodes share.").tag(
            env=env + "PYTHON", kernelspec=True),
        "output_dir": Unicode(tempfile.gettempdir(), config=True, help="Directory (seen by the nodes and the gateway) for the jobs' output files, eg-kernel-<id>.log.").tag(
            env=env + "OUTPUT_DIR"),
        "poll_interval": Float(2.0, min=0.2, config=True, help=f"Seconds between {scheduler} status checks of the kernel jobs (one query for all of them).").tag(
            env=env + "POLL_INTERVAL"),
        "command_timeout": Float(30.0, min=1.0, config=True, help=f"Seconds a {scheduler} command{named} may take.").tag(
            env=env + "COMMAND_TIMEOUT"),
        "gateway_id": Unicode("eg", config=True, help="Marks this gateway's kernel jobs; the orphan sweep at startup looks at these only.").tag(
            env=env + "GATEWAY_ID"),
        "orphans_at_startup": Enum(["log", "remove", "ignore"], "log", config=True, help="What to do at startup with running kernel jobs of this gateway id that no kernel of the gateway owns.").tag(
            env=env + "ORPHANS_AT_STARTUP"),
    }
    return type(f"{prefix.capitalize()}BatchSettings", (EnvDefaults, SingletonConfigurable), body)


async def run(settings: Any, *argv: str, input: str | None = None, env: dict | None = None) -> str:
    """Run one scheduler command (no shell, within ``settings.command_timeout``); returns its
    stdout. Raises :class:`SchedulerNotInstalled` when the command is not on PATH and
    :class:`SchedulerError` (its exit status and stderr, or the timeout) when it fails."""
    try:
        done = await process.run(argv, timeout=settings.command_timeout, input=input, env=env)
    except FileNotFoundError:
        raise SchedulerNotInstalled(f"{argv[0]} is not found on the gateway's PATH") from None
    except (process.CommandTimeout, OSError) as exc:
        raise SchedulerError(f"{argv[0]}: {exc}") from None
    if done.returncode:
        raise SchedulerError(done.explain())
    return done.stdout


async def prepare_launch(kernel: KernelContext, cmd: list[str], settings: Any) -> tuple[list[str], dict[str, str]]:
    """Called first in ``eg_launch_process``: registers the kernel for the launcher's callback,
    writes the launch key to a 0600 file in ``settings.output_dir`` (a job's environment is shown
    to everyone by the scheduler; the environment only names the file) and fills the launcher
    command line (``{launcher}``; ``python``/``python3`` replaced by ``settings.python``).

    Returns ``(argv, env)``: the job's command and its whole environment (the gateway's own
    process environment with the kernel's and the launcher's variables)."""
    launch_key = await remote.expect_callback(kernel)
    argv = fill(cmd, {"launcher": remote.launcher_path()})
    argv[0] = settings.python if argv[0] in ("python", "python3") else argv[0]
    key_file = await remote.write_key_file(kernel, launch_key, settings.output_dir)
    return argv, process.gateway_env(remote.launcher_env(kernel, launch_key, key_file=key_file))


def job_script(argv: Iterable[str]) -> str:
    """The job script: ``/bin/sh`` exec'ing ``argv``, every word quoted (submit it on stdin)."""
    return "#!/bin/sh\nexec " + " ".join(shlex.quote(arg) for arg in argv) + "\n"


def job_name(kernel: KernelContext) -> str:
    """The kernel's job name, ``eg-kernel-<kernel id>`` (the orphan sweep recognises it)."""
    return f"{JOB_PREFIX}{kernel.kernel_id}"


def output_file(settings: Any, kernel: KernelContext) -> Path:
    """The kernel job's output file, ``<output_dir>/eg-kernel-<kernel id>.log``."""
    return Path(settings.output_dir) / f"{job_name(kernel)}.log"


def output_tail(output: Path | None, lines: int) -> list[str]:
    """The last ``lines`` lines of a job's ``output`` file (none when it does not exist yet)."""
    return output.read_text(errors="replace").splitlines()[-lines:] if output and output.exists() and lines > 0 else []


def with_output_tail(text: str, output: Path | None, lines: int = 20) -> str:
    """For ``eg_describe_exit``: ``text`` (the scheduler's account of the job) followed by the
    last ``lines`` lines of the job's ``output`` file, if it exists and has any."""
    tail = output_tail(output, lines)
    return text + ("; its output ends with:\n" + "\n".join(tail) if tail else "")


def exit_status(state: str | None, active: Collection[str], succeeded: Collection[str] = ("COMPLETED",)) -> int | None:
    """What ``eg_poll`` and ``eg_wait`` return for a job's state from one status query: None
    while it is in ``active``, 0 when it is in ``succeeded`` or the scheduler no longer knows
    it (``None``), 1 otherwise."""
    return None if state in active else 0 if state is None or state in succeeded else 1


async def ended(settings: Any, query: Callable[[], Awaitable[dict[str, str]]], job_id: str, active: Collection[str], name: str) -> str | None:
    """Wait until the job has left the ``active`` states, on one shared poller per ``name``:
    ``query()`` (job id -> state, for all jobs) runs once per ``settings.poll_interval`` for
    every waiting kernel. Returns the job's last state (None: the scheduler no longer knows it)."""
    poller = StatusPoller.shared(settings.poll_interval, lambda _: query(), settings.poll_interval, name)
    return await poller.wait_until(job_id, lambda state: state not in active)


async def cancel(request: Callable[[], Awaitable[Any]], ended: Callable[[], Awaitable[Any]], wait: float,
                 force: Callable[[], Awaitable[Any]] | None = None) -> bool:
    """Cancel a job, for ``eg_kill`` and the orphan sweep: ``request()`` (the scheduler's cancel
    command), then wait up to ``wait`` seconds (0: not at all) for ``ended()``. When it has not
    ended by then, ``force()`` (e.g. ``qdel -f``) runs and the wait is repeated once; without
    ``force`` the :class:`asyncio.TimeoutError` propagates. Returns True."""
    await request()
    if not wait:
        return True
    try:
        await asyncio.wait_for(ended(), wait)
    except asyncio.TimeoutError:
        if force is None:
            raise
        await force()
        await asyncio.wait_for(ended(), wait)
    return True


class Scheduler(ABC):
    """A batch scheduler's kernel jobs: the resource-manager hooks (methods named as the hooks
    without ``eg_``, for :func:`eg_core.hooks_from`) over the scheduler's commands, which a
    subclass writes (abstract: a subclass that lacks one cannot be instantiated, so a plugin fails
    at import, naming it): :meth:`submit`, :meth:`states`, :meth:`signal_job`, :meth:`cancel_job`,
    and optionally :meth:`account` and :meth:`force_cancel_job`. It sets ``name`` (log lines,
    the shared status query), ``settings_class`` (a :func:`scheduler_settings` subclass, or an instance of one) and
    ``active`` (the states in which something of a job may still run). ``kernel.state["job_id"]``
    is the kernel's job (saved, so an adopting gateway finds it); a signal goes through the
    launcher's comm port, :meth:`signal_job` the fallback; a terminate is the core's default."""

    name = "batch"
    settings_class: type = EnvDefaults
    active: Collection[str] = ()
    succeeded: Collection[str] = ("COMPLETED",)
    kill_wait = 60.0  # seconds eg_kill waits for a cancelled job to end (then force_cancel_job)

    # -- the scheduler's commands ----------------------------------------------------------------

    @abstractmethod
    async def submit(
        self, settings: Any, kernel: KernelContext, argv: list[str], env: dict[str, str], requested: Iterable[str] = ()
    ) -> str:
        """Submit the kernel's job (:func:`job_script` of ``argv``, named :func:`job_name`, its
        output in :func:`output_file`, ``env`` as its environment, ``requested`` (from
        :meth:`request_options`) after the kernelspec's own options); return the job id. Raise
        :class:`SchedulerError` when the scheduler refuses it."""

    def request_options(self, settings: Any, kernel: KernelContext) -> list[str]:
        """The submit options the start request asks for (its allowed ``KERNEL_*`` values),
        checked before anything is submitted: raise :class:`eg_core.BadRequest` (malformed) or
        :class:`eg_core.LaunchRefused` (not allowed) naming the variable. Default: none."""
        return []

    @abstractmethod
    async def states(self, settings: Any) -> dict[str, str]:
        """Job id -> state, for every job of this user the scheduler still knows (one query)."""

    async def account(self, settings: Any, job_id: str) -> str:
        """The scheduler's word on a job (state, reason, exit code), for the exit description."""
        return f"{self.name} job {job_id}"

    @abstractmethod
    async def signal_job(self, settings: Any, job_id: str, signum: int) -> None:
        """Signal the job's processes (when the launcher's comm port does not answer)."""

    @abstractmethod
    async def cancel_job(self, settings: Any, job_id: str) -> None:
        """Ask the scheduler to cancel the job."""

    force_cancel_job: Callable[[Any, str], Awaitable[None]] | None = None  # e.g. ``qdel -f``

    # -- helpers ------------------------------------------------------------------------------

    def settings(self, kernel: KernelContext) -> Any:
        """The kernel's settings: ``settings_class`` with its kernelspec's overrides (400 for a bad one)."""
        return kernelspec_settings(kernel, self.settings_class)

    async def job_ended(self, settings: Any, job_id: str) -> str | None:
        """Wait until the job has ended (:func:`ended`); its last state."""
        return await ended(settings, lambda: self.states(settings), job_id, self.active, self.name)

    async def cancel(self, settings: Any, job_id: str, wait: float) -> bool:
        """Cancel the job and wait up to ``wait`` seconds until it has ended (:func:`cancel`)."""
        force = self.force_cancel_job
        return await cancel(lambda: self.cancel_job(settings, job_id), lambda: self.job_ended(settings, job_id), wait,
                            force=(lambda: force(settings, job_id)) if force else None)

    # -- the resource-manager hooks -------------------------------------------------------------

    async def launch_process(self, kernel: KernelContext, cmd: list[str]) -> None:
        """``eg_launch_process``: check the settings (400) and the request's options
        (:meth:`request_options`), :func:`prepare_launch`, submit."""
        settings = self.settings(kernel)
        requested = self.request_options(settings, kernel)
        argv, env = await prepare_launch(kernel, cmd, settings)
        try:
            kernel.state["job_id"] = await self.submit(settings, kernel, argv, env, requested)
        except SchedulerError as exc:
            raise LaunchFailed("launch_process", str(exc)) from None
        kernel.log.info("%s: submitted job %s", self.name, kernel.state["job_id"])

    async def confirm_startup(self, kernel: KernelContext) -> None:
        """``eg_confirm_startup``: the launcher's callback; the job ending first fails the launch."""
        await remote.wait_for_callback(kernel, exited=self.job_ended(self.settings(kernel), kernel.state["job_id"]))

    async def poll(self, kernel: KernelContext) -> int | None:
        """``eg_poll``: :func:`exit_status` of the job's state."""
        states = await self.states(self.settings(kernel))
        return exit_status(states.get(kernel.state["job_id"]), self.active, self.succeeded)

    async def wait(self, kernel: KernelContext) -> int | None:
        """``eg_wait``: the job's end, on the shared status query."""
        return exit_status(await self.job_ended(self.settings(kernel), kernel.state["job_id"]), self.active, self.succeeded)

    async def send_signal(self, kernel: KernelContext, signum: int) -> None:
        """``eg_send_signal``: through the launcher's comm port, else :meth:`signal_job`."""
        async def fallback(kernel: KernelContext, signum: int) -> None:
            await self.signal_job(self.settings(kernel), kernel.state["job_id"], signum)

        await remote.send_signal(kernel, signum, fallback=fallback)

    async def kill(self, kernel: KernelContext) -> None:
        """``eg_kill``: cancel the job and wait (``kill_wait``) until the scheduler says it ended."""
        if "job_id" in kernel.state:
            try:
                await self.cancel(self.settings(kernel), kernel.state["job_id"], self.kill_wait)
            except (SchedulerError, asyncio.TimeoutError) as exc:
                kernel.log.warning("%s: cancelling job %s: %s", self.name, kernel.state["job_id"], exc or "timed out")

    async def describe_exit(self, kernel: KernelContext) -> str | None:
        """``eg_describe_exit``: :meth:`account` and the end of the job's output file."""
        job_id = kernel.state.get("job_id")
        if job_id is None:
            return None
        settings = self.settings(kernel)
        try:
            text = await self.account(settings, job_id)
        except SchedulerError as exc:
            text = f"{self.name} job {job_id}: {exc}"
        return with_output_tail(text, output_file(settings, kernel))

    async def backend_log(self, kernel: KernelContext, lines: int) -> list[str] | None:
        """``eg_backend_log``: the last ``lines`` lines of the job's output file
        (:func:`output_tail`), None before the job was submitted."""
        if kernel.state.get("job_id") is None:
            return None
        return output_tail(output_file(self.settings(kernel), kernel), lines)


__all__ = [
    "JOB_PREFIX", "SchedulerError", "SchedulerNotInstalled", "scheduler_settings", "run", "prepare_launch",
    "job_script", "job_name", "output_file", "output_tail", "with_output_tail", "exit_status", "ended", "cancel", "Scheduler",
]
