"""What a kernel's container (or Swarm service) looks like, and the checks on it.

Settings come in three layers, lowest first:

1. the gateway's :class:`DockerSettings` (traitlets: ``--DockerSettings.*``, config file, and
   Enterprise Gateway's ``EG_*`` variables);
2. the kernelspec's resource-manager ``config`` (``image_name``, ``network``, ``volumes``...);
3. the request's ``KERNEL_*`` values, only for the settings the operator lets requests set
   (``request_overrides``; ``KERNEL_IMAGE`` only for images matching ``allowed_images``).

:func:`resolve` is called from ``eg_launch_process`` before anything is created: every value is
checked there, so a bad one fails the request with 400 (malformed) or 403 (not allowed) and
nothing is left to clean up.
"""

from __future__ import annotations

import fnmatch
import json
import os
import re
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlparse

from traitlets import Bool, Enum, Float, Integer, List, Unicode, default
from traitlets.config import SingletonConfigurable

from eg_core import BadRequest, EGError, KernelContext, LaunchRefused
from eg_core import containers, remote
from eg_core.config import EnvDefaults, RequestOverrides, kernelspec_settings

# Labels every kernel container/service carries (Enterprise Gateway's, plus ours).
LABEL_KERNEL_ID = "kernel_id"
LABEL_APP = "app"
LABEL_COMPONENT = "component"
APP = "enterprise-gateway"
COMPONENT = "kernel"
LABEL_GATEWAY = "eg.gateway"
LABEL_KERNEL_NAME = "eg.kernel_name"
LABEL_USER = "eg.user"
RESERVED_LABELS = {LABEL_KERNEL_ID, LABEL_APP, LABEL_COMPONENT}
RESERVED_PREFIX = "eg."

MIN_MEMORY = 6 * 1024 * 1024  # the engine's own minimum
MIN_CPUS, MAX_CPUS = 0.01, 1024.0  # the engine's bounds
_SIZE = re.compile(r"\s*(\d+(?:\.\d+)?)\s*([kmgt]?)(i?)(b?)\s*\Z", re.IGNORECASE)
_UNITS = {"": 1, "k": 1024, "m": 1024**2, "g": 1024**3, "t": 1024**4}
_VOLUME_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]*\Z")
_NAME_UNSAFE = re.compile(r"[^A-Za-z0-9_.-]+")
_GPU_UUID = re.compile(r"(GPU|MIG)-[A-Za-z0-9-]+\Z")
_LABEL_KEY = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.\-/]{0,127}\Z")

# setting name -> the request variable that overrides it
REQUEST_VARIABLES = {
    "image": "KERNEL_IMAGE",
    "network": "KERNEL_NETWORK",
    "uid": "KERNEL_UID",
    "gid": "KERNEL_GID",
    "working_dir": "KERNEL_WORKING_DIR",
    "volumes": "KERNEL_VOLUMES",
    "cpus": "KERNEL_CPUS",
    "memory": "KERNEL_MEMORY",
    "gpus": "KERNEL_GPUS",
    "labels": "KERNEL_LABELS",
}


