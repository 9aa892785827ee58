"""The Kubernetes API, from the event loop: the synchronous ``kubernetes`` client run in a
thread pool of its own, and its errors turned into readable ones.

One API client and one thread pool per cluster (:mod:`._clusters`; the current cluster's are
used), its connection pool shared by every kernel there; the watch on kernel pods (:mod:`._pods`)
reads in a thread of its own, so API calls never wait behind it. The ``kubernetes`` package is
imported with the first client: a gateway with no cluster never loads it.
"""

from __future__ import annotations

import asyncio
import functools
import json
import os
from concurrent.futures import ThreadPoolExecutor
from typing import TYPE_CHECKING, Any, AsyncIterator, Callable

from eg_core import BadRequest

from . import _clusters as clusters
from ._clusters import Cluster
from ._settings import settings

if TYPE_CHECKING:
    from kubernetes import client
    from kubernetes.client.rest import ApiException

_clients: dict[Cluster, client.ApiClient] = {}
_executors: dict[Cluster, ThreadPoolExecutor] = {}


def _in_cluster(cluster: Cluster) -> bool:
    return not cluster.kubeconfig and not cluster.context and bool(os.environ.get("KUBERNETES_SERVICE_HOST"))


def missing_configuration(cluster: Cluster | None = None) -> str | None:
    """Why :func:`api_client` has no configuration to load for ``cluster`` (the current one; None
    when it may have one): no kubeconfig file (its ``kubeconfig`` or KUBECONFIG, else
    ~/.kube/config) and not in a pod. Answered without importing the client."""
    cluster = cluster or clusters.current()
    if _in_cluster(cluster):
        return None
    files = (cluster.kubeconfig or "~/.kube/config").split(os.pathsep)  # KUBECONFIG may list several
    if any(os.path.exists(os.path.expanduser(f)) for f in files if f):
        return None
    if cluster.kubeconfig:
        return f"no kubeconfig file at {cluster.kubeconfig}"
    return "no Kubernetes configuration (KUBECONFIG, ~/.kube/config or in-cluster)"


def api_client(cluster: Cluster | None = None) -> client.ApiClient:
    """The API client of ``cluster`` (the current one): in-cluster config inside a pod, else its
    kubeconfig and context. Raises :class:`eg_core.BadRequest` naming the file or context when
    the configuration is missing or has no such context (a kernelspec's mistake, or the gateway's)."""
    cluster = cluster or clusters.current()
    api = _clients.get(cluster)
    if api is None:
        from kubernetes import client

        configuration = client.Configuration()
        _load(cluster, configuration)
        configuration.connection_pool_maxsize = max(settings().api_threads, 4) + 2
        api = _clients[cluster] = client.ApiClient(configuration)
    return api


def _load(cluster: Cluster, configuration: Any) -> None:
    from kubernetes import config

    if _in_cluster(cluster):
        config.load_incluster_config(client_configuration=configuration)
        return
    fix = "fix the kernelspec's kubeconfig/context, or KubernetesSettings.kubeconfig/context (KUBECONFIG)"
    missing = missing_configuration(cluster)
    if missing:
        raise BadRequest(f"Kubernetes cluster {cluster}: {missing}: {fix}", reason="Kubernetes Configuration Invalid")
    try:
        if cluster.context:
            contexts, _ = config.list_kube_config_contexts(config_file=cluster.kubeconfig or None)
            names = sorted(c["name"] for c in contexts or [])
            if cluster.context not in names:
                raise BadRequest(
                    f"Kubernetes cluster {cluster}: the kubeconfig has no context {cluster.context!r} "
                    f"(it has: {', '.join(names) or 'none'}): {fix}", reason="Kubernetes Configuration Invalid",
                )
        config.load_kube_config(config_file=cluster.kubeconfig or None, context=cluster.context or None,
                                client_configuration=configuration)
    except config.ConfigException as exc:
        raise BadRequest(f"Kubernetes cluster {cluster}: {exc}: {fix}", reason="Kubernetes Configuration Invalid") from None


def core(cluster: Cluster | None = None) -> client.CoreV1Api:
    from kubernetes import client

    return client.CoreV1Api(api_client(cluster))


