"""What one kernel's pod is made of, checked before anything is created.

Values come in three layers, lowest first: the gateway's :class:`KubernetesSettings`, the
kernelspec's resource-manager ``config`` (same names), and the request's ``KERNEL_*`` values,
only for the settings the operator allow-lists in ``request_overrides`` (``KERNEL_IMAGE``,
``KERNEL_NAMESPACE`` and ``KERNEL_SERVICE_ACCOUNT_NAME`` also through ``allowed_images``,
``allowed_namespaces`` and ``allowed_service_accounts`` patterns). A malformed value is a
:class:`BadRequest` (400), a value the operator does not allow a :class:`LaunchRefused` (403),
both raised by :func:`resolve` before the launch creates anything.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from typing import Any

import yaml

from eg_core import BadRequest, KernelContext, LaunchRefused
from eg_core import containers, remote
from eg_core.config import RequestOverrides

from ._settings import TOKEN_CHOICES, KubernetesSettings, settings
from ._spark import SPARK_VARIABLES, SparkDriver, executor_requests
from ._spark import resolve as resolve_spark

# setting -> the request variable that may override it (Enterprise Gateway's names)
REQUEST_VARIABLES = {
    "image": "KERNEL_IMAGE",
    "namespace": "KERNEL_NAMESPACE",
    "service_account": "KERNEL_SERVICE_ACCOUNT_NAME",
    "pod_name": "KERNEL_POD_NAME",
    "uid": "KERNEL_UID",
    "gid": "KERNEL_GID",
    "working_dir": "KERNEL_WORKING_DIR",
    "cpus": "KERNEL_CPUS",
    "memory": "KERNEL_MEMORY",
    "gpus": "KERNEL_GPUS",
    "cpus_limit": "KERNEL_CPUS_LIMIT",
    "memory_limit": "KERNEL_MEMORY_LIMIT",
    "gpus_limit": "KERNEL_GPUS_LIMIT",
    "volumes": "KERNEL_VOLUMES",
    "volume_mounts": "KERNEL_VOLUME_MOUNTS",
    **SPARK_VARIABLES,
}
_PATTERN_LISTS = {"image": "allowed_images", "namespace": "allowed_namespaces", "service_account": "allowed_service_accounts"}

_DNS_LABEL = re.compile(r"[a-z0-9]([-a-z0-9]*[a-z0-9])?\Z")
_DNS_SUBDOMAIN = re.compile(r"[a-z0-9]([-a-z0-9.]*[a-z0-9])?\Z")
_QUANTITY = re.compile(r"\d+(\.\d+)?(m|k|M|G|T|P|E|Ki|Mi|Gi|Ti|Pi|Ei|e\d+)?\Z")
_IMAGE = re.compile(r"[a-z0-9][a-z0-9._/:@-]*\Z", re.IGNORECASE)
_UNSAFE = re.compile(r"[^0-9a-z]+")
_UNITS = {"": 1, "k": 10**3, "M": 10**6, "G": 10**9, "T": 10**12, "P": 10**15, "E": 10**18,
          "Ki": 2**10, "Mi": 2**20, "Gi": 2**30, "Ti": 2**40, "Pi": 2**50, "Ei": 2**60, "m": 1e-3}


@dataclass
class KernelPod:
    """The checked values of one kernel's pod (also the variables of an EG pod template)."""

    name: str
    namespace: str
    namespace_mode: str
    service_account: str
    image: str
    pull_policy: str
    uid: int | None
    gid: int | None
    working_dir: str | None
    requests: dict[str, str]
    limits: dict[str, str]
    volumes: list[dict[str, Any]]
    volume_mounts: list[dict[str, Any]]
    host_network: bool
    kernel_host: str
    bind_ip: str
    gateway_id: str
    template: str
    overlay: dict[str, Any]
    pull_secrets: list[str]
    kernel_cluster_role: str
    fail_unschedulable: bool
    image_pull_timeout: float
    log_tail_lines: int
    legacy_launcher: bool
    mount_token: bool = False
    spark: SparkDriver | None = None
    extra: dict[str, Any] = field(default_factory=dict)


def _truthy(value: Any) -> bool:
    if isinstance(value, str):
        return value.strip().lower() in ("1", "true", "yes", "on")
    return bool(value)


def _as_list(value: Any) -> list[str]:
    if isinstance(value, str):
        return [v.strip() for v in value.split(",") if v.strip()]
    return [str(v) for v in value or []]


