"""What a request may set of a kernel's Slurm job, checked before ``sbatch`` runs, and the
launch parameters that say so (``eg_launch_parameters``), both from one table
(:data:`REQUEST_VARIABLES`) and the same settings: ``request_overrides`` (the allow-list),
``allowed_partitions``, ``max_cpus``, ``max_memory``, ``max_gpus``. A malformed value is a
:class:`eg_core.BadRequest` (400), one the operator does not allow a
:class:`eg_core.LaunchRefused` (403), each naming the variable."""

from __future__ import annotations

import re
from types import SimpleNamespace
from typing import Any

from eg_core import BadRequest, KernelContext, LaunchRefused
from eg_core.config import RequestOverrides, launch_parameter, pattern_facets

# setting -> (request variable, sbatch option)
REQUEST_VARIABLES = {"partition": "KERNEL_PARTITION", "cpus": "KERNEL_CPUS", "memory": "KERNEL_MEMORY", "gpus": "KERNEL_GPUS"}
OPTIONS = {"partition": "partition", "cpus": "cpus-per-task", "memory": "mem", "gpus": "gpus"}
_MEMORY = re.compile(r"(\d{1,12})([KMGT]?)B?\Z", re.IGNORECASE)
_MB = {"k": 1 / 1024, "": 1, "m": 1, "g": 1024, "t": 1024 * 1024}
_PARTITION = re.compile(r"[A-Za-z0-9_.+-]+\Z")


def _layers(kernel: KernelContext, settings: SimpleNamespace) -> RequestOverrides:
    return RequestOverrides(kernel, REQUEST_VARIABLES, allowed=settings.request_overrides, where="SlurmSettings.request_overrides")


def memory_mb(value: Any, what: str) -> int:
    """Slurm's ``--mem`` amount (``4096``: MB, ``4G``, ``512M``) in MB; BadRequest when malformed or 0."""
    match = _MEMORY.match(str(value).strip())
    if not match or int(match.group(1)) == 0:
        raise BadRequest(f"{what} must be an amount of memory such as 4096 (MB), 512M or 4G, not {str(value)[:40]!r}")
    return max(int(int(match.group(1)) * _MB[match.group(2).lower()]), 1)


def _count(value: str, what: str, ceiling: int) -> int:
    if not value.strip().isdigit() or int(value) < 1:
        raise BadRequest(f"{what} must be a whole number of at least 1, not {value[:40]!r}")
    if ceiling and int(value) > ceiling:
        raise LaunchRefused(f"{what}={int(value)} exceeds the per-kernel limit of {ceiling}")
    return int(value)


def requested(kernel: KernelContext, settings: SimpleNamespace) -> dict[str, Any]:
    """The request's values (where allowed), checked: ``partition``, ``cpus``, ``memory`` (MB),
    ``gpus``; each left out when the request does not set it. Called before anything is
    submitted (``eg_launch_process``) and by the quotas policy (``eg_requested_resources``)."""
    layers = _layers(kernel, settings)
    values: dict[str, Any] = {}
    partition, asked = layers.get("partition", "partition", settings.partition, patterns=settings.allowed_partitions,
                                  patterns_name="allowed_partitions")
    if asked:
        if not _PARTITION.match(partition):
            raise BadRequest(f"KERNEL_PARTITION {partition[:80]!r} is not a Slurm partition name")
        values["partition"] = partition
    for setting, ceiling in (("cpus", settings.max_cpus), ("gpus", settings.max_gpus)):
        value, asked = layers.get(setting, setting)
        if asked:
            values[setting] = _count(value, REQUEST_VARIABLES[setting], ceiling)
    value, asked = layers.get("memory", "memory")
    if asked:
        values["memory"] = memory_mb(value, "KERNEL_MEMORY")
        limit = memory_mb(settings.max_memory, "SlurmSettings.max_memory") if settings.max_memory else 0
        if limit and values["memory"] > limit:
            raise LaunchRefused(f"KERNEL_MEMORY={value} ({values['memory']} MB) exceeds the per-kernel limit of {settings.max_memory}")
    return values


def sbatch_options(values: dict[str, Any]) -> list[str]:
    """The sbatch options of :func:`requested`'s values."""
    return [f"--{OPTIONS[name]}={value}{'M' if name == 'memory' else ''}" for name, value in values.items()]


def requested_resources(values: dict[str, Any]) -> dict[str, float]:
    """What :func:`requested`'s values ask of the cluster, for resource quotas: CPUs, memory in
    bytes, GPUs (what the kernelspec's ``sbatch_args`` ask is not counted)."""
    amounts = {"cpus": values.get("cpus"), "memory": values["memory"] * 1024 * 1024 if "memory" in values else None,
               "gpus": values.get("gpus")}
    return {name: float(amount) for name, amount in amounts.items() if amount is not None}


def launch_parameters(kernel: KernelContext, settings: SimpleNamespace) -> dict[str, dict[str, Any]]:
    """JSON Schema properties, by request variable, of what :func:`sbatch_options` accepts."""
    limit = memory_mb(settings.max_memory, "SlurmSettings.max_memory") if settings.max_memory else None
    properties = {
        "partition": launch_parameter("string", "Slurm partition of the kernel's job", default=settings.partition or None,
                                      **pattern_facets(settings.allowed_partitions, settings.partition)),
        "cpus": launch_parameter("integer", "CPUs of the kernel's job (--cpus-per-task)", minimum=1, maximum=settings.max_cpus or None),
        "memory": launch_parameter("integer", "Memory of the kernel's job in MB (--mem; 4G is accepted too)", minimum=1, maximum=limit),
        "gpus": launch_parameter("integer", "GPUs of the kernel's job (--gpus)", minimum=1, maximum=settings.max_gpus or None),
    }
    return _layers(kernel, settings).parameters(properties, patterns=["partition"] if settings.allowed_partitions else ())
