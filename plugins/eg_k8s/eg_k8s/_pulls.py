"""The image pull of a kernel pod as a launch phase of its own, from the kubelet's pod events.

One :class:`eg_core.watch.SharedWatch` per scope and cluster (as for pods, :mod:`._pods`) follows the pull
events of pods (``Pulling``, ``Pulled``, ``Failed``, ``BackOff``), keyed by the pod's uid, the
value being the pod's latest such event. While a launch waits for its pod, :func:`follow` sees
``Pulling``: it reports the ``pulling`` step (as eg-docker names it), stops the launch deadline's clock
(:meth:`eg_core.KernelContext.pause_launch_deadline`) and gives the pull its own limit
(``image_pull_timeout``); at ``Pulled`` it reports ``pulled`` with the pull's seconds and
starts the launch clock again with the time it had left. A pull that fails is failed by the pod's
own state (:class:`eg_k8s._pods.LaunchWatch`, phase ``image_pull``); one that outlives its limit
fails the launch in phase ``image_pull`` naming the image and the limit.
"""

from __future__ import annotations

import asyncio
import time
from typing import Any, AsyncIterator

from eg_core import KernelContext, LaunchFailed
from eg_core.watch import Change, SharedWatch, Snapshot

from . import _api as api
from . import _clusters as clusters
from ._clusters import Cluster

PULL_REASONS = {"Pulling", "Pulled", "Failed", "BackOff", "ErrImageNeverPull"}

_watches: dict[tuple[Cluster, str | None], SharedWatch] = {}


def events(namespace: str | None) -> SharedWatch:
    """The shared watch on pull events of pods in ``namespace`` (None: all namespaces) of the current cluster."""
    cluster = clusters.current()
    watch = _watches.get((cluster, namespace))
    if watch is None:
        where = f"namespace {namespace}" if namespace else "all namespaces"
        watch = _watches[cluster, namespace] = SharedWatch(f"pod image pulls in {where} of {cluster}", lambda: _feed(cluster, namespace))
    return watch


async def close() -> None:
    for watch in list(_watches.values()):
        await watch.close()
    _watches.clear()


def _pull_event(event: dict[str, Any]) -> tuple[str, dict[str, Any]] | None:
    if event.get("reason") not in PULL_REASONS:
        return None
    uid = (event.get("involvedObject") or {}).get("uid")
    return (uid, {"reason": event["reason"], "message": event.get("message") or ""}) if uid else None


def _when(event: dict[str, Any]) -> str:
    return event.get("lastTimestamp") or event.get("eventTime") or event.get("firstTimestamp") or ""


async def _feed(cluster: Cluster, namespace: str | None) -> AsyncIterator[Snapshot | Change]:
    clusters.enter(cluster)  # the watch's own task
    core = api.core()
    async for kind, obj in api.list_and_watch(core.list_namespaced_event, core.list_event_for_all_namespaces, namespace,
                                              field_selector="involvedObject.kind=Pod"):
        if kind == "LISTED":
            found = [_pull_event(event) for event in sorted(obj.get("items") or [], key=_when)]
            yield Snapshot(dict(f for f in found if f))
        elif kind in ("ADDED", "MODIFIED") and (pull := _pull_event(obj)):
            yield Change(*pull)


def _reason(*reasons: str):
    return lambda event: event if event is not None and event["reason"] in reasons else None


async def follow(kernel: KernelContext, uid: str, image: str, limit: float) -> None:
    """Report and time the pod's image pull (see the module docstring); returns once the image
    is pulled, raises :class:`LaunchFailed` when the pull outlives ``limit`` seconds (0: no
    limit). Never returns when no pull happens (the image is on the node): cancel it."""
    watch = events(kernel.state.get("scope"))
    await watch.wait(uid, _reason("Pulling"))
    started = time.monotonic()
    kernel.progress("pulling", image=image, limit=limit or None)
    kernel.pause_launch_deadline()
    try:
        ended = await asyncio.wait_for(watch.wait(uid, _reason("Pulled", "Failed", "BackOff", "ErrImageNeverPull")), limit or None)
    except asyncio.TimeoutError:
        raise LaunchFailed(
            "image_pull", f"pod {kernel.state.get('pod')}: pulling image {image} took longer than image_pull_timeout ({limit:g}s)",
        ) from None
    finally:
        kernel.resume_launch_deadline()
    if ended["reason"] == "Pulled":  # a failed pull fails the launch through the pod's state
        kernel.progress("pulled", image=image, seconds=round(time.monotonic() - started, 3))
