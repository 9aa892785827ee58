"""The ``slurm`` resource manager: each kernel is a Slurm batch job running eg's launcher.

The job script execs the kernelspec's argv (``python`` and ``{launcher}`` filled in); the
kernel's environment reaches the job through sbatch's environment, its launch key through a 0600
file in ``output_dir`` that the environment names (Slurm keeps a job's environment and may show
it). The launcher calls back to the gateway's response address; signals (and a terminate request,
SIGTERM) go through its comm port, with ``scancel --full --signal`` as the fallback; a kill is
``scancel``. ``kernel.state["job_id"]`` is the job (saved, so an adopting gateway finds it). The
resource-manager hooks are :class:`eg_slurm._jobs.Slurm`'s (:class:`eg_core.batch.Scheduler`).
"""

from __future__ import annotations

from pathlib import Path

from eg_core import hookimpl, hooks_from, orphans, provisioner_for

from . import _request
from ._jobs import Slurm
from ._settings import SlurmSettings

SlurmProvisioner = provisioner_for("slurm")
JOBS = Slurm()

globals().update(hooks_from(JOBS))


@hookimpl
def eg_configurables():
    return [SlurmSettings]


@hookimpl
def eg_kernelspec_dirs():
    return [str(Path(__file__).parent / "kernelspecs")]


@hookimpl
def eg_launch_parameters(kernel):
    """What a request may set of this kernelspec's jobs (``metadata.parameters``)."""
    return _request.launch_parameters(kernel, JOBS.settings(kernel))


@hookimpl
def eg_requested_resources(kernel):
    """What the request asks of the job (its allowed KERNEL_CPUS, KERNEL_MEMORY in MB,
    KERNEL_GPUS): for resource quotas."""
    return _request.requested_resources(_request.requested(kernel, JOBS.settings(kernel)))


@hookimpl
async def eg_reconcile(known_kernel_ids):
    """At startup: this gateway's kernel jobs that no kernel owns, logged or cancelled."""
    settings = SlurmSettings.instance()
    cancel = lambda job: JOBS.cancel(settings, job.id, wait=0)  # noqa: E731
    await orphans.sweep("slurm", known_kernel_ids, lambda: JOBS.kernel_jobs(settings), cancel, policy=settings.orphans_at_startup)


@hookimpl
async def eg_doctor(kernels):
    """The controller answers; each Slurm kernelspec's settings and partition are usable."""
    from . import _doctor

    return await _doctor.checks(kernels)
