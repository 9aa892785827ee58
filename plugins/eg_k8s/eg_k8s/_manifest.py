"""The objects a kernel launch creates: its Pod (from eg's built-in pod, or an Enterprise Gateway
``kernel-pod.yaml.j2`` style template), the operator's declarative overlay, and a Secret for the
kernel's launch key.

Template rendering follows Enterprise Gateway's ``launch_kubernetes.py``: the variables are the
kernel's values in lower case (``kernel_id``, ``kernel_pod_name``, ``kernel_namespace``,
``kernel_image``, ``kernel_cpus``...), the ``yaml_safe`` filter is there, and the result may hold
at most one each of Pod, Service, ConfigMap, Secret and PersistentVolumeClaim. Unlike Enterprise
Gateway, every value is YAML-escaped whether or not the template says ``| yaml_safe`` (a sandboxed
Jinja environment whose ``finalize`` escapes anything not escaped yet), and only checked values
reach the template, so a request can never inject YAML.

The overlay (``pod_overlay``: gateway-wide, then the kernelspec's) is a Pod fragment merged into
the pod: mappings merge key by key, lists of named mappings (volumes, env, tolerations with
names...) merge by ``name``, other lists are appended. Its ``container`` key merges into the kernel
container; ``shm_size`` mounts a memory-backed ``/dev/shm`` of that size; ``gpus`` requests and
limits ``nvidia.com/gpu``. What identifies the kernel (name, namespace, eg's labels, restartPolicy)
is set after the merge and cannot be overlaid. ``automountServiceAccountToken`` is set after it
too (``service_account_token``: no token unless the kernel is meant to use the API), unless the
template or overlay sets it.
"""

from __future__ import annotations

import copy
import os
import re
from typing import Any

import yaml

from eg_core import BadRequest, KernelContext

from . import _pool as pool
from ._request import KernelPod

LABEL_KERNEL_ID = "kernel_id"
LABEL_APP = "app"
LABEL_COMPONENT = "component"
APP = "enterprise-gateway"
COMPONENT = "kernel"
LABEL_GATEWAY = "eg.jupyter.org/gateway"
ANNOTATION_USER = "eg.jupyter.org/user"
CONTAINER = "kernel"
ALLOWED_KINDS = ("Pod", "Service", "ConfigMap", "Secret", "PersistentVolumeClaim")
_ENV_NAME = re.compile(r"[-._a-zA-Z][-._a-zA-Z0-9]*\Z")


def selector(gateway_id: str, kernel_id: str | None = None) -> str:
    """The label selector of a gateway's kernel pods (of one kernel when ``kernel_id`` is given)."""
    parts = [f"{LABEL_COMPONENT}={COMPONENT}", f"{LABEL_APP}={APP}", f"{LABEL_GATEWAY}={gateway_id}"]
    parts.append(f"{LABEL_KERNEL_ID}={kernel_id}" if kernel_id else LABEL_KERNEL_ID)
    return ",".join(parts)


def labels(kernel: KernelContext, kp: KernelPod) -> dict[str, str]:
    """The labels of every object of the kernel's launch (a warm pool's adds its own)."""
    return {LABEL_KERNEL_ID: kernel.kernel_id, LABEL_APP: APP, LABEL_COMPONENT: COMPONENT, LABEL_GATEWAY: kp.gateway_id,
            **pool.labels(kernel)}


# -- merging -----------------------------------------------------------------------------------


def _named(items: list) -> bool:
    return bool(items) and all(isinstance(i, dict) and "name" in i for i in items)


def merge(base: Any, overlay: Any) -> Any:
    """``overlay`` merged into a copy of ``base`` (the rules are in the module docstring)."""
    if isinstance(base, dict) and isinstance(overlay, dict):
        result = dict(base)
        for key, value in overlay.items():
            result[key] = merge(base[key], value) if key in base else copy.deepcopy(value)
        return result
    if isinstance(base, list) and isinstance(overlay, list):
        if _named(base) and _named(overlay):
            result = [copy.deepcopy(i) for i in base]
            index = {item["name"]: n for n, item in enumerate(result)}
            for item in overlay:
                if item["name"] in index:
                    result[index[item["name"]]] = merge(result[index[item["name"]]], item)
                else:
                    result.append(copy.deepcopy(item))
            return result
        return [copy.deepcopy(i) for i in base] + [copy.deepcopy(i) for i in overlay]
    return copy.deepcopy(overlay)


