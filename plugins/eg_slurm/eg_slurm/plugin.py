"""The ``slurm`` resource manager: each kernel is a Slurm batch job running eg's launcher.

The job script execs the kernelspec's argv (``python`` and ``{launcher}`` filled in); the
kernel's environment and its launch key reach the job through sbatch's environment. The
launcher calls back to the gateway's response address; interrupts and other signals go through
``scancel --full --signal``, a kill is ``scancel``. ``kernel.state["job_id"]`` is the job.
"""

from __future__ import annotations

import asyncio

from eg_core import LaunchFailed, hookimpl, provisioner_for, remote

from . import _jobs
from ._jobs import SlurmError
from ._settings import SlurmSettings, resolve

SlurmProvisioner = provisioner_for("slurm")
_KILL_WAIT = 30.0


def _argv(cmd: list[str], python: str) -> list[str]:
    argv = [remote.launcher_path() if arg == "{launcher}" else arg for arg in cmd]
    return [python, *argv[1:]] if argv and argv[0] in ("python", "python3") else argv


@hookimpl
def eg_configurables():
    return [SlurmSettings]


@hookimpl
async def eg_launch_process(kernel, cmd):
    """Submit the kernel's job (settings are checked first: a bad one fails with 400)."""
    settings = resolve(kernel)
    kernel.state.pop("job_id", None)
    launch_key = await remote.expect_callback(kernel)
    env = {**kernel.env, "EG_LAUNCH_KEY": launch_key}
    try:
        kernel.state["job_id"] = await _jobs.submit(settings, kernel, _argv(cmd, settings.python), env)
    except SlurmError as exc:
        raise LaunchFailed("launch_process", str(exc)) from None
    kernel.log.info("slurm: submitted job %s", kernel.state["job_id"])


@hookimpl
async def eg_confirm_startup(kernel):
    """Wait for the launcher's callback; fail as soon as the job ends (or never starts)."""
    await remote.wait_for_callback(kernel, exited=_jobs.ended(resolve(kernel), kernel.state["job_id"]))


@hookimpl
def eg_connection_info(kernel):
    return kernel.connection_info


@hookimpl
async def eg_poll(kernel):
    job_state, _, status = await _jobs.state(resolve(kernel), kernel.state["job_id"])
    return None if job_state in _jobs.ACTIVE else status


@hookimpl
async def eg_send_signal(kernel, signum):
    if signum and "job_id" in kernel.state:
        await _jobs.send_signal(resolve(kernel), kernel.state["job_id"], signum)


@hookimpl
async def eg_kill(kernel):
    """Cancel the job and wait until Slurm says its processes have ended."""
    if "job_id" in kernel.state:
        try:
            await _jobs.cancel(resolve(kernel), kernel.state["job_id"], _KILL_WAIT)
        except (SlurmError, asyncio.TimeoutError) as exc:
            kernel.log.warning("slurm: cancelling job %s: %s", kernel.state["job_id"], exc or "timed out")


@hookimpl
def eg_cleanup(kernel):
    remote.forget(kernel)


@hookimpl
async def eg_describe_exit(kernel):
    """Slurm's account of the job, and the end of its output file."""
    if "job_id" not in kernel.state:
        return None
    settings = resolve(kernel)
    job_state, reason, status = await _jobs.state(settings, kernel.state["job_id"])
    text = f"Slurm job {kernel.state['job_id']}: {job_state} ({reason}), exit status {status}"
    try:
        with open(_jobs.output_file(settings, kernel), errors="replace") as f:
            tail = f.readlines()[-20:]
    except OSError:
        tail = []
    return text + ("; its output ends with:\n" + "".join(tail) if tail else "")


@hookimpl
async def eg_doctor(kernels):
    """The controller answers; each Slurm kernelspec's settings and partition are usable."""
    from . import _doctor

    return await _doctor.checks(kernels)
