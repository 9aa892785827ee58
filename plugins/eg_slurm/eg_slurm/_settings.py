"""The ``slurm`` resource manager's settings. A kernelspec's ``config`` may override those
tagged ``kernelspec=True``; every value is checked by its trait (a bad one fails the launch with
400 before a job is submitted)."""

from __future__ import annotations

import re

from traitlets import List, TraitError, Unicode, validate

from eg_core.batch import scheduler_settings


class SlurmSettings(scheduler_settings("SLURM", "Slurm", "sbatch, squeue, scontrol, scancel")):
    """Settings of the ``slurm`` resource manager (``--SlurmSettings.<name>``, config file, env);
    ``python``, ``output_dir``, ``poll_interval``, ``command_timeout``, ``gateway_id`` (sbatch
    --comment) and ``orphans_at_startup`` are every batch scheduler's (:mod:`eg_core.batch`)."""

    partition = Unicode("", config=True, help="Partition of kernel jobs ('': the cluster's default).").tag(
        env="EG_SLURM_PARTITION", kernelspec=True)
    sbatch_args = List(Unicode(), config=True, help="More sbatch options of kernel jobs, e.g. ['--time=8:00:00', '--cpus-per-task=2', '--mem=4G', '--account=ml'].").tag(
        env="EG_SLURM_SBATCH_ARGS", kernelspec=True)

    @validate("partition")
    def _partition_name(self, proposal):
        if not re.fullmatch(r"[A-Za-z0-9_.+-]*", proposal["value"]):
            raise TraitError(f"{proposal['value']!r} is not a Slurm partition name")
        return proposal["value"]