def apply_overlay(pod: dict[str, Any], overlay: dict[str, Any]) -> dict[str, Any]:
    """The pod with the operator's overlay (and its shortcuts) merged in."""
    overlay = dict(overlay)
    container = overlay.pop("container", None) or {}
    shm = overlay.pop("shm_size", None)
    gpus = overlay.pop("gpus", None)
    if not isinstance(container, dict):
        raise BadRequest("pod_overlay.container must be an object (fields of the kernel container)")
    if shm:
        overlay = merge(overlay, {"spec": {"volumes": [{"name": "dshm", "emptyDir": {"medium": "Memory", "sizeLimit": str(shm)}}]}})
        container = merge(container, {"volumeMounts": [{"name": "dshm", "mountPath": "/dev/shm"}]})
    if gpus:
        container = merge(container, {"resources": {"requests": {"nvidia.com/gpu": str(gpus)}, "limits": {"nvidia.com/gpu": str(gpus)}}})
    pod = merge(pod, overlay)
    containers = pod.setdefault("spec", {}).setdefault("containers", [{}])
    containers[0] = merge(containers[0], container)
    return pod


# -- the pod -------------------------------------------------------------------------------------


def default_pod(kp: KernelPod) -> dict[str, Any]:
    """eg's built-in pod: what Enterprise Gateway's default kernel-pod.yaml.j2 renders."""
    container: dict[str, Any] = {"name": CONTAINER, "image": kp.image, "imagePullPolicy": kp.pull_policy, "env": []}
    resources = {k: v for k, v in (("requests", kp.requests), ("limits", kp.limits)) if v}
    if resources:
        container["resources"] = resources
    if kp.working_dir:
        container["workingDir"] = kp.working_dir
    if kp.volume_mounts:
        container["volumeMounts"] = kp.volume_mounts
    spec: dict[str, Any] = {"restartPolicy": "Never", "serviceAccountName": kp.service_account, "containers": [container]}
    if kp.uid is not None or kp.gid is not None:
        security: dict[str, Any] = {"fsGroup": 100}
        if kp.uid is not None:
            security["runAsUser"] = kp.uid
        if kp.gid is not None:
            security["runAsGroup"] = kp.gid
        spec["securityContext"] = security
    if kp.volumes:
        spec["volumes"] = kp.volumes
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"annotations": {"cluster-autoscaler.kubernetes.io/safe-to-evict": "false"}},
        "spec": spec,
    }


class _Escaped(str):
    """A template value already YAML-escaped."""


def yaml_safe(value: Any) -> _Escaped:
    """Enterprise Gateway's ``yaml_safe`` filter: the value as a YAML scalar or flow collection."""
    if isinstance(value, _Escaped):
        return value
    if isinstance(value, str):
        return _Escaped(yaml.dump(value, default_style='"', width=10000).strip())
    if isinstance(value, (dict, list)):
        return _Escaped(yaml.dump(value, default_flow_style=True, width=10000).strip())
    return _Escaped(yaml.dump(value, width=10000).replace("\n...", "").strip())


def template_variables(kernel: KernelContext, kp: KernelPod, env: dict[str, str]) -> dict[str, Any]:
    """The template's ``kernel_*`` variables: the kernel's other ``KERNEL_*`` values as strings,
    then the checked pod values (only set ones, so ``is defined`` tests work as in EG)."""
    variables: dict[str, Any] = {k.lower(): v for k, v in env.items() if k.startswith("KERNEL_")}
    for key in ("kernel_volumes", "kernel_volume_mounts", "kernel_uid", "kernel_gid", "kernel_working_dir", "kernel_cpus",
                "kernel_memory", "kernel_gpus", "kernel_cpus_limit", "kernel_memory_limit", "kernel_gpus_limit"):
        variables.pop(key, None)  # only their checked values, below
    variables.update(
        kernel_id=kernel.kernel_id,
        kernel_pod_name=kp.name,
        kernel_namespace=kp.namespace,
        kernel_service_account_name=kp.service_account,
        kernel_image=kp.image,
        kernel_volumes=kp.volumes,
        kernel_volume_mounts=kp.volume_mounts,
    )
    if kp.working_dir:
        variables["kernel_working_dir"] = kp.working_dir
    for name, value in (("kernel_uid", kp.uid), ("kernel_gid", kp.gid)):
        if value is not None:
            variables[name] = value
    for prefix, values in (("", kp.requests), ("_limit", kp.limits)):
        for resource, var in (("cpu", "kernel_cpus"), ("memory", "kernel_memory"), ("nvidia.com/gpu", "kernel_gpus")):
            if resource in values:
                variables[var + prefix] = values[resource]
    return variables


