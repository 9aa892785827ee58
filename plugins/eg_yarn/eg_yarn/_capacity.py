"""Is there room in the kernel's queue? Asked before submitting, so a full queue fails the request
at once (503, with the queue's numbers) instead of leaving an application ACCEPTED until the launch
timeout, the commonest YARN complaint of Enterprise Gateway's users."""

from __future__ import annotations

from collections import deque

from eg_core import BadRequest, EGError

from ._rm import RMClient


class QueueFull(EGError):
    status = 503
    reason = "YARN Queue Has No Room"


def find_queue(scheduler: dict, name: str) -> dict | None:
    """The queue named ``name`` (a leaf name or a full path) in the scheduler tree, breadth first."""
    todo = deque([scheduler["scheduler"]["schedulerInfo"]])
    while todo:
        queue = todo.popleft()
        if name in (queue.get("queueName"), queue.get("queuePath")):
            return queue
        todo.extend(((queue.get("queues") or {}).get("queue")) or [])
    return None


def _leaves(scheduler: dict) -> list[str]:
    names, todo = [], deque([scheduler["scheduler"]["schedulerInfo"]])
    while todo:
        queue = todo.popleft()
        children = ((queue.get("queues") or {}).get("queue")) or []
        if not children and queue.get("queueName"):
            names.append(queue["queueName"])
        todo.extend(children)
    return names


async def check_room(rm: RMClient, queue_name: str, node_label: str, threshold: float) -> None:
    """Raise :class:`QueueFull` when the queue's partition is used above ``threshold`` percent
    of its capacity, :class:`BadRequest` when the queue or the label does not exist.

    A scheduler that reports no capacities (FIFO, fair) is not checked."""
    scheduler = await rm.scheduler()
    if scheduler["scheduler"]["schedulerInfo"].get("type") != "capacityScheduler":
        return
    name = queue_name or "default"
    queue = find_queue(scheduler, name)
    if queue is None:
        raise BadRequest(f"YARN queue {name!r} does not exist; leaf queues: {', '.join(_leaves(scheduler))}")
    if queue.get("state", "RUNNING") != "RUNNING":
        raise QueueFull(f"YARN queue {name!r} is {queue['state']}: it accepts no applications")
    partitions = (queue.get("capacities") or {}).get("queueCapacitiesByPartition") or []
    partition = next((p for p in partitions if p.get("partitionName", "") == node_label), None)
    if partition is None:
        if node_label:
            labels = ", ".join(repr(p.get("partitionName")) for p in partitions if p.get("partitionName"))
            raise BadRequest(f"YARN queue {name!r} has no node label {node_label!r}; its labels: {labels or 'none'}")
        partition = {"usedCapacity": queue.get("usedCapacity", 0.0), "absoluteUsedCapacity": queue.get("absoluteUsedCapacity", 0.0),
                     "absoluteCapacity": queue.get("absoluteCapacity", 0.0), "absoluteMaxCapacity": queue.get("absoluteMaxCapacity", 0.0)}
    used = float(partition.get("usedCapacity", 0.0))
    if used > threshold:
        where = f"partition {node_label!r}" if node_label else "the default partition"
        raise QueueFull(
            f"YARN queue {name!r} ({where}) has no room: {used:.1f}% of its capacity is used (more than "
            f"{threshold:g}%); it has {float(partition.get('absoluteCapacity', 0)):.1f}% of the cluster, up to "
            f"{float(partition.get('absoluteMaxCapacity', 0)):.1f}%, and uses "
            f"{float(partition.get('absoluteUsedCapacity', 0)):.1f}%. Try again later or ask for another queue (KERNEL_QUEUE)."
        )
