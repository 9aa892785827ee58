"""One watch on this gateway's kernel pods, and what a pod's state means for its kernel.

Every kernel's ``eg_confirm_startup``, ``eg_wait`` and ``eg_poll`` read one
:class:`eg_core.watch.SharedWatch` per scope (the shared namespace, or all namespaces when kernels
get namespaces of their own) and cluster (:mod:`._clusters`): one list, then one watch
connection from its resourceVersion, whatever the number of kernels. Pods are kept as the API's
JSON (dicts), keyed by kernel id.
"""

from __future__ import annotations

from typing import Any, AsyncIterator, Callable

from eg_core import LaunchFailed
from eg_core.watch import Change, SharedWatch, Snapshot

from . import _api as api
from . import _clusters as clusters
from ._clusters import Cluster
from ._manifest import LABEL_KERNEL_ID, selector

IMAGE_PULL_FAILURES = {"ErrImagePull", "ImagePullBackOff", "ErrImageNeverPull", "InvalidImageName", "RegistryUnavailable"}
CONTAINER_FAILURES = {"CreateContainerConfigError", "CreateContainerError", "RunContainerError", "PreCreateHookError"}

_watches: dict[tuple[Cluster, str | None, str], SharedWatch] = {}


def pods(namespace: str | None, gateway_id: str, cluster: Cluster | None = None) -> SharedWatch:
    """The shared watch on ``gateway_id``'s kernel pods in ``namespace`` (None: all namespaces)
    of ``cluster`` (the current one)."""
    cluster = cluster or clusters.current()
    key = (cluster, namespace, gateway_id)
    watch = _watches.get(key)
    if watch is None:
        where = f"namespace {namespace}" if namespace else "all namespaces"
        watch = _watches[key] = SharedWatch(f"kernel pods in {where} of {cluster}", lambda: _feed(cluster, namespace, selector(gateway_id)))
    return watch


def watches() -> list[SharedWatch]:
    return list(_watches.values())


def find(kernel_id: str) -> tuple[Cluster, dict[str, Any]] | None:
    """The pod of ``kernel_id`` in any watch, and its cluster."""
    for (cluster, _, _), watch in list(_watches.items()):
        pod = watch.get(kernel_id)
        if pod is not None:
            return cluster, pod
    return None


async def close() -> None:
    for watch in list(_watches.values()):
        await watch.close()
    _watches.clear()


def _kernel_id(pod: dict[str, Any]) -> str | None:
    return ((pod.get("metadata") or {}).get("labels") or {}).get(LABEL_KERNEL_ID)


async def _feed(cluster: Cluster, namespace: str | None, label_selector: str) -> AsyncIterator[Snapshot | Change]:
    clusters.enter(cluster)  # the watch's own task
    core = api.core()
    uids: dict[str, str] = {}
    async for kind, obj in api.list_and_watch(core.list_namespaced_pod, core.list_pod_for_all_namespaces, namespace,
                                              label_selector=label_selector):
        if kind == "LISTED":
            current: dict[str, Any] = {}
            for pod in obj.get("items") or []:
                kernel_id = _kernel_id(pod)
                if kernel_id:
                    current[kernel_id] = pod
                    uids[kernel_id] = pod["metadata"]["uid"]
            yield Snapshot(current)
            continue
        kernel_id = _kernel_id(obj)
        if not kernel_id:
            continue
        uid = obj["metadata"]["uid"]
        if kind == "DELETED":
            if uids.get(kernel_id) == uid:  # not a relaunched pod's predecessor
                uids.pop(kernel_id, None)
                yield Change(kernel_id, None)
        else:
            uids[kernel_id] = uid
            yield Change(kernel_id, obj)


# -- what a pod's state means ------------------------------------------------------------------


def container_status(pod: dict[str, Any]) -> dict[str, Any]:
    statuses = (pod.get("status") or {}).get("containerStatuses") or []
    return statuses[0] if statuses else {}


def exit_code(pod: dict[str, Any] | None) -> int | None:
    """None while the pod's kernel runs (or has yet to), else its exit status."""
    if pod is None:
        return 0
    terminated = (container_status(pod).get("state") or {}).get("terminated")
    if terminated:
        return int(terminated.get("exitCode") or 0)
    phase = (pod.get("status") or {}).get("phase")
    if phase in ("Succeeded", "Failed"):
        return 0 if phase == "Succeeded" else 1
    if (pod.get("metadata") or {}).get("deletionTimestamp"):
        return None  # terminating: the DELETED event (or the container's end) will tell
    return None


def ours(uid: str | None) -> Callable[[dict[str, Any] | None], dict[str, Any] | None]:
    """Filter: the pod if it is the one with ``uid`` (None for a predecessor or successor)."""
    return lambda pod: pod if pod is not None and (uid is None or pod["metadata"]["uid"] == uid) else None


def running(uid: str) -> Callable[[dict[str, Any] | None], bool | None]:
    """Decide: True once the pod ``uid``'s kernel container runs."""
    def decide(pod: dict[str, Any] | None) -> bool | None:
        if pod is None or pod["metadata"]["uid"] != uid:
            return None
        return True if (container_status(pod).get("state") or {}).get("running") else None
    return decide