def render_template(path: str, variables: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """Render an EG pod template; returns its objects by kind (at most one of each allowed kind)."""
    from jinja2 import FileSystemLoader
    from jinja2.exceptions import TemplateError
    from jinja2.sandbox import SandboxedEnvironment

    env = SandboxedEnvironment(
        loader=FileSystemLoader(os.path.dirname(path)), trim_blocks=True, lstrip_blocks=True, autoescape=False,
        finalize=yaml_safe,
    )
    env.filters["yaml_safe"] = yaml_safe
    try:
        text = env.get_template(os.path.basename(path)).render(**variables)
        documents = [d for d in yaml.safe_load_all(text) if d]
    except FileNotFoundError:
        raise BadRequest(f"pod template {path} does not exist") from None
    except (TemplateError, yaml.YAMLError, OSError) as exc:
        raise BadRequest(f"pod template {path} does not render to Kubernetes objects: {exc}") from None
    objects: dict[str, dict[str, Any]] = {}
    for document in documents:
        kind = document.get("kind") if isinstance(document, dict) else None
        if kind not in ALLOWED_KINDS:
            raise BadRequest(f"pod template {path} renders a {kind!r}; allowed kinds: {', '.join(ALLOWED_KINDS)}")
        if kind in objects:
            raise BadRequest(f"pod template {path} renders more than one {kind}")
        objects[kind] = document
    if "Pod" not in objects:
        raise BadRequest(f"pod template {path} renders no Pod")
    return objects


def template_path(kernel: KernelContext, kp: KernelPod) -> str:
    path = kp.template
    if path and not os.path.isabs(path):
        path = os.path.join(str(kernel.spec.get("resource_dir") or kernel.config.get("resource_dir") or "."), path)
    return path


def extend_env(container: dict[str, Any], env: dict[str, str]) -> None:
    """EG's ``extend_pod_env``: template entries named in ``env`` get its values, the rest of
    ``env`` is appended."""
    stanza = [dict(item) for item in container.get("env") or [] if isinstance(item, dict)]
    seen = set()
    for item in stanza:
        if item.get("name") in env:
            item["value"] = env[item["name"]]
            item.pop("valueFrom", None)
            seen.add(item["name"])
    stanza += [{"name": k, "value": v} for k, v in env.items() if k not in seen and _ENV_NAME.match(k)]
    container["env"] = stanza


def build(kernel: KernelContext, kp: KernelPod, command: list[str] | None, env: dict[str, str],
          secret_name: str) -> dict[str, dict[str, Any]]:
    """Every object of the kernel's launch by kind: the Pod first, then what the template adds."""
    path = template_path(kernel, kp)
    objects = render_template(path, template_variables(kernel, kp, env)) if path else {"Pod": default_pod(kp)}
    pod = apply_overlay(objects["Pod"], kp.overlay)
    metadata = pod.setdefault("metadata", {})
    metadata["name"] = kp.name
    metadata["namespace"] = kp.namespace
    metadata["labels"] = {**(metadata.get("labels") or {}), **labels(kernel, kp)}
    metadata["annotations"] = {**(metadata.get("annotations") or {}), ANNOTATION_USER: kernel.user, **pool.annotations(kernel)}
    spec = pod.setdefault("spec", {})
    spec["restartPolicy"] = "Never"
    spec.setdefault("automountServiceAccountToken", kp.mount_token)
    if kp.host_network:
        spec["hostNetwork"] = True
        spec.setdefault("dnsPolicy", "ClusterFirstWithHostNet")
    if kp.pull_secrets:
        spec["imagePullSecrets"] = merge(spec.get("imagePullSecrets") or [], [{"name": n} for n in kp.pull_secrets])
    containers = spec.get("containers") or []
    if not containers or not isinstance(containers[0], dict):
        raise BadRequest("the kernel pod has no container")
    container = containers[0]
    container.setdefault("name", CONTAINER)
    container.setdefault("image", kp.image)
    if command is not None:
        container["command"] = command
        container.pop("args", None)
    extend_env(container, env)
    container["env"].append({"name": "EG_LAUNCH_KEY", "valueFrom": {"secretKeyRef": {"name": secret_name, "key": "launch-key", "optional": True}}})
    objects["Pod"] = pod
    for kind, obj in objects.items():
        if kind == "Pod":
            continue
        meta = obj.setdefault("metadata", {})
        meta["namespace"] = kp.namespace
        meta["labels"] = {**(meta.get("labels") or {}), **labels(kernel, kp)}
        meta.setdefault("name", f"{kp.name}-{kind.lower()}")
    return objects


def launch_secret(kernel: KernelContext, kp: KernelPod, name: str, launch_key: str | None) -> dict[str, Any]:
    """The Secret holding what must not be in the pod spec: the launcher's key (and, once the
    kernel runs, its connection key: see :mod:`._store`)."""
    return {
        "apiVersion": "v1",
        "kind": "Secret",
        "metadata": {"name": name, "namespace": kp.namespace, "labels": labels(kernel, kp)},
        "type": "Opaque",
        "stringData": {"launch-key": launch_key or ""},
    }


def owned_by(obj: dict[str, Any], pod: dict[str, Any]) -> dict[str, Any]:
    """``obj`` with the created pod as its owner, so the cluster's garbage collector removes it
    with the pod even if no gateway does."""
    meta = pod["metadata"]
    obj["metadata"]["ownerReferences"] = [
        {"apiVersion": "v1", "kind": "Pod", "name": meta["name"], "uid": meta["uid"], "blockOwnerDeletion": False}
    ]
    return obj
