"""Kernel jobs on Slurm: submitted with ``sbatch``, watched with ``squeue`` (one query for all
jobs), described by ``scontrol``, signalled and cancelled with ``scancel``. Every command runs
without a shell, within ``command_timeout`` (:func:`eg_core.batch.run`); the hooks over these
commands are :class:`eg_core.batch.Scheduler`'s."""

from __future__ import annotations

import signal
from collections.abc import Iterable

from eg_core import KernelContext, batch
from eg_core.batch import JOB_PREFIX, run
from eg_core.batch import SchedulerError as SlurmError
from eg_core.batch import SchedulerNotInstalled as SlurmNotInstalled
from eg_core.orphans import Resource

from . import _request
from ._settings import SlurmSettings

__all__ = ["JOB_PREFIX", "SlurmError", "SlurmNotInstalled", "run", "Slurm"]


class Slurm(batch.Scheduler):
    """The ``slurm`` resource manager's kernel jobs (``kernel.state["job_id"]``)."""

    name, settings_class = "slurm", SlurmSettings
    # States in which something of a job may still run (COMPLETING: its processes are ending).
    active = {"PENDING", "CONFIGURING", "RUNNING", "COMPLETING", "SUSPENDED", "REQUEUED", "RESIZING", "SIGNALING", "STAGE_OUT", "STOPPED"}

    def request_options(self, settings: SlurmSettings, kernel: KernelContext) -> list[str]:
        """The request's partition, CPUs, memory and GPUs (where allowed), as sbatch options."""
        return _request.sbatch_options(_request.requested(kernel, settings))

    async def submit(
        self, settings: SlurmSettings, kernel: KernelContext, argv: list[str], env: dict[str, str], requested: Iterable[str] = ()
    ) -> str:
        """``sbatch`` a script that execs ``argv``; ``env`` reaches the job through sbatch's
        environment, never the script; ``requested`` comes after the kernelspec's ``sbatch_args``."""
        options = {"job-name": batch.job_name(kernel), "comment": f"eg-gateway:{settings.gateway_id}",
                   "output": batch.output_file(settings, kernel), "partition": settings.partition, "chdir": kernel.cwd}
        # sbatch takes options from SBATCH_* variables, which must not come from a kernel's request.
        env = {k: v for k, v in env.items() if not k.startswith(("SBATCH_", "SLURM_")) or k == "SLURM_CONF"}
        out = await run(settings, "sbatch", "--parsable", *(f"--{k}={v}" for k, v in options.items() if v),
                        *settings.sbatch_args, *requested, input=batch.job_script(argv), env=env)
        return out.strip().split(";")[0]

    async def states(self, settings: SlurmSettings) -> dict[str, str]:
        out = await run(settings, "squeue", "--noheader", "--me", "--states=all", "--format=%i %T")
        return dict(line.split() for line in out.splitlines() if line.strip())

    async def account(self, settings: SlurmSettings, job_id: str) -> str:
        """The job's state, reason and exit code as ``scontrol`` says them."""
        fields = dict(f.split("=", 1) for f in (await run(settings, "scontrol", "--oneliner", "show", "job", job_id)).split() if "=" in f)
        return f"Slurm job {job_id}: {fields.get('JobState')} ({fields.get('Reason')}), exit code {fields.get('ExitCode')}"

    async def signal_job(self, settings: SlurmSettings, job_id: str, signum: int) -> None:
        """Signal the batch step and all its processes (``scancel --full --signal``)."""
        await run(settings, "scancel", "--full", f"--signal={signal.Signals(signum).name[3:]}", job_id)

    async def cancel_job(self, settings: SlurmSettings, job_id: str) -> None:
        await run(settings, "scancel", job_id)

    async def kernel_jobs(self, settings: SlurmSettings) -> list[Resource]:
        """This gateway's kernel jobs that may still run (for the orphan sweep)."""
        out = await run(settings, "squeue", "--noheader", "--me", "--format=%i|%j|%T|%k")
        jobs = [line.split("|", 3) for line in out.splitlines() if line.strip()]
        return [Resource("job", job_id, name, name[len(JOB_PREFIX):], state) for job_id, name, state, comment in jobs
                if name.startswith(JOB_PREFIX) and comment == f"eg-gateway:{settings.gateway_id}"]
