"""Fixtures for eg-slurm's tests: the one-node Slurm cluster of ``ci/setup.sh`` (started here
when it is not running) and the tests' kernelspecs."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

SETUP = Path(__file__).parents[1] / "ci" / "setup.sh"


@pytest.fixture(scope="session", autouse=True)
def slurm_cluster():
    """A running Slurm cluster (idempotent setup: returns at once when it already runs)."""
    subprocess.run(["bash", str(SETUP)], check=True)


@pytest.fixture(scope="module")
def kernel_spec_dirs():
    return [str(Path(__file__).parent / "kernelspecs")]


@pytest.fixture
def slurm_probe():
    """The conformance suite's probe: see :func:`jobs_of_kernel`."""
    return jobs_of_kernel


@pytest.fixture
def kernel_jobs():
    """``kernel_jobs(kernel_id)``: the kernel's Slurm jobs in a state where something of them
    may still run."""
    return _kernel_jobs


async def jobs_of_kernel(kernel_id: str) -> list[str]:
    """What Slurm and this machine still hold for a kernel: its jobs that may still run, and
    processes with its KERNEL_ID (the one node is this machine): the conformance suite's probe."""
    from eg_core.testing import processes_of_kernel

    return _kernel_jobs(kernel_id) + await processes_of_kernel(kernel_id)


def _kernel_jobs(kernel_id: str) -> list[str]:
    out = subprocess.run(
        ["squeue", "--noheader", "--states=all", "--format=%i %j %T"], capture_output=True, text=True, check=True
    ).stdout
    active = {"PENDING", "CONFIGURING", "RUNNING", "COMPLETING", "SUSPENDED", "SIGNALING", "STOPPED"}
    return [line for line in out.splitlines() if f"eg-kernel-{kernel_id}" in line and line.split()[-1] in active]
