"""Kernel jobs on Slurm: submitted with ``sbatch``, watched with ``squeue`` (one query for all
jobs, :func:`eg_core.batch.ended`), described by ``scontrol``, signalled and cancelled with
``scancel``. Every command runs without a shell, within ``command_timeout``
(:func:`eg_core.batch.run`)."""

from __future__ import annotations

import signal

from eg_core import KernelContext, batch
from eg_core.batch import JOB_PREFIX, run
from eg_core.batch import SchedulerError as SlurmError
from eg_core.batch import SchedulerNotInstalled as SlurmNotInstalled
from eg_core.orphans import Resource

from ._settings import SlurmSettings

__all__ = ["JOB_PREFIX", "ACTIVE", "SlurmError", "SlurmNotInstalled", "run", "submit", "states", "ended", "describe", "send_signal", "cancel", "kernel_jobs"]

# States in which something of a job may still run (COMPLETING: its processes are ending).
ACTIVE = {"PENDING", "CONFIGURING", "RUNNING", "COMPLETING", "SUSPENDED", "REQUEUED", "RESIZING", "SIGNALING", "STAGE_OUT", "STOPPED"}


async def submit(settings: SlurmSettings, kernel: KernelContext, argv: list[str], env: dict[str, str], requested: list[str] = ()) -> str:
    """Submit the kernel's job, a script that execs ``argv``; ``env`` reaches the job through
    sbatch's environment, never the script; ``requested`` (the request's checked options) come
    last, over the kernelspec's ``sbatch_args``. Returns the job id."""
    options = {"job-name": batch.job_name(kernel), "comment": f"eg-gateway:{settings.gateway_id}",
               "output": batch.output_file(settings, kernel), "partition": settings.partition, "chdir": kernel.cwd}
    # sbatch takes options from SBATCH_* variables, which must not come from a kernel's request.
    env = {k: v for k, v in env.items() if not k.startswith(("SBATCH_", "SLURM_")) or k == "SLURM_CONF"}
    out = await run(settings, "sbatch", "--parsable", *(f"--{k}={v}" for k, v in options.items() if v),
                    *settings.sbatch_args, *requested, input=batch.job_script(argv), env=env)
    return out.strip().split(";")[0]


async def states(settings: SlurmSettings) -> dict[str, str]:
    """Job id -> state, for this user's jobs that Slurm still knows."""
    out = await run(settings, "squeue", "--noheader", "--me", "--states=all", "--format=%i %T")
    return dict(line.split() for line in out.splitlines() if line.strip())


async def ended(settings: SlurmSettings, job_id: str) -> str | None:
    """Wait until the job has ended (one squeue for all waiting kernels per ``poll_interval``);
    returns its last state (``None``: Slurm no longer knows it)."""
    return await batch.ended(settings, lambda: states(settings), job_id, ACTIVE, "slurm")


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
    return batch.with_output_tail(text, batch.output_file(settings, kernel) if kernel else None)


async def send_signal(settings: SlurmSettings, job_id: str, signum: int) -> None:
    """Signal the batch step and all its processes (``scancel --full --signal``)."""
    await run(settings, "scancel", "--full", f"--signal={signal.Signals(signum).name[3:]}", job_id)


async def cancel(settings: SlurmSettings, job_id: str, wait: float) -> bool:
    """Cancel the job; wait up to ``wait`` seconds until it has ended."""
    return await batch.cancel(lambda: run(settings, "scancel", job_id), lambda: ended(settings, job_id), wait)


async def kernel_jobs(settings: SlurmSettings) -> list[Resource]:
    """This gateway's kernel jobs that may still run (for the orphan sweep)."""
    out = await run(settings, "squeue", "--noheader", "--me", "--format=%i|%j|%T|%k")
    jobs = [line.split("|", 3) for line in out.splitlines() if line.strip()]
    return [Resource("job", job_id, name, name[len(JOB_PREFIX):], state) for job_id, name, state, comment in jobs
            if name.startswith(JOB_PREFIX) and comment == f"eg-gateway:{settings.gateway_id}"]