class _Layers(RequestOverrides):
    """A setting from the request (where allowed), the kernelspec config, then the gateway."""

    def __init__(self, kernel: KernelContext, gateway: KubernetesSettings):
        config = kernel.config
        super().__init__(
            kernel, REQUEST_VARIABLES,
            allowed=_as_list(config.get("request_overrides", gateway.request_overrides)),
            ignored=_as_list(config.get("ignored_overrides", gateway.ignored_overrides)),
            mirror_working_dirs=_truthy(config.get("mirror_working_dirs", gateway.mirror_working_dirs)),
            where="the k8s resource manager's request_overrides",
        )
        self.gateway = gateway

    def cfg(self, key: str, fallback: Any = None) -> Any:
        value = self.config.get(key)
        if value in (None, ""):
            value = getattr(self.gateway, key, fallback)
        return fallback if value in (None, "") else value

    def get(self, setting: str, config_key: str, fallback: Any = None) -> tuple[Any, bool]:
        """(value, came_from_request); an image, namespace or service account may also come
        from a request through the operator's patterns (``allowed_images``...)."""
        name = _PATTERN_LISTS.get(setting, "")
        return super().get(setting, config_key, fallback, patterns=_as_list(self.cfg(name, [])) if name else None, patterns_name=name)


def resolve(kernel: KernelContext, gateway: KubernetesSettings | None = None) -> KernelPod:
    """Check and combine every value of ``kernel``'s pod; called by ``eg_launch_process`` first."""
    gateway = gateway or settings()
    layers = _Layers(kernel, gateway)
    mode = str(layers.cfg("namespace_mode"))
    if mode not in ("shared", "per-user", "per-kernel"):
        raise BadRequest(f"namespace_mode must be shared, per-user or per-kernel, not {mode!r}")
    name = _pod_name(kernel, layers)
    namespace = _namespace(kernel, layers, mode, name)
    account, account_requested = layers.get("service_account", "service_account_name", gateway.service_account_name)
    image = _image(kernel, layers)
    spark = resolve_spark(kernel, layers, image, configured_image(kernel, layers))
    if spark and (account_requested or kernel.config.get("service_account_name")):
        spark.service_account = ""  # the operator's or the request's account, as it is
    elif spark and spark.service_account:
        account = spark.service_account
    service_account = _dns("service account name (KERNEL_SERVICE_ACCOUNT_NAME)", account, subdomain=True)
    uid = _id_number(layers, "uid", gateway.default_uid, "EG_PROHIBITED_UIDS")
    gid = _id_number(layers, "gid", gateway.default_gid, "EG_PROHIBITED_GIDS")
    working_dir = containers.working_dir(layers.get("working_dir", "working_dir")[0])
    requests, limits = _resources(layers, gateway)
    volumes = _objects("KERNEL_VOLUMES", layers.get("volumes", "volumes", [])[0])
    if layers.requested("volumes") is not None:
        _check_volume_types(volumes, _as_list(layers.cfg("allowed_volume_types", [])))
    volume_mounts = _objects("KERNEL_VOLUME_MOUNTS", layers.get("volume_mounts", "volume_mounts", [])[0])
    overlay = _overlay(gateway.pod_overlay, kernel.config.get("pod_overlay"))
    pull_policy = str(layers.cfg("image_pull_policy"))
    if pull_policy not in ("IfNotPresent", "Always", "Never"):
        raise BadRequest(f"image_pull_policy must be IfNotPresent, Always or Never, not {pull_policy!r}")
    host_network = _truthy(layers.cfg("host_network", False))
    token = str(layers.cfg("service_account_token", "auto"))
    if token not in TOKEN_CHOICES:
        raise BadRequest(f"service_account_token must be {', '.join(TOKEN_CHOICES)}, not {token!r}")
    kernel_cluster_role = str(layers.cfg("kernel_cluster_role", ""))
    return KernelPod(
        name=name,
        namespace=namespace,
        namespace_mode=mode,
        service_account=service_account,
        image=image,
        pull_policy=pull_policy,
        uid=uid,
        gid=gid,
        working_dir=working_dir,
        requests=requests,
        limits=limits,
        volumes=volumes,
        volume_mounts=volume_mounts,
        host_network=host_network,
        kernel_host=str(layers.cfg("kernel_host", "")),
        bind_ip=str(layers.cfg("kernel_bind_ip", "0.0.0.0")),
        gateway_id=str(layers.cfg("gateway_id", "eg")),
        template=str(layers.cfg("pod_template", "")),
        overlay=overlay,
        pull_secrets=_as_list(layers.cfg("image_pull_secrets", [])),
        kernel_cluster_role=kernel_cluster_role,
        mount_token=token == "mount" or (token == "auto" and (
            spark is not None or (bool(kernel_cluster_role) and _creates_namespace(kernel, mode)))),
        fail_unschedulable=_truthy(layers.cfg("fail_unschedulable", True)),
        image_pull_timeout=_seconds("image_pull_timeout", layers.cfg("image_pull_timeout", 600.0)),
        log_tail_lines=int(layers.cfg("log_tail_lines", 25)),
        legacy_launcher=remote.legacy_launcher(kernel) and not (spark and kernel.config.get("legacy_launcher") in (None, "")),
        spark=spark,
    )


