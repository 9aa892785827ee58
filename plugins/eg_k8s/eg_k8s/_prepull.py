"""Kernel images pulled ahead of launches, on every node, through the kubelet.

:func:`lacking` reads which nodes lack which images from ``node.status.images`` (what the
kubelet reports it holds). :func:`pull` makes the kubelet of each such node pull each image it
lacks: a short-lived pod per node and image (``nodeName`` set, so no scheduling; the kernel
pods' own pull secrets; command ``true``; no service-account token), watched until its
container ran (or its pull failed), then deleted. No container-runtime socket and no
privileged DaemonSet are needed: only the right to create pods, as for kernels.
"""

from __future__ import annotations

import asyncio
import uuid
from typing import Any, Iterable

from . import _api as api
from ._pods import IMAGE_PULL_FAILURES, container_status

LABEL = "eg.jupyter.org/prepull"


def normalized(image: str) -> str:
    """``image`` as the runtime may list it: no default registry or ``library/``, ``:latest``
    when it has neither tag nor digest."""
    for prefix in ("docker.io/", "index.docker.io/"):
        if image.startswith(prefix):
            image = image[len(prefix):]
    if image.startswith("library/"):
        image = image[len("library/"):]
    if "@" not in image and ":" not in image.rsplit("/", 1)[-1]:
        image += ":latest"
    return image


async def lacking(images: Iterable[str]) -> dict[str, list[str]]:
    """Each node that lacks some of ``images``, and those images (nodes that hold all of them
    are left out)."""
    nodes = await api.call_raw(api.core().list_node)
    wanted = sorted(set(images))
    found: dict[str, list[str]] = {}
    for node in nodes.get("items") or []:
        held = {normalized(name) for entry in (node.get("status") or {}).get("images") or [] for name in entry.get("names") or []}
        missing = [image for image in wanted if normalized(image) not in held]
        if missing:
            found[node["metadata"]["name"]] = missing
    return found


async def pull(images: Iterable[str], namespace: str, pull_secrets: Iterable[str] = ()) -> dict[tuple[str, str], str | None]:
    """Pull each of ``images`` on each node that lacks it; ``{(node, image): None when pulled,
    else why not}``."""
    todo = [(node, image) for node, missing in (await lacking(images)).items() for image in missing]
    results = await asyncio.gather(*(_pull_one(node, image, namespace, list(pull_secrets)) for node, image in todo), return_exceptions=True)
    return {key: (None if result is None else str(result)) for key, result in zip(todo, results)}


def pod(node: str, image: str, namespace: str, pull_secrets: list[str]) -> dict[str, Any]:
    spec: dict[str, Any] = {
        "nodeName": node, "restartPolicy": "Never", "automountServiceAccountToken": False, "terminationGracePeriodSeconds": 0,
        "containers": [{"name": "pull", "image": image, "command": ["true"], "imagePullPolicy": "IfNotPresent"}],
    }
    if pull_secrets:
        spec["imagePullSecrets"] = [{"name": name} for name in pull_secrets]
    name = f"eg-prepull-{uuid.uuid4().hex[:12]}"
    return {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": name, "namespace": namespace, "labels": {LABEL: "true"}}, "spec": spec}


def _outcome(obj: dict[str, Any]) -> str | None:
    """``"pulled"`` once the container got past its image, a pull failure's text, else None."""
    state = container_status(obj).get("state") or {}
    waiting = state.get("waiting") or {}
    if waiting.get("reason") in IMAGE_PULL_FAILURES:
        return f"{waiting['reason']}: {waiting.get('message') or ''}".rstrip(": ")
    if state.get("running") or state.get("terminated") or (obj.get("status") or {}).get("phase") in ("Succeeded", "Failed"):
        return "pulled"
    return None


async def _pull_one(node: str, image: str, namespace: str, pull_secrets: list[str]) -> None:
    core = api.core()
    body = pod(node, image, namespace, pull_secrets)
    name = body["metadata"]["name"]
    await api.call_raw(core.create_namespaced_pod, namespace, body)
    try:
        while True:  # a watch that expired lists anew
            async for kind, obj in api.list_and_watch(core.list_namespaced_pod, core.list_pod_for_all_namespaces, namespace,
                                                      field_selector=f"metadata.name={name}"):
                for item in (obj.get("items") or []) if kind == "LISTED" else [obj]:
                    outcome = _outcome(item)
                    if outcome == "pulled":
                        return
                    if outcome is not None:
                        raise RuntimeError(f"node {node} cannot pull {image}: {outcome}")
    finally:
        await api.ignore_missing(core.delete_namespaced_pod, name, namespace, grace_period_seconds=0)
