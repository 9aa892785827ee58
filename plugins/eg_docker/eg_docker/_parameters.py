"""The launch parameters of a ``docker`` kernelspec (``eg_launch_parameters``): what
:func:`._settings.resolve` lets a request set, read from the same settings (the kernelspec's
``request_overrides`` allow-list, ``allowed_images``, ``max_cpus``, ``max_memory``, the
prohibited ids) and the same bounds, so what the schema offers is what a launch accepts."""

from __future__ import annotations

from typing import Any

from eg_core import KernelContext, containers
from eg_core.config import RequestOverrides, kernelspec_settings, launch_parameter, pattern_facets

from ._settings import MAX_CPUS, MIN_CPUS, MIN_MEMORY, REQUEST_VARIABLES, DockerSettings, configured_image, parse_size


def _id_number(kind: str, default: Any, prohibited: list[int]) -> dict[str, Any]:
    prop = launch_parameter("integer", f"{kind} the kernel runs as in its container", minimum=0, maximum=containers.MAX_ID,
                            default=int(default) if str(default).strip().isdigit() else None)
    if prohibited:
        prop["not"] = {"enum": sorted(prohibited)}
    return prop


def launch_parameters(kernel: KernelContext) -> dict[str, dict[str, Any]]:
    """JSON Schema properties, by request variable, of the settings a request may set."""
    gateway = kernelspec_settings(kernel, DockerSettings)
    layers = RequestOverrides(kernel, REQUEST_VARIABLES, allowed=gateway.request_overrides, ignored=gateway.ignored_overrides,
                              mirror_working_dirs=gateway.mirror_working_dirs)
    image = configured_image(kernel, layers, gateway)
    memory = layers.get("memory", "memory")[0]
    properties = {
        "image": launch_parameter("string", "Container image", default=image or None,
                                  **(pattern_facets(gateway.allowed_images, image) if gateway.allowed_images else {})),
        "network": launch_parameter("string", "Docker network of the container", default=layers.get("network", "network", gateway.network)[0]),
        "uid": _id_number("UID", layers.get("uid", "uid", gateway.default_uid)[0], gateway.prohibited_uids),
        "gid": _id_number("GID", layers.get("gid", "gid", gateway.default_gid)[0], gateway.prohibited_gids),
        "working_dir": launch_parameter("string", "Working directory in the container (an absolute path)", pattern="^/"),
        "volumes": launch_parameter("string", "JSON list of 'source:target[:ro]' mounts"),
        "labels": launch_parameter("string", "JSON object of container labels"),
        "cpus": launch_parameter("number", "CPUs of the container", minimum=MIN_CPUS,
                                 maximum=min(gateway.max_cpus or MAX_CPUS, MAX_CPUS), default=layers.get("cpus", "cpus")[0]),
        "memory": launch_parameter("integer", "Memory of the container in bytes (512m, 2g are accepted too)", minimum=MIN_MEMORY,
                                   maximum=parse_size(gateway.max_memory) if gateway.max_memory else None,
                                   default=parse_size(memory) if memory not in (None, "") else None),
        "gpus": {"description": "GPUs of the container: a count, or all of the host's",
                 "anyOf": [{"type": "integer", "minimum": 0}, {"type": "string", "enum": ["all"]}]},
    }
    for name in ("cpus",):
        if isinstance(properties[name].get("default"), str):
            properties[name]["default"] = float(properties[name]["default"])
    return layers.parameters(properties, patterns=["image"] if gateway.allowed_images else ())
