"""Kernel jobs on Slurm: submitted with ``sbatch``, watched with ``squeue`` (one query for all
jobs, :class:`eg_core.poller.StatusPoller`), described by ``scontrol``, signalled and cancelled
with ``scancel``. Every command runs without a shell, within ``command_timeout``."""

from __future__ import annotations

import asyncio
import shlex
import signal
from pathlib import Path

from eg_core import KernelContext, process
from eg_core.orphans import Resource
from eg_core.poller import StatusPoller

from ._settings import SlurmSettings

JOB_PREFIX = "eg-kernel-"
# States in which something of a job may still run (COMPLETING: its processes are ending).
ACTIVE = {"PENDING", "CONFIGURING", "RUNNING", "COMPLETING", "SUSPENDED", "REQUEUED", "RESIZING", "SIGNALING", "STAGE_OUT", "STOPPED"}


class SlurmError(Exception):
    """A Slurm command failed, timed out or is not installed."""


class SlurmNotInstalled(SlurmError):
    """A Slurm command is not on the gateway's PATH (Slurm's client commands are not installed)."""


async def run(settings: SlurmSettings, *argv: str, input: str | None = None, env: dict | None = None) -> str:
    """Run one Slurm command; returns its stdout, raises :class:`SlurmError` saying why not."""
    try:
        done = await process.run(argv, timeout=settings.command_timeout, input=input, env=env)
    except FileNotFoundError:
        raise SlurmNotInstalled(f"{argv[0]} is not found on the gateway's PATH") from None
    except (process.CommandTimeout, OSError) as exc:
        raise SlurmError(f"{argv[0]}: {exc}") from None
    if done.returncode:
        raise SlurmError(done.explain())
    return done.stdout


async def submit(settings: SlurmSettings, kernel: KernelContext, argv: list[str], env: dict[str, str]) -> str:
    """Submit the kernel's job, a script that execs ``argv``; ``env`` reaches the job through
    sbatch's environment, never the script. Returns the job id."""
    options = {"job-name": f"{JOB_PREFIX}{kernel.kernel_id}", "comment": f"eg-gateway:{settings.gateway_id}",
               "output": Path(settings.output_dir) / f"{JOB_PREFIX}{kernel.kernel_id}.log", "partition": settings.partition, "chdir": kernel.cwd}
    # sbatch takes options from SBATCH_* variables, which must not come from a kernel's request.
    env = {k: v for k, v in env.items() if not k.startswith(("SBATCH_", "SLURM_")) or k == "SLURM_CONF"}
    script = "#!/bin/sh\nexec " + " ".join(shlex.quote(arg) for arg in argv) + "\n"
    out = await run(settings, "sbatch", "--parsable", *(f"--{k}={v}" for k, v in options.items() if v),
                    *settings.sbatch_args, input=script, env=env)
    return out.strip().split(";")[0]


async def states(settings: SlurmSettings) -> dict[str, str]:
    """Job id -> state, for this user's jobs that Slurm still knows."""
    out = await run(settings, "squeue", "--noheader", "--me", "--states=all", "--format=%i %T")
    return dict(line.split() for line in out.splitlines() if line.strip())


async def ended(settings: SlurmSettings, job_id: str) -> str | None:
    """Wait until the job has ended (one squeue for all waiting kernels per ``poll_interval``);
    returns its last state (``None``: Slurm no longer knows it)."""
    poller = StatusPoller.shared(settings.poll_interval, lambda _: states(settings), settings.poll_interval, "slurm")
    return await poller.wait_until(job_id, lambda state: state not in ACTIVE)


async def describe(settings: SlurmSettings, job_id: str | None, kernel: KernelContext | None = None) -> str | None:
    """The job's state, reason and exit code as ``scontrol`` says them, and the end of the
    kernel's output file."""
    if job_id is None:
        return None
    try:
        fields = dict(f.split("=", 1) for f in (await run(settings, "scontrol", "--oneliner", "show", "job", job_id)).split() if "=" in f)
        text = f"Slurm job {job_id}: {fields.get('JobState')} ({fields.get('Reason')}), exit code {fields.get('ExitCode')}"
    except SlurmError as exc:
        text = f"Slurm job {job_id}: {exc}"
    output = Path(settings.output_dir) / f"{JOB_PREFIX}{kernel.kernel_id}.log" if kernel else None
    tail = output.read_text(errors="replace").splitlines()[-20:] if output and output.exists() else []
    return text + ("; its output ends with:\n" + "\n".join(tail) if tail else "")


async def send_signal(settings: SlurmSettings, job_id: str, signum: int) -> None:
    """Signal the batch step and all its processes (``scancel --full --signal``)."""
    await run(settings, "scancel", "--full", f"--signal={signal.Signals(signum).name[3:]}", job_id)


async def cancel(settings: SlurmSettings, job_id: str, wait: float) -> bool:
    """Cancel the job; wait up to ``wait`` seconds until it has ended."""
    await run(settings, "scancel", job_id)
    if wait:
        await asyncio.wait_for(ended(settings, job_id), wait)
    return True


async def kernel_jobs(settings: SlurmSettings) -> list[Resource]:
    """This gateway's kernel jobs that may still run (for the orphan sweep)."""
    out = await run(settings, "squeue", "--noheader", "--me", "--format=%i|%j|%T|%k")
    jobs = [line.split("|", 3) for line in out.splitlines() if line.strip()]
    return [Resource("job", job_id, name, name[len(JOB_PREFIX):], state) for job_id, name, state, comment in jobs
            if name.startswith(JOB_PREFIX) and comment == f"eg-gateway:{settings.gateway_id}"]