class DockerSettings(EnvDefaults, SingletonConfigurable):
    """Gateway-wide defaults of the ``docker`` resource manager; kernelspecs may override the
    settings tagged ``kernelspec=True`` in their resource-manager ``config``."""

    docker_host = Unicode(
        config=True, help="The Docker engine: unix:///path or tcp://host:port. Env: DOCKER_HOST.",
    ).tag(kernelspec=True)

    @default("docker_host")
    def _default_docker_host(self) -> str:
        return os.environ.get("DOCKER_HOST") or "unix:///var/run/docker.sock"

    image_name = Unicode(
        "", config=True, help="Image for kernelspecs that name none (Enterprise Gateway's EG_KERNEL_IMAGE).",
    ).tag(kernelspec=True, env=("EG_KERNEL_IMAGE",))
    mode = Enum(
        ("container", "swarm"), "container", config=True, help="'container' (docker run) or 'swarm' (a Swarm service per kernel). "
        "Kernelspecs of Enterprise Gateway's DockerSwarmProcessProxy always use 'swarm'.",
    ).tag(kernelspec=True, env=("EG_DOCKER_MODE",))
    network = Unicode(
        "host", config=True, help="Network of kernel containers: 'host' or a named network.",
    ).tag(kernelspec=True, env=("EG_DOCKER_NETWORK",))
    kernel_host = Unicode(
        "", config=True,
        help="Address the gateway dials to reach host-networked kernels. Default: the Docker "
        "host's address (127.0.0.1 for a unix socket).",
    ).tag(kernelspec=True)
    kernel_bind_ip = Unicode(
        "", config=True,
        help="Address kernels bind inside their container. Default: 127.0.0.1 for host-networked "
        "kernels on a local engine, else 0.0.0.0.",
    ).tag(kernelspec=True)
    prohibited_uids = List(
        Integer(), [0], config=True, help="UIDs kernels may not run as (403).",
    ).tag(env=("EG_PROHIBITED_UIDS",))
    prohibited_gids = List(
        Integer(), [0], config=True, help="GIDs kernels may not run as (403).",
    ).tag(env=("EG_PROHIBITED_GIDS",))
    default_uid = Unicode(
        "1000", config=True, help="UID when neither kernelspec nor request sets one."
    ).tag(env=("EG_DEFAULT_KERNEL_UID",))
    default_gid = Unicode(
        "100", config=True, help="GID when neither kernelspec nor request sets one."
    ).tag(env=("EG_DEFAULT_KERNEL_GID",))
    mirror_working_dirs = Bool(
        False, config=True, help="Let requests set the container's working dir (KERNEL_WORKING_DIR).",
    ).tag(kernelspec=True, env=("EG_MIRROR_WORKING_DIRS",))
    request_overrides = List(
        Unicode(), ["uid", "gid", "cpus", "memory", "gpus"], config=True,
        help=f"Settings a request may set with KERNEL_* values ({', '.join(sorted(REQUEST_VARIABLES))}). "
        "'image' lets a request name any image; allowed_images lets it name matching ones only.",
    ).tag(kernelspec=True)
    ignored_overrides = List(
        Unicode(), ["working_dir"], config=True,
        help="Settings whose KERNEL_* request values are dropped (logged at DEBUG) rather than refused "
        "(403) when request_overrides does not allow them. Default: working_dir, because Jupyter Server "
        "sends KERNEL_WORKING_DIR with every request (Enterprise Gateway drops it too unless "
        "mirror_working_dirs is on); make it [] to refuse such requests instead.",
    ).tag(kernelspec=True)
    allowed_images = List(
        Unicode(), config=True,
        help="Patterns (fnmatch) of images a request may ask for with KERNEL_IMAGE; empty: only the configured image.",
    ).tag(kernelspec=True)
    max_cpus = Float(0.0, config=True, help="Most CPUs a request may ask for (0: no limit beyond the engine's).")
    max_memory = Unicode("", config=True, help="Most memory a request may ask for, e.g. '8g' (empty: no limit).")
    pull_policy = Enum(
        ("missing", "never", "always"), "missing", config=True, help="'missing' (pull when the engine lacks the image), 'never' or 'always'.",
    ).tag(kernelspec=True)
    init = Bool(True, config=True, help="Run docker-init (tini) as PID 1, so signals and zombies are handled.").tag(kernelspec=True)
    remove_containers = Bool(
        True, config=True, help="Remove a kernel's container when it shuts down (else it stays, stopped).",
    ).tag(kernelspec=True, env=("EG_REMOVE_CONTAINER",))

    gateway_id = Unicode(
        "eg", config=True,
        help="Value of the eg.gateway label on this gateway's kernels; gateways sharing an engine "
        "need different ids, so orphan checks see only their own kernels.",
    ).tag(kernelspec=True)
    orphans_at_startup = Enum(
        ("log", "remove", "ignore"), "log", config=True,
        help="What to do at startup with kernel containers of this gateway_id that it does not "
        "know: 'log', 'remove' or 'ignore'.",
    )
    log_tail_lines = Integer(25, config=True, help="Container log lines quoted when a kernel fails or dies.").tag(kernelspec=True)
    task_poll_interval = Float(0.25, config=True, help="Seconds between Swarm task state checks (tasks have no wait endpoint).")


