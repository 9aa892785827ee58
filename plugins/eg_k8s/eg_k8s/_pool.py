"""Pod kernels in warm pools: how a waiting pod is marked, which requests it fits, and its claim.

A warm pool's pod (``kernel.pooled``) is created like any kernel pod, as the gateway's own user,
and carries two more labels on the pod, its Secret and the template's objects:
:data:`LABEL_POOL` (the kernelspec) and :data:`LABEL_HOLDER` (the gateway process keeping it
waiting, :data:`HOLDER`), and the annotation :data:`ANNOTATION_HOLDER` (that process's host,
pid and start time). A claim (the ``pool_claimed`` event) removes the three and gives the pod
its claimant's user annotation, so the pod then looks as the claimant's own launch would have
made it; the core has already stored its session record on the pod (:mod:`._store`), so
adoption finds it as any other pod kernel.

A waiting pod is never adopted: with a session store it carries only its launch's record
(status launching), which the next gateway removes as an unfinished launch. The gateway holding
it deletes it at shutdown; one killed first, with no session store, leaves it to the orphan
sweep (:mod:`._orphans`), which never counts this process's own waiting pods, leaves those of
another live gateway on this host, and removes those of a dead one whatever
``orphans_at_startup`` says (short of ``ignore``): a waiting pod holds nobody's work.
"""

from __future__ import annotations

import asyncio
import json
import re
import uuid
from typing import Any

from eg_core import EGError, KernelContext, containers, procinfo

LABEL_POOL = "eg.jupyter.org/pool"
LABEL_HOLDER = "eg.jupyter.org/pool-holder"
ANNOTATION_HOLDER = "eg.jupyter.org/pool-holder"
HOLDER = uuid.uuid4().hex  # this gateway process
_LABEL_UNSAFE = re.compile(r"[^A-Za-z0-9_.-]+")

# What a pod gets only when it is created: a waiting pod serves a request only when the request
# resolves to the same values (the pod's name and a per-kernel namespace are its own).
CREATION_SETTINGS = (
    "namespace_mode", "service_account", "image", "pull_policy", "uid", "gid", "working_dir", "requests", "limits",
    "volumes", "volume_mounts", "host_network", "kernel_host", "bind_ip", "gateway_id", "template", "overlay",
    "pull_secrets", "kernel_cluster_role",
)


def labels(kernel: KernelContext) -> dict[str, str]:
    """The pool's labels of a waiting kernel's objects; none once it is claimed."""
    if not kernel.pooled:
        return {}
    spec = _LABEL_UNSAFE.sub("-", kernel.kernel_name)[:63].strip("-_.") or "pool"
    return {LABEL_POOL: spec, LABEL_HOLDER: HOLDER}


def annotations(kernel: KernelContext) -> dict[str, str]:
    return {ANNOTATION_HOLDER: json.dumps(procinfo.identity())} if kernel.pooled else {}


def misfit(pooled: KernelContext, request: KernelContext) -> str | None:
    """``eg_pool_fit``: why the waiting pod of ``pooled`` cannot serve ``request`` (a setting
    applied when a pod is created resolves differently, or the request names its own pod),
    None when it fits. A request the launch would refuse is a miss, so its launch answers it
    with the error. The pod's working directory is its own, so ``request.cwd`` is cleared."""
    from ._request import resolve

    if "KERNEL_POD_NAME" in request.env:
        return "KERNEL_POD_NAME names a pod when it is created"
    try:
        wanted, have, differ = containers.pool_differences(resolve, pooled, request, CREATION_SETTINGS)
    except EGError as exc:
        return f"the request's pod settings are not accepted: {exc.message}"
    if wanted.namespace_mode != "per-kernel" and wanted.namespace != have.namespace:
        differ.insert(0, "namespace")
    if differ:
        return f"the pod's {', '.join(differ)} would differ (applied when a pod is created)"
    request.cwd = None
    return None


CLAIM_DELAY = 0.5  # seconds: the claimant's first requests go first (the core's session record is written already)


def claim(kernel: KernelContext) -> None:
    """Called on ``pool_claimed``: rewrite the pod's and its objects' metadata for the claimant,
    in the background, :data:`CLAIM_DELAY` later (the claim is answered at once, and the
    client's first requests do not compete with these API calls); :func:`claimed` ends it."""
    from . import _clusters as clusters

    if kernel.state.get("pod"):
        with clusters.using(clusters.of_state(kernel.state)):  # the task's calls go to the kernel's cluster
            kernel.handles["claiming"] = asyncio.ensure_future(_claim(kernel))


async def claimed(kernel: KernelContext) -> None:
    """Before the kernel's cleanup: wait for a claim's metadata being written, or drop one not
    begun (the pod goes anyway)."""
    task = kernel.handles.pop("claiming", None)
    if task is not None:
        if not kernel.handles.get("claim_writing"):
            task.cancel()
        await asyncio.wait({task})


async def _claim(kernel: KernelContext) -> None:
    from ._lifecycle import patch_objects
    from ._manifest import ANNOTATION_USER

    await asyncio.sleep(CLAIM_DELAY)
    kernel.handles["claim_writing"] = True
    unmark = {"labels": {LABEL_POOL: None, LABEL_HOLDER: None}}
    try:
        await patch_objects(kernel.state, kernel.kernel_id, {"metadata": unmark},
                            pod={"metadata": {**unmark, "annotations": {ANNOTATION_HOLDER: None, ANNOTATION_USER: kernel.user}}})
    except Exception as exc:  # the pod works as it is; only its metadata is stale
        kernel.log.warning("could not relabel its warm-pool pod for its claimant: %s", exc)
    finally:
        kernel.handles.pop("claim_writing", None)


def holder_of(pod: dict[str, Any]) -> tuple[str | None, Any]:
    """The holder label of a waiting pod (None for a claimed or ordinary one), and the holder's
    identity from its annotation."""
    meta = pod.get("metadata") or {}
    holder = (meta.get("labels") or {}).get(LABEL_HOLDER)
    try:
        identity = json.loads((meta.get("annotations") or {}).get(ANNOTATION_HOLDER) or "null")
    except ValueError:
        identity = None
    return holder, identity


def waiting_verdict(pod: dict[str, Any]) -> str | None:
    """For the orphan sweep: None for a pod that is no waiting pod; ``"ours"`` for this
    process's own; ``"live"`` for one of another live gateway on this host; else ``"dead"``
    (its gateway ended on this host) or ``"elsewhere"`` (held from another host)."""
    holder, identity = holder_of(pod)
    if holder is None:
        return None
    if holder == HOLDER:
        return "ours"
    if procinfo.is_running_here(identity):
        return "live"
    if isinstance(identity, dict) and identity.get("host") == procinfo.identity()["host"]:
        return "dead"
    return "elsewhere"