def rbac() -> client.RbacAuthorizationV1Api:
    from kubernetes import client

    return client.RbacAuthorizationV1Api(api_client())


def authz() -> client.AuthorizationV1Api:
    from kubernetes import client

    return client.AuthorizationV1Api(api_client())


async def call(fn: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
    """Run one blocking client call in the current cluster's API thread pool."""
    cluster = clusters.current()
    executor = _executors.get(cluster)
    if executor is None:
        executor = _executors[cluster] = ThreadPoolExecutor(max_workers=max(settings().api_threads, 1), thread_name_prefix="eg-k8s-api")
    return await asyncio.get_running_loop().run_in_executor(executor, functools.partial(fn, *args, **kwargs))


async def call_raw(fn: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
    """Like :func:`call`, returning the response's JSON as dicts (cheaper than the client's models)."""
    response = await call(fn, *args, _preload_content=False, **kwargs)
    return json.loads(response.data)


def message(exc: ApiException) -> str:
    """The API server's own message of a failed call."""
    try:
        body = json.loads(exc.body or "{}")
    except (TypeError, ValueError):
        body = {}
    return str(body.get("message") or exc.reason or exc)


def is_status(exc: BaseException, *statuses: int) -> bool:
    from kubernetes.client.rest import ApiException

    return isinstance(exc, ApiException) and exc.status in statuses


async def ignore_missing(fn: Callable[..., Any], *args: Any, **kwargs: Any) -> bool:
    """Run a delete; a 404 counts as done. Returns whether the object existed."""
    from kubernetes.client.rest import ApiException

    try:
        await call(fn, *args, **kwargs)
        return True
    except ApiException as exc:
        if exc.status == 404:
            return False
        raise


WATCH_SECONDS = 240  # the server ends a watch after this; a feed resumes from its resourceVersion


async def list_and_watch(namespaced: Callable[..., Any], everywhere: Callable[..., Any], namespace: str | None,
                         **selectors: Any) -> AsyncIterator[tuple[str, dict[str, Any]]]:
    """One list, then watch events from its resourceVersion, of the objects ``namespaced`` lists
    in ``namespace`` (``everywhere`` in all namespaces when None), with ``selectors``
    (``label_selector``, ``field_selector``): first ``("LISTED", listing)``, then ``(type,
    object)`` per event (bookmarks only move the resourceVersion). Ends when the server says the
    version is too old (410): a :class:`eg_core.watch.SharedWatch` feed then lists anew."""
    from kubernetes.watch.watch import iter_resp_lines

    from eg_core.watch import iterate_in_thread

    list_call = functools.partial(namespaced, namespace) if namespace else everywhere
    listing = await call_raw(list_call, **selectors)
    yield "LISTED", listing
    version = listing["metadata"]["resourceVersion"]
    while True:
        response = await call(list_call, watch=True, resource_version=version, allow_watch_bookmarks=True,
                              timeout_seconds=WATCH_SECONDS, _preload_content=False, _request_timeout=(10, WATCH_SECONDS + 30), **selectors)
        async for line in iterate_in_thread(lambda: iter_resp_lines(response), name="eg-k8s-watch", close=response.close):
            if not line:
                continue
            event = json.loads(line)
            kind, obj = event.get("type"), event.get("object") or {}
            if kind == "ERROR":
                if obj.get("code") == 410:
                    return
                raise RuntimeError(f"watch error {obj.get('code')}: {obj.get('message')}")
            version = obj.get("metadata", {}).get("resourceVersion", version)
            if kind != "BOOKMARK":
                yield kind, obj


def close() -> None:
    """Close every cluster's client and thread pool (at shutdown)."""
    for api in list(_clients.values()):
        try:
            api.close()
        except Exception:
            pass
    _clients.clear()
    for executor in list(_executors.values()):
        executor.shutdown(wait=False)
    _executors.clear()


__all__ = ["missing_configuration", "api_client", "core", "rbac", "authz", "call", "call_raw", "message", "is_status", "ignore_missing", "list_and_watch", "close"]
