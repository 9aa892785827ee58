"""The launch parameters of a ``k8s`` kernelspec (``eg_launch_parameters``): what
:func:`._request.resolve` lets a request set, read from the same layers (the
``request_overrides`` allow-list, the ``allowed_*`` patterns, the gateway's ``max_*`` caps,
the prohibited ids), so what the schema offers is what a launch accepts."""

from __future__ import annotations

from typing import Any

from eg_core import KernelContext, containers
from eg_core.config import launch_parameter, pattern_facets

from ._request import _PATTERN_LISTS, _Layers, _as_list, configured_image, quantity
from ._settings import settings
from ._spark import is_spark, memory_bytes

_DNS = {"pattern": "^[a-z0-9]([-a-z0-9]*[a-z0-9])?$"}


def _id_number(kind: str, default: Any, prohibited: list[Any]) -> dict[str, Any]:
    prop = launch_parameter("integer", f"{kind} of the kernel's container (runAs{'User' if kind == 'UID' else 'Group'})", minimum=0,
                            maximum=containers.MAX_ID, default=int(default) if str(default).strip().isdigit() else None)
    excluded = sorted({int(str(p)) for p in prohibited if str(p).strip().isdigit()})
    if excluded:
        prop["not"] = {"enum": excluded}
    return prop


def _amount(kind: str, what: str, ceiling: float, default: Any) -> dict[str, Any]:
    facets: dict[str, Any] = {"maximum": (int(ceiling) if kind == "integer" else ceiling) if ceiling else None}
    facets["minimum" if kind == "integer" else "exclusiveMinimum"] = 1 if kind == "integer" else 0
    value = quantity(default) if default not in (None, "") else None
    return launch_parameter(kind, what, default=int(value) if value is not None and kind == "integer" else value, **facets)


def _patterned(layers: _Layers, setting: str, description: str, default: Any) -> dict[str, Any]:
    patterns = _as_list(layers.cfg(_PATTERN_LISTS[setting], []))
    return launch_parameter("string", description, default=default or None,
                            **(pattern_facets(patterns, str(default or "")) if patterns else ({} if setting == "image" else _DNS)))


def _spark_parameters(layers: _Layers) -> dict[str, dict[str, Any]]:
    """The executors' count, memory (Spark's units) and cores, with the gateway's caps."""
    gateway = layers.gateway
    memory_cap = gateway.max_executor_memory
    return {
        "executors": launch_parameter("integer", "Spark executors (spark.executor.instances)", minimum=1,
                                      maximum=gateway.max_executors or None, default=int(layers.get("executors", "executors", gateway.executors)[0])),
        "executor_memory": launch_parameter(
            "string", "Memory of each Spark executor (spark.executor.memory: 512m, 2g)"
            + (f"; at most {memory_cap} ({memory_bytes(memory_cap)} bytes)" if memory_cap else ""),
            pattern=r"^[0-9]+[kKmMgGtT]?[bB]?$", default=str(layers.get("executor_memory", "executor_memory", gateway.executor_memory)[0])),
        "executor_cores": launch_parameter("integer", "Cores of each Spark executor (spark.executor.cores)", minimum=1,
                                           maximum=gateway.max_executor_cores or None,
                                           default=int(layers.get("executor_cores", "executor_cores", gateway.executor_cores)[0])),
    }


def launch_parameters(kernel: KernelContext) -> dict[str, dict[str, Any]]:
    """JSON Schema properties, by request variable, of the pod settings a request may set."""
    gateway = settings()
    layers = _Layers(kernel, gateway)
    memory_cap = quantity(gateway.max_memory) if gateway.max_memory else 0
    properties = {
        "image": _patterned(layers, "image", "Container image", configured_image(kernel, layers)),
        "namespace": _patterned(layers, "namespace", "Namespace of the kernel's pod", None),
        "service_account": _patterned(layers, "service_account", "Service account of the kernel's pod",
                                      layers.get("service_account", "service_account_name", gateway.service_account_name)[0]),
        "pod_name": launch_parameter("string", "Name of the kernel's pod ({{ kernel_id }} is replaced)"),
        "uid": _id_number("UID", layers.get("uid", "uid", gateway.default_uid)[0], _as_list(layers.cfg("prohibited_uids", []))),
        "gid": _id_number("GID", layers.get("gid", "gid", gateway.default_gid)[0], _as_list(layers.cfg("prohibited_gids", []))),
        "working_dir": launch_parameter("string", "Working directory in the container (an absolute path)", pattern="^/"),
        "volumes": launch_parameter("string", "YAML or JSON list of pod volumes"),
        "volume_mounts": launch_parameter("string", "YAML or JSON list of the kernel container's volume mounts"),
    }
    for suffix, what in (("", "request"), ("_limit", "limit")):
        properties["cpus" + suffix] = _amount("number", f"CPUs (the container's {what}; 500m is accepted too)", gateway.max_cpus,
                                              layers.get("cpus" + suffix, "cpus" + suffix)[0])
        properties["memory" + suffix] = _amount("integer", f"Memory in bytes (the container's {what}; 512Mi, 2Gi are accepted too)",
                                                memory_cap, layers.get("memory" + suffix, "memory" + suffix)[0])
        properties["gpus" + suffix] = _amount("integer", f"GPUs (nvidia.com/gpu, the container's {what})", gateway.max_gpus,
                                              layers.get("gpus" + suffix, "gpus" + suffix)[0])
    if is_spark(kernel):
        properties.update(_spark_parameters(layers))
    opened = [setting for setting, name in _PATTERN_LISTS.items() if _as_list(layers.cfg(name, []))]
    return layers.parameters(properties, patterns=opened)
