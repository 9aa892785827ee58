"""Kernel jobs on Slurm: submitted with ``sbatch``, read with ``scontrol``/``squeue``, signalled
and cancelled with ``scancel``. Every command runs without a shell, within ``command_timeout``."""

from __future__ import annotations

import asyncio
import os
import shlex
import signal
from pathlib import Path

from eg_core import KernelContext

from ._settings import SlurmSettings

JOB_PREFIX = "eg-kernel-"
# Job states in which something of the job may still run (COMPLETING: its processes are ending).
ACTIVE = {"PENDING", "CONFIGURING", "RUNNING", "COMPLETING", "SUSPENDED", "REQUEUED", "RESIZING", "SIGNALING", "STAGE_OUT", "STOPPED"}
_GATEWAY_ENV = ("PATH", "HOME", "USER", "LOGNAME", "LANG", "SLURM_CONF")


class SlurmError(Exception):
    """A Slurm command failed, timed out or is not installed."""


async def run(settings: SlurmSettings, *argv: str, stdin: str | None = None, env: dict | None = None) -> str:
    """Run one Slurm command; returns its stdout, raises :class:`SlurmError` with its stderr."""
    try:
        proc = await asyncio.create_subprocess_exec(
            *argv, env=env, stdin=asyncio.subprocess.PIPE if stdin is not None else asyncio.subprocess.DEVNULL,
            stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)
    except FileNotFoundError:
        raise SlurmError(f"{argv[0]} not found on PATH: install Slurm's client commands") from None
    try:
        out, err = await asyncio.wait_for(proc.communicate(stdin.encode() if stdin is not None else None), settings.command_timeout)
    except asyncio.TimeoutError:
        proc.kill()
        await proc.wait()
        raise SlurmError(f"{argv[0]} did not answer within {settings.command_timeout:g}s") from None
    if proc.returncode:
        raise SlurmError(f"{argv[0]} failed: {(err or out).decode(errors='replace').strip().splitlines()[0]}")
    return out.decode(errors="replace")


def output_file(settings: SlurmSettings, kernel: KernelContext) -> str:
    return str(Path(settings.output_dir) / f"{JOB_PREFIX}{kernel.kernel_id}.log")


async def submit(settings: SlurmSettings, kernel: KernelContext, argv: list[str], env: dict[str, str]) -> str:
    """Submit the kernel's job: a batch script that execs ``argv``; ``env`` reaches it through
    sbatch's environment (never the script). Returns the job id."""
    options = [f"--job-name={JOB_PREFIX}{kernel.kernel_id}", f"--output={output_file(settings, kernel)}",
               f"--cpus-per-task={settings.cpus}"]
    options += [f"--{flag}={value}" for flag, value in
                (("partition", settings.partition), ("time", settings.time_limit), ("mem", settings.memory)) if value]
    if kernel.cwd:
        options.append(f"--chdir={kernel.cwd}")
    # sbatch reads options from SBATCH_* variables: the kernel's environment must not set them.
    job_env = {k: v for k, v in env.items() if not k.startswith(("SBATCH_", "SLURM_"))}
    job_env.update({k: os.environ[k] for k in _GATEWAY_ENV if k in os.environ})
    script = "#!/bin/sh\nexec " + " ".join(shlex.quote(arg) for arg in argv) + "\n"
    out = await run(settings, "sbatch", "--parsable", *options, *settings.sbatch_args, stdin=script, env=job_env)
    return out.strip().split(";")[0]


async def state(settings: SlurmSettings, job_id: str) -> tuple[str, str, int]:
    """The job's state, reason and exit status; a job Slurm no longer knows counts as ended."""
    try:
        out = await run(settings, "scontrol", "--oneliner", "show", "job", job_id)
    except SlurmError as exc:
        if "Invalid job id" in str(exc):
            return "GONE", "no longer known to Slurm", 0
        raise
    fields = dict(f.split("=", 1) for f in out.split() if "=" in f)
    code, _, by_signal = fields.get("ExitCode", "0:0").partition(":")
    status = 128 + int(by_signal) if by_signal and by_signal != "0" else int(code or 0)
    return fields.get("JobState", "UNKNOWN"), fields.get("Reason", ""), status


async def ended(settings: SlurmSettings, job_id: str) -> str:
    """Wait (checking every ``poll_interval``) until the job has ended; returns what Slurm says."""
    while (found := await state(settings, job_id))[0] in ACTIVE:
        await asyncio.sleep(settings.poll_interval)
    job_state, reason, status = found
    return f"Slurm job {job_id} ended: {job_state} ({reason}), exit status {status}"


async def send_signal(settings: SlurmSettings, job_id: str, signum: int) -> None:
    """Signal the batch step and all its processes (``scancel --full --signal``)."""
    await run(settings, "scancel", "--full", f"--signal={signal.Signals(signum).name[3:]}", job_id)


async def cancel(settings: SlurmSettings, job_id: str, wait: float) -> None:
    """Cancel the job and wait up to ``wait`` seconds for its processes to end."""
    await run(settings, "scancel", job_id)
    await asyncio.wait_for(ended(settings, job_id), wait)


async def kernel_jobs(settings: SlurmSettings) -> dict[str, str]:
    """The active kernel jobs of this user: kernel id -> job id."""
    out = await run(settings, "squeue", "--noheader", "--me", "--format=%i %j")
    jobs = (line.split(None, 1) for line in out.splitlines() if line.strip())
    return {name[len(JOB_PREFIX):]: job_id for job_id, name in jobs if name.startswith(JOB_PREFIX)}


async def partitions(settings: SlurmSettings) -> dict[str, str]:
    """Partition name -> availability (``up``...); the default partition is also under ``""``."""
    out = await run(settings, "sinfo", "--noheader", "--format=%P %a")
    found = {}
    for name, available in (line.split() for line in out.splitlines() if line.strip()):
        found[name.rstrip("*")] = available
        if name.endswith("*"):
            found[""] = available
    return found