def settings() -> DockerSettings:
    """The gateway's settings (defaults from the environment outside a gateway)."""
    return DockerSettings.instance()


@dataclass(frozen=True)
class KernelContainer:
    """The checked settings of one kernel's container or service."""

    mode: str
    docker_host: str
    image: str
    name: str
    network: str
    uid: int
    gid: int
    working_dir: str | None
    mounts: list[dict[str, Any]]
    cpus: float | None
    memory: int | None
    gpus: dict[str, Any] | None
    labels: dict[str, str]
    host: str
    bind_ip: str
    pull_policy: str
    init: bool
    remove: bool
    log_tail_lines: int
    legacy_launcher: bool
    bootstrap: bool = False
    extra: dict[str, Any] = field(default_factory=dict)


def resolve(kernel: KernelContext, gateway: DockerSettings | None = None) -> KernelContainer:
    """Check and combine every setting of ``kernel``'s container.

    Called by ``eg_launch_process`` before it creates anything. Raises :class:`BadRequest` for
    malformed values and :class:`LaunchRefused` (403) for values the operator does not allow.
    """
    gateway = kernelspec_settings(kernel, gateway or DockerSettings)
    layers = RequestOverrides(kernel, REQUEST_VARIABLES, allowed=gateway.request_overrides, ignored=gateway.ignored_overrides,
                              mirror_working_dirs=gateway.mirror_working_dirs)
    cfg = kernel.config

    mode = _mode(kernel, gateway.mode)
    image = _image(kernel, layers, gateway)
    network = _network(layers, gateway)
    uid = _id_number(layers, "uid", gateway.default_uid, gateway.prohibited_uids, "EG_PROHIBITED_UIDS")
    gid = _id_number(layers, "gid", gateway.default_gid, gateway.prohibited_gids, "EG_PROHIBITED_GIDS")
    working_dir = containers.working_dir(layers.get("working_dir", "working_dir")[0])
    mounts = _mounts(layers.get("volumes", "volumes", [])[0])
    cpus_value, cpus_requested = layers.get("cpus", "cpus")
    cpus = _cpus(cpus_value, gateway.max_cpus if cpus_requested else 0.0, "KERNEL_CPUS" if cpus_requested else "cpus")
    memory_value, memory_requested = layers.get("memory", "memory")
    memory = _memory(memory_value, gateway.max_memory if memory_requested else "", "KERNEL_MEMORY" if memory_requested else "memory")
    gpus_value, gpus_requested = layers.get("gpus", "gpus")
    gpus = _gpus(gpus_value, "KERNEL_GPUS" if gpus_requested else "gpus")
    if gpus and mode == "swarm":
        raise BadRequest("GPU requests are not supported for Swarm services (Swarm has no device requests); use mode 'container'")
    # Labels add up: the kernelspec's, then the request's (where allowed), then the gateway's own.
    labels = {**_labels(kernel.config.get("labels") or {}), **_labels(layers.get("labels", "labels", {})[0])}
    labels.update(_kernel_labels(kernel, gateway))
    docker_host = gateway.docker_host
    host, bind_ip = _addresses(network, docker_host, cfg, gateway)
    legacy = remote.legacy_launcher(kernel)
    return KernelContainer(
        mode=mode,
        docker_host=docker_host,
        image=image,
        name=_container_name(kernel),
        network=network,
        uid=uid,
        gid=gid,
        working_dir=working_dir,
        mounts=mounts,
        cpus=cpus,
        memory=memory,
        gpus=gpus,
        labels=labels,
        host=host,
        bind_ip=bind_ip,
        pull_policy=gateway.pull_policy,
        init=gateway.init,
        remove=gateway.remove_containers,
        log_tail_lines=gateway.log_tail_lines,
        legacy_launcher=legacy,
    )