def address(uid: str) -> Callable[[dict[str, Any] | None], str | None]:
    """Decide: the pod ``uid``'s IP once the API shows it."""
    def decide(pod: dict[str, Any] | None) -> str | None:
        if pod is None or pod["metadata"]["uid"] != uid:
            return None
        return (pod.get("status") or {}).get("podIP") or None
    return decide


def unschedulable(pod: dict[str, Any]) -> str | None:
    for condition in (pod.get("status") or {}).get("conditions") or []:
        if condition.get("type") == "PodScheduled" and condition.get("status") == "False" and condition.get("reason") == "Unschedulable":
            return condition.get("message") or "the scheduler found no node for the pod"
    return None


class LaunchWatch:
    """Decides, from each new state of the kernel's pod, whether its launch has failed.

    Used as the ``decide`` function of ``SharedWatch.wait``: raises :class:`LaunchFailed` with
    phase ``schedule`` (the scheduler's message), ``image_pull`` (the kubelet's reason and
    message) or ``launch_process`` (the container could not be created); returns a text when
    the container ended or the pod went away (the launch then fails in ``confirm_startup``);
    None while all is well.
    """

    def __init__(self, uid: str, fail_unschedulable: bool = True):
        self.uid = uid
        self.fail_unschedulable = fail_unschedulable
        self.seen = False

    def __call__(self, pod: dict[str, Any] | None) -> str | None:
        if pod is None:
            return "the kernel pod was deleted" if self.seen else None
        if pod["metadata"]["uid"] != self.uid:
            return None
        self.seen = True
        name = pod["metadata"]["name"]
        message = unschedulable(pod)
        if message and self.fail_unschedulable:
            raise LaunchFailed("schedule", f"pod {name} cannot be scheduled: {message}")
        status = container_status(pod)
        waiting = (status.get("state") or {}).get("waiting") or {}
        reason = waiting.get("reason")
        if reason in IMAGE_PULL_FAILURES:
            image = status.get("image") or "the image"
            raise LaunchFailed("image_pull", f"pod {name} cannot get image {image}: {reason}: {waiting.get('message') or ''}".rstrip(": "))
        if reason in CONTAINER_FAILURES:
            raise LaunchFailed("launch_process", f"pod {name}: {reason}: {waiting.get('message') or ''}".rstrip(": "))
        code = exit_code(pod)
        if code is not None:
            terminated = (status.get("state") or {}).get("terminated") or {}
            why = f" ({terminated['reason']})" if terminated.get("reason") else ""
            return f"the kernel container of pod {name} exited with status {code}{why}"
        return None


class Progress:
    """Reports a launch's slow steps once each (``scheduled``, ``creating``: the kubelet makes
    the container, pulling its image first if need be, which :mod:`._pulls` reports, and
    ``started``) through ``kernel.progress``; a change callback of the shared watch."""

    def __init__(self, kernel: Any, uid: str):
        self.kernel = kernel
        self.uid = uid
        self.done: set[str] = set()

    def step(self, name: str, **details: Any) -> None:
        if name not in self.done:
            self.done.add(name)
            self.kernel.progress(name, **details)

    def __call__(self, pod: dict[str, Any] | None) -> None:
        if pod is None or pod["metadata"]["uid"] != self.uid:
            return
        spec, status = pod.get("spec") or {}, pod.get("status") or {}
        for condition in status.get("conditions") or []:
            if condition.get("type") == "PodScheduled" and condition.get("status") == "True":
                self.step("scheduled", node=spec.get("nodeName", "?"))
        state = container_status(pod).get("state") or {}
        if (state.get("waiting") or {}).get("reason") == "ContainerCreating" or (spec.get("nodeName") and not state):
            self.step("creating", image=(spec.get("containers") or [{}])[0].get("image", "?"))
        if state.get("running"):
            self.step("started")


async def log_tail(name: str, namespace: str, lines: int) -> list[str]:
    """For ``eg_backend_log``: the pod's events (scheduling, pulls, kubelet errors; oldest first,
    at most a quarter of ``lines``) and then its container's last log lines, up to ``lines`` in
    all. A read the API server refuses is a line saying so; a container that never started has
    no log."""
    if lines <= 0:
        return []
    out = []
    try:
        events = await api.call_raw(
            api.core().list_namespaced_event, namespace, field_selector=f"involvedObject.kind=Pod,involvedObject.name={name}",
            _request_timeout=10,
        )
        items = sorted(events.get("items") or [], key=lambda e: e.get("lastTimestamp") or e.get("eventTime") or "")
        out = [f"pod event: {e.get('type')} {e.get('reason')}: {e.get('message') or ''}".rstrip() for e in items][-max(lines // 4, 1):]
    except Exception as exc:
        out = [f"pod events cannot be read: {_why(exc)}"]
    try:
        log = await api.call(api.core().read_namespaced_pod_log, name, namespace, tail_lines=lines - len(out), _request_timeout=10)
    except Exception as exc:
        if getattr(exc, "status", None) not in (400, 404):  # 400: the container never started
            out.append(f"the container's log cannot be read: {_why(exc)}")
        return out
    return out + log.splitlines()


def _why(exc: Exception) -> str:
    return api.message(exc) if getattr(exc, "status", None) is not None else str(exc)