def creates_namespace(kernel: KernelContext, kp: KernelPod) -> bool:
    """Whether this launch creates (and its end deletes) the kernel's namespace."""
    return _creates_namespace(kernel, kp.namespace_mode)


def _creates_namespace(kernel: KernelContext, mode: str) -> bool:
    return mode != "shared" and not kernel.env.get("KERNEL_NAMESPACE") and "namespace" not in kernel.config


def _seconds(name: str, value: Any) -> float:
    try:
        seconds = float(value)
    except (TypeError, ValueError):
        seconds = -1.0
    if not seconds >= 0:
        raise BadRequest(f"{name} must be a number of seconds (0: no limit), not {str(value)[:40]!r}")
    return seconds


def _id_number(layers: _Layers, setting: str, default: str, variable: str) -> int | None:
    value, requested = layers.get(setting, setting, default)
    kind = REQUEST_VARIABLES[setting] if requested else setting.upper()
    return containers.kernel_id_number(kind, value, _as_list(layers.cfg(f"prohibited_{setting}s", [])), variable)


def dns_name(text: str, limit: int = 63) -> str:
    """Enterprise Gateway's normalization: lower case, runs of other characters to '-'."""
    return _UNSAFE.sub("-", text.lower()).strip("-")[:limit].strip("-")


def _dns(what: str, value: Any, *, subdomain: bool = False) -> str:
    text = str(value)
    pattern, limit = (_DNS_SUBDOMAIN, 253) if subdomain else (_DNS_LABEL, 63)
    if len(text) > limit or not pattern.match(text):
        raise BadRequest(f"{what} {text[:80]!r} is not a valid Kubernetes name (lower-case letters, digits and '-', at most {limit})")
    return text


def _pod_name(kernel: KernelContext, layers: _Layers) -> str:
    """``KERNEL_POD_NAME`` (allow-listed), else ``<user>-<kernel id>`` as Enterprise Gateway names it."""
    requested, _ = layers.get("pod_name", "pod_name")
    if requested:
        text = str(requested).replace("{{ kernel_id }}", kernel.kernel_id).replace("{{kernel_id}}", kernel.kernel_id)
        name = dns_name(text)
        if not name:
            raise BadRequest(f"KERNEL_POD_NAME {str(requested)[:80]!r} gives no usable pod name")
        return name
    user = dns_name(kernel.user or "kernel", 63 - 37) or "kernel"
    return f"{user}-{kernel.kernel_id}"


def _namespace(kernel: KernelContext, layers: _Layers, mode: str, pod_name: str) -> str:
    requested, from_request = layers.get("namespace", "namespace")
    if requested and (from_request or "namespace" in layers.config):
        return _dns("namespace (KERNEL_NAMESPACE)" if from_request else "namespace", requested)
    if mode == "per-kernel":
        return pod_name
    if mode == "per-user":
        prefix = str(layers.cfg("namespace_prefix", "eg-"))
        return _dns("namespace", (prefix + dns_name(kernel.user or "anonymous", 63 - len(prefix)))[:63])
    return _dns("namespace", layers.cfg("namespace", "default"))


def configured_image(kernel: KernelContext, layers: _Layers) -> str:
    """The image of ``kernel`` when its request names none: the kernelspec's, else the gateway's."""
    return str(kernel.config.get("image_name") or layers.spec_env.get("KERNEL_IMAGE") or layers.gateway.image_name or "")


def _image(kernel: KernelContext, layers: _Layers) -> str:
    configured = configured_image(kernel, layers)
    requested, _ = layers.get("image", "image_name", configured)
    image = str(requested or configured)
    if not image:
        raise BadRequest(
            f"no image for kernelspec {kernel.kernel_name!r}: set image_name in its config, or "
            "KubernetesSettings.image_name / EG_KERNEL_IMAGE on the gateway"
        )
    if len(image) > 255 or not _IMAGE.match(image):
        raise BadRequest(f"image name {image[:80]!r} is not a valid image reference")
    return image


def quantity(value: Any) -> float:
    """A Kubernetes quantity ('500m', '2', '1Gi') as a number; ValueError when malformed."""
    text = str(value).strip()
    if not _QUANTITY.match(text):
        raise ValueError(text)
    match = re.match(r"(\d+(?:\.\d+)?)(.*)", text)
    number, unit = float(match.group(1)), match.group(2)
    if unit.startswith("e"):
        return number * 10 ** int(unit[1:])
    return number * _UNITS[unit]