def requested_resources(kc: KernelContainer) -> dict[str, float]:
    """What the container asks of the engine, for resource quotas (``eg_requested_resources``):
    CPUs, memory in bytes, GPUs (a count, the number of device ids, or infinity for ``all``)."""
    gpus = 0.0
    if kc.gpus:
        count = kc.gpus.get("Count")
        gpus = float("inf") if count == -1 else float(count) if count is not None else float(len(kc.gpus.get("DeviceIDs", [])))
    return {"cpus": kc.cpus or 0.0, "memory": float(kc.memory or 0), "gpus": gpus}


def _truthy(value: Any) -> bool:
    if isinstance(value, str):
        return value.strip().lower() in ("1", "true", "yes", "on")
    return bool(value)


def _check_400(name: str, value: str, choices: tuple[str, ...]) -> str:
    if value not in choices:
        raise BadRequest(f"{name} must be one of {', '.join(choices)}, not {value!r}")
    return value


def _mode(kernel: KernelContext, configured: str) -> str:
    metadata = kernel.spec.get("metadata") or {}
    proxy = (metadata.get("process_proxy") or {}).get("class_name", "")
    provisioner = (metadata.get("kernel_provisioner") or {}).get("provisioner_name", "")
    if proxy.endswith("DockerSwarmProcessProxy") or provisioner == "docker-swarm-provisioner":
        return "swarm"
    return _check_400("mode", configured, ("container", "swarm"))


_IMAGE = re.compile(r"[a-z0-9][a-z0-9._/:@-]*\Z", re.IGNORECASE)


def configured_image(kernel: KernelContext, layers: RequestOverrides, gateway: Any) -> str:
    """The image of ``kernel`` when its request names none: the kernelspec's, else the gateway's."""
    return str(kernel.config.get("image_name") or layers.spec_env.get("KERNEL_IMAGE") or gateway.image_name or "")


def _image(kernel: KernelContext, layers: RequestOverrides, gateway: DockerSettings) -> str:
    configured = configured_image(kernel, layers, gateway)
    requested = layers.requested("image")
    image = configured
    if requested and requested != configured:
        patterns = gateway.allowed_images
        if "image" not in layers.allowed and not patterns:
            raise LaunchRefused(
                f"KERNEL_IMAGE may not be set by a request for kernelspec {kernel.kernel_name!r}; the operator "
                "allows images with the resource manager's allowed_images patterns"
            )
        if patterns and not any(fnmatch.fnmatchcase(requested, p) for p in patterns):
            raise LaunchRefused(f"KERNEL_IMAGE: image {requested!r} is not among the images allowed for {kernel.kernel_name!r}: {', '.join(patterns)}")
        image = requested
    if not image:
        raise BadRequest(
            f"no image for kernelspec {kernel.kernel_name!r}: set image_name in its config, or "
            "DockerSettings.image_name / EG_KERNEL_IMAGE on the gateway"
        )
    if len(image) > 255 or not _IMAGE.match(image):
        raise BadRequest(f"image name {image[:80]!r} is not a valid Docker image reference")
    return image


def _network(layers: RequestOverrides, gateway: DockerSettings) -> str:
    network = str(layers.get("network", "network", gateway.network)[0] or "host")
    if not _VOLUME_NAME.match(network) or len(network) > 128:
        raise BadRequest(f"network name {network[:80]!r} is not valid")
    return network


