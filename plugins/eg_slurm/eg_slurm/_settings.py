"""The ``slurm`` resource manager's settings: gateway-wide traits, which a kernelspec's
``config`` may override for its kernels (the traits tagged ``kernelspec=True``)."""

from __future__ import annotations

import re
import sys
import tempfile

from traitlets import Float, Integer, List, TraitError, Unicode
from traitlets.config import SingletonConfigurable

from eg_core import BadRequest, KernelContext
from eg_core.config import EnvDefaults

_SLURM_WORD = r"[A-Za-z0-9_.+-]*\Z"
_CORE_KEYS = {"port_range", "shutdown_wait_time", "authorized_users", "unauthorized_users"}  # read by eg-core


class SlurmSettings(EnvDefaults, SingletonConfigurable):
    """Settings of the ``slurm`` resource manager (``--SlurmSettings.<name>``, config file, env)."""

    partition = Unicode("", config=True, help="Partition of kernel jobs ('': the cluster's default).").tag(
        env="EG_SLURM_PARTITION", kernelspec=True, pattern=_SLURM_WORD)
    time_limit = Unicode("", config=True, help="sbatch --time of kernel jobs, e.g. '8:00:00' ('': the partition's).").tag(
        env="EG_SLURM_TIME_LIMIT", kernelspec=True, pattern=r"[0-9:-]*\Z")
    cpus = Integer(1, min=1, config=True, help="CPUs per kernel job (sbatch --cpus-per-task).").tag(
        env="EG_SLURM_CPUS", kernelspec=True)
    memory = Unicode("", config=True, help="Memory per kernel job (sbatch --mem, e.g. '4G'; '': the partition's).").tag(
        env="EG_SLURM_MEMORY", kernelspec=True, pattern=r"([0-9]+[KMGT]?)?\Z")
    sbatch_args = List(Unicode(), config=True, help="More sbatch options for every kernel job, e.g. ['--account=ml'].").tag(
        env="EG_SLURM_SBATCH_ARGS")
    python = Unicode(sys.executable, config=True, help="Python (with ipykernel) that runs the launcher on the nodes; replaces 'python' as the argv's first word. Default: the gateway's own, for installs on a filesystem the nodes share.").tag(
        env="EG_SLURM_PYTHON", kernelspec=True)
    output_dir = Unicode(tempfile.gettempdir(), config=True, help="Directory (seen by the nodes and the gateway) for the jobs' output files, eg-kernel-<id>.log.").tag(
        env="EG_SLURM_OUTPUT_DIR")
    poll_interval = Float(2.0, min=0.2, config=True, help="Seconds between squeue checks of the kernel jobs.").tag(
        env="EG_SLURM_POLL_INTERVAL")
    command_timeout = Float(30.0, min=1.0, config=True, help="Seconds a Slurm command (sbatch, squeue, scancel) may take.").tag(
        env="EG_SLURM_COMMAND_TIMEOUT")


def resolve(kernel: KernelContext) -> SlurmSettings:
    """The settings for one kernel: the gateway's, with its kernelspec's overrides checked
    (400 on an unknown name or a bad value); called before anything is submitted."""
    base = SlurmSettings.instance()
    resolved = SlurmSettings(config=base.config)
    traits = base.traits(config=True)
    for name in traits:
        setattr(resolved, name, getattr(base, name))
    for name, value in kernel.config.items():
        if name in _CORE_KEYS:
            continue
        trait = traits.get(name)
        if trait is None or not trait.metadata.get("kernelspec"):
            allowed = sorted(n for n, t in traits.items() if t.metadata.get("kernelspec"))
            raise BadRequest(f"slurm: kernelspec config '{name}' is not a setting a kernelspec may set ({', '.join(allowed)})")
        try:
            setattr(resolved, name, value)
        except TraitError as exc:
            raise BadRequest(f"slurm: kernelspec config {name}={value!r}: {exc}") from None
    for name, trait in traits.items():
        pattern = trait.metadata.get("pattern")
        if pattern and not re.match(pattern, str(getattr(resolved, name))):
            raise BadRequest(f"slurm: {name}={getattr(resolved, name)!r} is not a valid Slurm value")
    return resolved
