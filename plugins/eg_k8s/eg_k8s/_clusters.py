"""The cluster of a kernel: which Kubernetes API server each API call goes to.

The gateway's cluster is ``KubernetesSettings.kubeconfig`` and ``context``; a kernelspec may name
its own in its resource-manager ``config``: ``kubeconfig`` (with ``context``, else that file's
current context) or only ``context`` (in the gateway's kubeconfig). A :class:`Cluster` is that
pair; each one has its own API client and thread pool (:mod:`._api`), pod and pull-event watches
(:mod:`._pods`, :mod:`._pulls`), permission cache and namespace locks, all made on first use and
closed at shutdown. A kernel's cluster is kept in ``kernel.state["cluster"]``, so a gateway that
adopts the kernel after a restart calls the same cluster.

Which cluster a call goes to is the *current* one, a context variable: each resource-manager hook
runs in its kernel's cluster (:func:`of_kernel`, :func:`launching`), background work for a kernel
is started inside :func:`using`, and a watch's feed task enters its own (:func:`enter`), so the
modules that make API calls take no cluster argument. Outside all that, it is the gateway's.

The clusters the gateway sweeps for orphans and adopts kernels from are its :func:`targets`: the
gateway's own and each one its kernelspecs name, with the namespace scope and gateway id of each
(set at startup from the gateway's kernelspecs, :func:`configure`).
"""

from __future__ import annotations

import contextlib
import functools
from contextvars import ContextVar
from dataclasses import dataclass
from typing import Any, Awaitable, Callable, Iterable, Iterator, Mapping, TypeVar

from ._settings import settings

T = TypeVar("T")


@dataclass(frozen=True, order=True)
class Cluster:
    """A Kubernetes API as eg-k8s reaches it: a kubeconfig file and a context in it (empty file:
    in-cluster config inside a pod, else ~/.kube/config; empty context: the file's current one)."""

    kubeconfig: str = ""
    context: str = ""

    def __str__(self) -> str:
        where = self.kubeconfig or "the default Kubernetes configuration"
        return f"{where} (context {self.context})" if self.context else where

    def state(self) -> dict[str, str]:
        """As ``kernel.state["cluster"]`` keeps it."""
        return {"kubeconfig": self.kubeconfig, "context": self.context}


@dataclass(frozen=True)
class Target:
    """Where the gateway's pod kernels may be: a cluster, the namespace its pod watch covers
    (None: all namespaces) and the gateway id its kernel pods are labelled with."""

    cluster: Cluster
    scope: str | None
    gateway_id: str


_current: ContextVar[Cluster | None] = ContextVar("eg_k8s_cluster", default=None)
_targets: list[Target] = []  # set by configure() at startup; empty: the gateway's alone


def default() -> Cluster:
    """The gateway's cluster (``KubernetesSettings.kubeconfig`` and ``context``)."""
    s = settings()
    return Cluster(s.kubeconfig, s.context)


def of_config(config: Mapping[str, Any]) -> Cluster:
    """The cluster a kernelspec's resource-manager ``config`` names (the gateway's when none)."""
    kubeconfig, context = str(config.get("kubeconfig") or ""), str(config.get("context") or "")
    if kubeconfig:
        return Cluster(kubeconfig, context)
    return Cluster(settings().kubeconfig, context) if context else default()


def of_state(state: Mapping[str, Any]) -> Cluster:
    """The cluster a kernel's state records (the gateway's for a state that records none)."""
    named = state.get("cluster")
    if isinstance(named, Mapping):
        return Cluster(str(named.get("kubeconfig") or ""), str(named.get("context") or ""))
    return default()


def current() -> Cluster:
    """The cluster API calls go to now."""
    return _current.get() or default()


@contextlib.contextmanager
def using(cluster: Cluster) -> Iterator[Cluster]:
    """API calls (and tasks started) inside the block go to ``cluster``."""
    token = _current.set(cluster)
    try:
        yield cluster
    finally:
        _current.reset(token)


def enter(cluster: Cluster) -> None:
    """For the rest of the running task (a watch's feed, which has a task of its own), calls go to ``cluster``."""
    _current.set(cluster)


def _in_cluster(choose: Callable[[Any], Cluster]) -> Callable[[Callable[..., Awaitable[T]]], Callable[..., Awaitable[T]]]:
    def decorate(hook: Callable[..., Awaitable[T]]) -> Callable[..., Awaitable[T]]:
        @functools.wraps(hook)
        async def run(kernel: Any, *args: Any) -> T:
            with using(choose(kernel)):
                return await hook(kernel, *args)
        return run
    return decorate


def of_kernel(hook: Callable[..., Awaitable[T]]) -> Callable[..., Awaitable[T]]:
    """Decorator of a kernel's async hook: it runs in the cluster ``kernel.state`` records."""
    return _in_cluster(lambda kernel: of_state(kernel.state))(hook)


def launching(hook: Callable[..., Awaitable[T]]) -> Callable[..., Awaitable[T]]:
    """Decorator of ``launch_process``: it runs in the cluster the kernelspec names."""
    return _in_cluster(lambda kernel: of_config(kernel.config))(hook)


def configure(targets: Iterable[Target]) -> None:
    """Called at startup with the places the gateway's kernelspecs (and its settings) name."""
    _targets[:] = sorted(set(targets), key=lambda t: (t.cluster, t.scope or "", t.gateway_id))


def own_target() -> Target:
    """The gateway's own place: its settings' cluster, namespace scope and gateway id."""
    s = settings()
    return Target(default(), s.namespace if s.namespace_mode == "shared" else None, s.gateway_id)


def targets() -> list[Target]:
    """Every place to adopt kernels from and sweep for orphans (the gateway's own alone when
    nothing was configured)."""
    return list(_targets) or [own_target()]


def clusters() -> list[Cluster]:
    """The distinct clusters of :func:`targets`, the gateway's first."""
    found = sorted({t.cluster for t in targets()} - {default()})
    return [default(), *found]


__all__ = ["Cluster", "Target", "default", "of_config", "of_state", "current", "using", "enter", "of_kernel", "launching",
           "configure", "own_target", "targets", "clusters"]