def _mounts(value: Any) -> list[dict[str, Any]]:
    """Volumes as ``"source:target[:ro|rw]"`` strings or ``{source, target, read_only, type}`` objects,
    in a list (a request gives it as JSON)."""
    if isinstance(value, str):
        try:
            value = json.loads(value) if value.strip().startswith("[") else [v for v in value.split(",") if v.strip()]
        except ValueError:
            raise BadRequest("volumes must be a JSON list of 'source:target[:ro]' strings or objects") from None
    if not isinstance(value, list):
        raise BadRequest("volumes must be a list of 'source:target[:ro]' strings or {source, target, read_only} objects")
    mounts = []
    for entry in value:
        if isinstance(entry, str):
            parts = entry.strip().split(":")
            if len(parts) not in (2, 3) or (len(parts) == 3 and parts[2] not in ("ro", "rw")):
                raise BadRequest(f"volume {entry[:120]!r} must look like 'source:target' or 'source:target:ro'")
            source, target, read_only = parts[0], parts[1], len(parts) == 3 and parts[2] == "ro"
            kind = None
        elif isinstance(entry, dict):
            source, target = str(entry.get("source", "")), str(entry.get("target", ""))
            read_only = _truthy(entry.get("read_only", False))
            kind = entry.get("type")
        else:
            raise BadRequest("each volume must be a 'source:target[:ro]' string or an object")
        if not target.startswith("/"):
            raise BadRequest(f"volume target {target[:120]!r} must be an absolute path in the container")
        if kind is None:
            kind = "bind" if source.startswith("/") else "volume"
        if kind == "bind" and not source.startswith("/"):
            raise BadRequest(f"bind mount source {source[:120]!r} must be an absolute path on the Docker host")
        if kind == "volume" and not _VOLUME_NAME.match(source):
            raise BadRequest(f"volume name {source[:120]!r} is not valid")
        if kind not in ("bind", "volume"):
            raise BadRequest(f"volume type {kind!r} must be 'bind' or 'volume'")
        mounts.append({"Type": kind, "Source": source, "Target": target, "ReadOnly": read_only})
    return mounts


def _id_number(layers: RequestOverrides, setting: str, default: str, prohibited: list[int], variable: str) -> int | None:
    value, requested = layers.get(setting, setting, default)
    kind = REQUEST_VARIABLES[setting] if requested else setting.upper()
    return containers.kernel_id_number(kind, value, prohibited, variable, optional=False)


def _cpus(value: Any, limit: float, what: str = "cpus") -> float | None:
    if value in (None, ""):
        return None
    try:
        cpus = float(value)
    except (TypeError, ValueError):
        raise BadRequest(f"{what} must be a number of CPUs such as 0.5 or 2, not {str(value)[:40]!r}") from None
    if not MIN_CPUS <= cpus <= MAX_CPUS:
        raise BadRequest(f"{what} must be between {MIN_CPUS:g} and {MAX_CPUS:g}, not {cpus:g}")
    if limit and cpus > limit:
        raise LaunchRefused(f"{what}: {cpus:g} CPUs exceeds the limit of {limit:g} CPUs per kernel")
    return cpus


def parse_size(value: Any) -> int:
    """``"512m"``, ``"2g"``, ``"1Gi"``, ``"1.5GB"`` or a number of bytes → bytes; raises ValueError."""
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return int(value)
    match = _SIZE.match(str(value))
    if not match:
        raise ValueError(value)
    number, unit = float(match.group(1)), match.group(2).lower()
    return int(number * _UNITS[unit])


def _memory(value: Any, limit: str, what: str = "memory") -> int | None:
    if value in (None, ""):
        return None
    try:
        memory = parse_size(value)
    except ValueError:
        raise BadRequest(f"{what} must be a size such as 512m or 2g, not {str(value)[:40]!r}") from None
    if memory < MIN_MEMORY:
        raise BadRequest(f"{what} {value!r} is below the Docker engine's minimum of 6m")
    if limit and memory > parse_size(limit):
        raise LaunchRefused(f"{what} {value!r} exceeds the limit of {limit} per kernel")
    return memory


def _gpus(value: Any, what: str = "gpus") -> dict[str, Any] | None:
    """``"all"``, a count, or a comma list of device ids → a Docker device request."""
    if value in (None, "", 0, "0"):
        return None
    text = str(value).strip()
    request: dict[str, Any] = {"Driver": "", "Capabilities": [["gpu"]]}
    ids = text.split(",")
    if text == "all":
        request["Count"] = -1
    elif text.isdigit():
        request["Count"] = int(text)
    elif len(ids) > 1 and all(i.isdigit() or _GPU_UUID.match(i) for i in ids) or _GPU_UUID.match(text):
        request["DeviceIDs"] = ids
    else:
        raise BadRequest(f"{what} must be 'all', a count, or a comma list of device ids (0,1 or GPU-<uuid>), not {text[:40]!r}")
    return request


