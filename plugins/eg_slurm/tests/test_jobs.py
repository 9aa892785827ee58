"""The Slurm commands behind the hooks, against the real cluster: ``scancel --signal`` (the
fallback when a launcher's comm port does not answer) reaches the job's processes; the job's
environment arrives intact and without ``SBATCH_*`` variables."""

from __future__ import annotations

import asyncio
import signal
import sys
import uuid

from eg_core.testing import kernel_context
from eg_slurm import _jobs
from eg_slurm._settings import SlurmSettings

TRAP = """import os, signal, sys, time
signal.signal(signal.SIGUSR1, lambda *_: (print("got SIGUSR1", os.environ["NOTE"], "SBATCH_EXPORT" in os.environ, flush=True), sys.exit(0)))
print("ready", flush=True)
time.sleep(120)
"""


async def test_scancel_signal_and_environment(tmp_path):
    settings = SlurmSettings(output_dir=str(tmp_path), poll_interval=0.5)
    kernel = kernel_context(kernel_id=str(uuid.uuid4()))
    env = {"PATH": "/usr/bin:/bin", "NOTE": "it's; $(x) `y`", "SBATCH_EXPORT": "NONE"}
    jobs = _jobs.Slurm()
    job_id = await jobs.submit(settings, kernel, [sys.executable, "-c", TRAP], env)
    output = tmp_path / f"eg-kernel-{kernel.kernel_id}.log"
    try:
        for _ in range(600):
            if output.exists() and "ready" in output.read_text():
                break
            await asyncio.sleep(0.1)
        await jobs.signal_job(settings, job_id, signal.SIGUSR1)
        assert await asyncio.wait_for(jobs.job_ended(settings, job_id), 60) == "COMPLETED"
        assert "got SIGUSR1 it's; $(x) `y` False" in output.read_text()
    finally:
        await _jobs.run(settings, "scancel", job_id)
