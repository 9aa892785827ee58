"""The ``slurm`` resource manager: each kernel is a Slurm batch job running eg's launcher.

The job script execs the kernelspec's argv (``python`` and ``{launcher}`` filled in); the
kernel's environment reaches the job through sbatch's environment, its launch key through a 0600
file in ``output_dir`` that the environment names (Slurm keeps a job's environment and may show
it). The
launcher calls back to the gateway's response address; signals (and a terminate request, SIGTERM)
go through its comm port, with ``scancel --full --signal`` as the fallback; a kill is ``scancel``. ``kernel.state["job_id"]``
is the job (saved, so an adopting gateway finds it).
"""

from __future__ import annotations

import asyncio
from pathlib import Path

from eg_core import LaunchFailed, batch, hookimpl, orphans, provisioner_for, remote
from eg_core.config import kernelspec_settings

from . import _jobs, _request
from ._jobs import SlurmError
from ._settings import SlurmSettings

SlurmProvisioner = provisioner_for("slurm")


def _settings(kernel):
    return kernelspec_settings(kernel, SlurmSettings)


async def _scancel_signal(kernel, signum):
    await _jobs.send_signal(_settings(kernel), kernel.state["job_id"], signum)


@hookimpl
def eg_configurables():
    return [SlurmSettings]


@hookimpl
def eg_kernelspec_dirs():
    return [str(Path(__file__).parent / "kernelspecs")]


@hookimpl
async def eg_launch_process(kernel, cmd):
    """Submit the kernel's job (settings are checked first: a bad one fails with 400)."""
    settings = _settings(kernel)
    requested = _request.sbatch_options(_request.requested(kernel, settings))
    # The key goes in a file only the job's user (this gateway's) can read, in the directory the
    # nodes share with the gateway; the job's environment (scontrol show job -d, sacct) names it.
    argv, env = await batch.prepare_launch(kernel, cmd, settings)
    try:
        kernel.state["job_id"] = await _jobs.submit(settings, kernel, argv, env, requested)
    except SlurmError as exc:
        raise LaunchFailed("launch_process", str(exc)) from None
    kernel.log.info("slurm: submitted job %s", kernel.state["job_id"])


@hookimpl
def eg_launch_parameters(kernel):
    """What a request may set of this kernelspec's jobs (``metadata.parameters``)."""
    return _request.launch_parameters(kernel, _settings(kernel))


@hookimpl
def eg_requested_resources(kernel):
    """What the request asks of the job (its allowed KERNEL_CPUS, KERNEL_MEMORY in MB,
    KERNEL_GPUS): for resource quotas."""
    return _request.requested_resources(_request.requested(kernel, _settings(kernel)))


@hookimpl
async def eg_confirm_startup(kernel):
    """Wait for the launcher's callback; fail as soon as the job ends (or never starts)."""
    await remote.wait_for_callback(kernel, exited=_jobs.ended(_settings(kernel), kernel.state["job_id"]))


@hookimpl
async def eg_poll(kernel):
    return batch.exit_status((await _jobs.states(_settings(kernel))).get(kernel.state["job_id"]), _jobs.ACTIVE)


@hookimpl
async def eg_wait(kernel):
    """Wait on the shared squeue poller until the job has ended."""
    return batch.exit_status(await _jobs.ended(_settings(kernel), kernel.state["job_id"]), _jobs.ACTIVE)


@hookimpl
async def eg_send_signal(kernel, signum):
    await remote.send_signal(kernel, signum, fallback=_scancel_signal)


@hookimpl
async def eg_kill(kernel):
    """Cancel the job and wait until Slurm says it has ended."""
    if "job_id" in kernel.state:
        try:
            await _jobs.cancel(_settings(kernel), kernel.state["job_id"], wait=60.0)
        except (SlurmError, asyncio.TimeoutError) as exc:
            kernel.log.warning("slurm: cancelling job %s: %s", kernel.state["job_id"], exc or "timed out")


@hookimpl
async def eg_describe_exit(kernel):
    """Slurm's account of the job, and the end of its output file."""
    return await _jobs.describe(_settings(kernel), kernel.state.get("job_id"), kernel)


@hookimpl
async def eg_reconcile(known_kernel_ids):
    """At startup: this gateway's kernel jobs that no kernel owns, logged or cancelled."""
    settings = SlurmSettings.instance()
    cancel = lambda job: _jobs.cancel(settings, job.id, wait=0)  # noqa: E731
    await orphans.sweep("slurm", known_kernel_ids, lambda: _jobs.kernel_jobs(settings), cancel, policy=settings.orphans_at_startup)


@hookimpl
async def eg_doctor(kernels):
    """The controller answers; each Slurm kernelspec's settings and partition are usable."""
    from . import _doctor

    return await _doctor.checks(kernels)
