"""``eg-gateway doctor`` for Slurm: the controller answers, each kernelspec's settings are
valid and its partition is up."""

from __future__ import annotations

from eg_core.config import kernelspec_settings
from eg_core.doctor import Check, each_kernelspec

from . import _jobs
from ._settings import SlurmSettings


async def _partitions(settings: SlurmSettings) -> dict[str, str]:
    """Partition name -> availability (``up``...); the default partition also under ``""``."""
    found = {}
    for name, available in (line.split() for line in (await _jobs.run(settings, "sinfo", "--noheader", "--format=%P %a")).splitlines() if line.strip()):
        found[name.rstrip("*")] = available
        if name.endswith("*"):
            found[""] = available
    return found


async def checks(kernels) -> list[Check]:
    settings = SlurmSettings.instance()
    fix = "start slurmctld and munged on slurm.conf's SlurmctldHost, or set SLURM_CONF to the cluster's slurm.conf"
    try:
        answer, up = (await _jobs.run(settings, "scontrol", "ping")).strip(), True
    except _jobs.SlurmNotInstalled as exc:
        answer, up = str(exc), False
        fix = "install Slurm's client commands (scontrol, sinfo, sbatch, squeue, scancel) on the gateway's host, on its PATH"
    except _jobs.SlurmError as exc:
        answer, up = str(exc), False
    found = [Check("controller", up, answer, fix)]
    if not up:
        return found
    partitions = await _partitions(settings)
    for _, what, ks in each_kernelspec(kernels, lambda kernel: kernelspec_settings(kernel, SlurmSettings), found):
        partition = ks.partition
        state = partitions.get(partition, "unknown")
        name = partition or "(default)"
        choices = ", ".join(sorted(p for p in partitions if p))
        found.append(Check(what, state == "up", f"partition {name} is {state}", f"use a partition that is up ({choices}), or bring it up (scontrol update PartitionName={name} State=UP)"))
    return found