def _labels(value: Any) -> dict[str, str]:
    if isinstance(value, str):
        try:
            value = json.loads(value) if value.strip() else {}
        except ValueError:
            raise BadRequest("labels must be a JSON object of names to strings") from None
    if not isinstance(value, dict):
        raise BadRequest("labels must be an object of names to strings")
    labels = {}
    for key, val in value.items():
        key = str(key)
        if not _LABEL_KEY.match(key):
            raise BadRequest(f"label name {key[:80]!r} is not valid")
        if key in RESERVED_LABELS or key.startswith(RESERVED_PREFIX):
            raise BadRequest(f"label {key!r} is set by the gateway and cannot be overridden")
        if not isinstance(val, (str, int, float, bool)):
            raise BadRequest(f"label {key!r} must have a string value")
        labels[key] = str(val)
    return labels


def _kernel_labels(kernel: KernelContext, gateway: DockerSettings) -> dict[str, str]:
    """The labels that find a kernel's container (Enterprise Gateway's three, and ours)."""
    return {
        LABEL_KERNEL_ID: kernel.kernel_id,
        LABEL_APP: APP,
        LABEL_COMPONENT: COMPONENT,
        LABEL_GATEWAY: str(kernel.config.get("gateway_id") or gateway.gateway_id),
        LABEL_KERNEL_NAME: kernel.kernel_name,
        LABEL_USER: kernel.user,
    }


def _addresses(network: str, docker_host: str, cfg: dict, gateway: DockerSettings) -> tuple[str, str]:
    """(address the gateway dials, address the kernel binds). For a named network the dialled
    address is the container's own, known after start (left empty here)."""
    url = urlparse(docker_host)
    engine_host = "127.0.0.1" if url.scheme == "unix" else (url.hostname or "127.0.0.1")
    host = str(cfg.get("kernel_host") or gateway.kernel_host or (engine_host if network == "host" else ""))
    local = engine_host in ("127.0.0.1", "localhost", "::1")
    bind_ip = str(cfg.get("kernel_bind_ip") or gateway.kernel_bind_ip or ("127.0.0.1" if network == "host" and local else "0.0.0.0"))
    return host, bind_ip


def _container_name(kernel: KernelContext) -> str:
    """``<user>-<kernel id>`` (Enterprise Gateway's), reduced to Docker's name alphabet."""
    user = _NAME_UNSAFE.sub("-", kernel.user or "kernel").strip("-._")[:20] or "kernel"
    return f"{user}-{kernel.kernel_id}"


# What a container gets only when it is created; a pooled kernel serves a request only when
# the request resolves to the same values.
_CREATION_SETTINGS = ("mode", "docker_host", "image", "network", "uid", "gid", "working_dir", "mounts", "cpus", "memory", "gpus")


def pool_misfit(pooled: KernelContext, request: KernelContext) -> str | None:
    """Why the waiting container of ``pooled`` cannot serve ``request`` (``eg_pool_fit``):
    a setting applied at creation (image, uid, mounts, resources, working dir...) or a
    request label resolves differently; None when it fits. A refused or malformed request is a
    miss too (its launch then answers the request with the error). The container's working
    directory is its own (or the mirrored one compared here), so ``request.cwd`` is cleared."""
    try:
        wanted, have, differ = containers.pool_differences(resolve, pooled, request, _CREATION_SETTINGS)
    except EGError as exc:
        return f"the request's container settings are not accepted: {exc.message}"
    own = set(_kernel_labels(request, settings()))
    if {k: v for k, v in wanted.labels.items() if k not in own} != {k: v for k, v in have.labels.items() if k not in own}:
        differ.append("labels")
    if differ:
        return f"the container's {', '.join(differ)} would differ (applied when a container is created)"
    request.cwd = None
    return None


__all__ = ["DockerSettings", "KernelContainer", "resolve", "settings", "parse_size", "pool_misfit"]
