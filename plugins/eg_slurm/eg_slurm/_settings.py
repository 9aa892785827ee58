"""The ``slurm`` resource manager's settings. A kernelspec's ``config`` may override those
tagged ``kernelspec=True``; every value is checked by its trait (a bad one fails the launch with
400 before a job is submitted)."""

from __future__ import annotations

import re
import sys
import tempfile

from traitlets import Enum, Float, List, TraitError, Unicode, validate
from traitlets.config import SingletonConfigurable

from eg_core.config import EnvDefaults



class SlurmSettings(EnvDefaults, SingletonConfigurable):
    """Settings of the ``slurm`` resource manager (``--SlurmSettings.<name>``, config file, env)."""

    partition = Unicode("", config=True, help="Partition of kernel jobs ('': the cluster's default).").tag(
        env="EG_SLURM_PARTITION", kernelspec=True)
    sbatch_args = List(Unicode(), config=True, help="More sbatch options of kernel jobs, e.g. ['--time=8:00:00', '--cpus-per-task=2', '--mem=4G', '--account=ml'].").tag(
        env="EG_SLURM_SBATCH_ARGS", kernelspec=True)
    python = Unicode(sys.executable, config=True, help="Python (with ipykernel) that runs eg's launcher on the nodes; replaces 'python' as the argv's first word. Default: the gateway's own, for installs on a filesystem the nodes share.").tag(
        env="EG_SLURM_PYTHON", kernelspec=True)
    output_dir = Unicode(tempfile.gettempdir(), config=True, help="Directory (seen by the nodes and the gateway) for the jobs' output files, eg-kernel-<id>.log.").tag(
        env="EG_SLURM_OUTPUT_DIR")
    poll_interval = Float(2.0, min=0.2, config=True, help="Seconds between squeue checks of the kernel jobs (one query for all of them).").tag(
        env="EG_SLURM_POLL_INTERVAL")
    command_timeout = Float(30.0, min=1.0, config=True, help="Seconds a Slurm command (sbatch, squeue, scontrol, scancel) may take.").tag(
        env="EG_SLURM_COMMAND_TIMEOUT")
    gateway_id = Unicode("eg", config=True, help="Marks this gateway's kernel jobs (sbatch --comment); the orphan sweep at startup looks at these only.").tag(
        env="EG_SLURM_GATEWAY_ID")
    orphans_at_startup = Enum(["log", "remove", "ignore"], "log", config=True, help="What to do at startup with running kernel jobs of this gateway id that no kernel of the gateway owns.").tag(
        env="EG_SLURM_ORPHANS_AT_STARTUP")

    @validate("partition")
    def _partition_name(self, proposal):
        if not re.fullmatch(r"[A-Za-z0-9_.+-]*", proposal["value"]):
            raise TraitError(f"{proposal['value']!r} is not a Slurm partition name")
        return proposal["value"]