def checked_amount(variable: str, text: str, parse: Any, example: str) -> float:
    """``text`` parsed by ``parse`` (which raises ValueError when malformed): a 400 naming
    ``variable`` when it is malformed or not positive."""
    try:
        amount = parse(text)
    except ValueError:
        raise BadRequest(f"{variable} must be {example}, not {text[:40]!r}") from None
    if amount <= 0:
        raise BadRequest(f"{variable} must be positive")
    return amount


def requested_resources(kp: KernelPod) -> dict[str, float]:
    """What the kernel requests of the cluster, for resource quotas (``eg_requested_resources``):
    CPUs, memory in bytes, GPUs (``nvidia.com/gpu``) of its pod, and for a Spark kernel its
    executors' too (the count as capped, times :func:`executor_requests`)."""
    amounts = {"cpus": "cpu", "memory": "memory", "gpus": "nvidia.com/gpu"}
    result = {kind: quantity(kp.requests[resource]) for kind, resource in amounts.items() if resource in kp.requests}
    if kp.spark:
        for kind, amount in executor_requests(kp.spark).items():
            result[kind] = result.get(kind, 0.0) + kp.spark.executors * amount
    return result


def _resources(layers: _Layers, gateway: KubernetesSettings) -> tuple[dict[str, str], dict[str, str]]:
    requests: dict[str, str] = {}
    limits: dict[str, str] = {}
    for setting, resource, target in (
        ("cpus", "cpu", requests), ("memory", "memory", requests), ("gpus", "nvidia.com/gpu", requests),
        ("cpus_limit", "cpu", limits), ("memory_limit", "memory", limits), ("gpus_limit", "nvidia.com/gpu", limits),
    ):
        value, from_request = layers.get(setting, setting)
        if value in (None, ""):
            continue
        text = str(value).strip()
        amount = checked_amount(REQUEST_VARIABLES[setting], text, quantity, "a Kubernetes quantity such as 500m, 2 or 4Gi")
        if resource == "nvidia.com/gpu" and amount != int(amount):
            raise BadRequest(f"{REQUEST_VARIABLES[setting]} must be a whole number of GPUs")
        if from_request:
            ceiling = {"cpu": gateway.max_cpus, "memory": quantity(gateway.max_memory) if gateway.max_memory else 0,
                       "nvidia.com/gpu": gateway.max_gpus}[resource]
            if ceiling and amount > ceiling:
                raise LaunchRefused(f"{REQUEST_VARIABLES[setting]}={text} exceeds the per-kernel limit of {ceiling:g}")
        target[resource] = text
    for resource in ("nvidia.com/gpu",):  # extended resources need limit == request
        if resource in requests and resource not in limits:
            limits[resource] = requests[resource]
    return requests, limits


def _objects(var: str, value: Any) -> list[dict[str, Any]]:
    """``KERNEL_VOLUMES`` / ``KERNEL_VOLUME_MOUNTS``: a YAML or JSON list of mappings (EG's rule)."""
    if isinstance(value, str):
        try:
            value = yaml.safe_load(value) if value.strip() else []
        except yaml.YAMLError:
            raise BadRequest(f"{var} must be a YAML or JSON list of mappings") from None
    if value is None:
        return []
    if not isinstance(value, list) or not all(isinstance(v, dict) for v in value):
        raise BadRequest(f"{var} must be a list of mappings")
    for item in value:
        if not isinstance(item.get("name"), str) or not _DNS_LABEL.match(item["name"]):
            raise BadRequest(f"each entry of {var} needs a 'name' that is a valid Kubernetes name")
        if var == "KERNEL_VOLUME_MOUNTS" and not str(item.get("mountPath", "")).startswith("/"):
            raise BadRequest(f"each entry of {var} needs an absolute 'mountPath'")
    return json.loads(json.dumps(value))


def _check_volume_types(volumes: list[dict[str, Any]], allowed: list[str]) -> None:
    for volume in volumes:
        kinds = [k for k in volume if k != "name"]
        if len(kinds) != 1:
            raise BadRequest(f"volume {volume.get('name')!r} must have exactly one source")
        if kinds[0] not in allowed:
            raise LaunchRefused(
                f"volume {volume['name']!r} uses {kinds[0]!r}, which requests may not use; allowed: {', '.join(allowed) or 'none'}"
            )


def _overlay(*layers: Any) -> dict[str, Any]:
    from ._manifest import merge

    result: dict[str, Any] = {}
    for layer in layers:
        if layer in (None, ""):
            continue
        if isinstance(layer, str):
            try:
                layer = json.loads(layer)
            except ValueError:
                raise BadRequest("pod_overlay must be a JSON object (a Pod manifest fragment)") from None
        if not isinstance(layer, dict):
            raise BadRequest("pod_overlay must be an object (a Pod manifest fragment)")
        result = merge(result, layer)
    return result


__all__ = ["KernelPod", "resolve", "dns_name", "quantity", "REQUEST_VARIABLES"]
