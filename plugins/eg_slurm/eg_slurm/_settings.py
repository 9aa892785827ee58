"""The ``slurm`` resource manager's settings. A kernelspec's ``config`` may override those
tagged ``kernelspec=True``; every value is checked by its trait (a bad one fails the launch with
400 before a job is submitted)."""

from __future__ import annotations

import re

from traitlets import Integer, List, TraitError, Unicode, validate

from eg_core.batch import scheduler_settings


class SlurmSettings(scheduler_settings("SLURM", "Slurm", "sbatch, squeue, scontrol, scancel")):
    """Settings of the ``slurm`` resource manager (``--SlurmSettings.<name>``, config file, env);
    ``python``, ``output_dir``, ``poll_interval``, ``command_timeout``, ``gateway_id`` (sbatch
    --comment) and ``orphans_at_startup`` are every batch scheduler's (:mod:`eg_core.batch`)."""

    partition = Unicode("", config=True, help="Partition of kernel jobs ('': the cluster's default).").tag(
        env="EG_SLURM_PARTITION", kernelspec=True)
    sbatch_args = List(Unicode(), config=True, help="More sbatch options of kernel jobs, e.g. ['--time=8:00:00', '--cpus-per-task=2', '--mem=4G', '--account=ml'].").tag(
        env="EG_SLURM_SBATCH_ARGS", kernelspec=True)

    request_overrides = List(Unicode(), ["cpus", "memory", "gpus"], config=True, help="What a request may set of its job: cpus (KERNEL_CPUS, --cpus-per-task), memory (KERNEL_MEMORY, --mem), gpus (KERNEL_GPUS, --gpus), partition (KERNEL_PARTITION; allowed_partitions opens it for the partitions it names). A request value for anything else is refused (403).").tag(
        kernelspec=True)
    allowed_partitions = List(Unicode(), config=True, help="Partitions (fnmatch patterns) a request may name with KERNEL_PARTITION.").tag(kernelspec=True)
    max_cpus = Integer(0, config=True, help="Most CPUs a request may ask for (0: no limit).")
    max_memory = Unicode("", config=True, help="Most memory a request may ask for, e.g. 8G (empty: no limit).")
    max_gpus = Integer(0, config=True, help="Most GPUs a request may ask for (0: no limit).")

    @validate("partition")
    def _partition_name(self, proposal):
        if not re.fullmatch(r"[A-Za-z0-9_.+-]*", proposal["value"]):
            raise TraitError(f"{proposal['value']!r} is not a Slurm partition name")
        return proposal["value"]
