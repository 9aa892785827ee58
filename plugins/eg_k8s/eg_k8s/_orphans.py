"""Kernel pods no gateway knows any more, found by their labels.

A kernel pod carries ``component=kernel``, ``app=enterprise-gateway``, ``kernel_id=<id>`` and
``eg.jupyter.org/gateway=<gateway_id>``. Those of this gateway id whose kernel id the gateway
does not manage after adopting its stored sessions are orphans: left by a gateway that was killed
without a session store, or by a failed cleanup. ``eg_reconcile`` logs or removes them (with
their launch Secret, template objects and a per-kernel namespace) per ``orphans_at_startup``.
Warm pools' waiting pods are judged by :func:`eg_k8s._pool.waiting_verdict`: this process's
own and those of another live gateway on this host are no orphans, those of a dead gateway of
this host are removed under ``log`` too (they hold nobody's work). Each cluster the gateway's
kernelspecs name is swept (:func:`eg_k8s._clusters.targets`); an orphan is removed in its own.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Iterable

from . import _api as api
from . import _clusters as clusters
from . import _pool as pool
from ._clusters import Cluster, Target
from ._manifest import LABEL_KERNEL_ID, selector
from ._settings import settings


@dataclass
class OrphanPod:
    namespace: str
    name: str
    kernel_id: str
    phase: str
    namespace_is_kernels: bool
    waiting: str | None = None  # a warm pool's pod: "dead" or "elsewhere" (its holder)
    cluster: Cluster | None = None  # None: the gateway's
    gateway_id: str | None = None  # None: the gateway's

    @property
    def removable_when_logged(self) -> bool:
        """Whether ``orphans_at_startup=log`` removes it too: a dead gateway's waiting pod."""
        return self.waiting == "dead"


async def find(known_kernel_ids: Iterable[str], gateway_id: str | None = None) -> list[OrphanPod]:
    """The orphans in every place of :func:`eg_k8s._clusters.targets` (``gateway_id``'s, when given)."""
    known = set(known_kernel_ids)
    found: dict[tuple, OrphanPod] = {}
    for target in clusters.targets():
        for orphan in await find_in(target, known, gateway_id):
            found.setdefault((orphan.cluster, orphan.namespace, orphan.name), orphan)
    return list(found.values())


async def find_in(target: Target, known: set[str], gateway_id: str | None = None) -> list[OrphanPod]:
    """The orphans of one place: ``gateway_id``'s kernel pods (the target's gateway id when
    None) in its scope and cluster whose kernel id is not in ``known``."""
    with clusters.using(target.cluster):
        return await _find(target.cluster, target.scope, gateway_id or target.gateway_id, known)


async def _find(cluster: Cluster, scope: str | None, gateway_id: str, known: set[str]) -> list[OrphanPod]:
    core = api.core()
    if scope is not None:
        listing = await api.call_raw(core.list_namespaced_pod, scope, label_selector=selector(gateway_id))
    else:
        listing = await api.call_raw(core.list_pod_for_all_namespaces, label_selector=selector(gateway_id))
    orphans = []
    for pod in listing.get("items") or []:
        meta = pod["metadata"]
        kernel_id = meta["labels"][LABEL_KERNEL_ID]
        if kernel_id in known:
            continue
        waiting = pool.waiting_verdict(pod)
        if waiting in ("ours", "live"):
            continue
        namespace = await api.call_raw(core.read_namespace, meta["namespace"])
        orphans.append(OrphanPod(
            meta["namespace"], meta["name"], kernel_id, (pod.get("status") or {}).get("phase", "?"),
            (namespace["metadata"].get("labels") or {}).get(LABEL_KERNEL_ID) == kernel_id, waiting, cluster, gateway_id,
        ))
    return orphans


async def remove(orphan: OrphanPod, gateway_id: str | None = None) -> None:
    """Remove the orphan's pod, Secret, template objects, executors and per-kernel namespace, in its cluster."""
    with clusters.using(orphan.cluster or clusters.default()):
        await _remove(orphan, gateway_id)


async def _remove(orphan: OrphanPod, gateway_id: str | None) -> None:
    from kubernetes import client

    from ._lifecycle import delete_owned
    from ._spark_cluster import delete_executors

    core = api.core()
    options = client.V1DeleteOptions(grace_period_seconds=0, propagation_policy="Background")
    await api.ignore_missing(core.delete_namespaced_pod, orphan.name, orphan.namespace, body=options)
    state = {"namespace": orphan.namespace, "secret": f"{orphan.name}-eg", "gateway_id": gateway_id or orphan.gateway_id or settings().gateway_id,
             "kinds": ["Service", "ConfigMap", "PersistentVolumeClaim"]}
    await delete_owned(state, orphan.kernel_id)
    await delete_executors(orphan.namespace, state["gateway_id"], orphan.kernel_id)
    if orphan.namespace_is_kernels:
        await api.ignore_missing(core.delete_namespace, orphan.namespace, body=client.V1DeleteOptions(propagation_policy="Background"))
