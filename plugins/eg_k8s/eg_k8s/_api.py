"""The Kubernetes API, from the event loop: the synchronous ``kubernetes`` client run in a
thread pool of its own, and its errors turned into readable ones.

One API client per gateway process (its connection pool is shared by every kernel); the watch on
kernel pods (:mod:`._pods`) reads in a thread of its own, so API calls never wait behind it. The
``kubernetes`` package is imported with the client: a gateway with no cluster never loads it.
"""

from __future__ import annotations

import asyncio
import functools
import json
import os
from concurrent.futures import ThreadPoolExecutor
from typing import TYPE_CHECKING, Any, AsyncIterator, Callable

from ._settings import settings

if TYPE_CHECKING:
    from kubernetes import client
    from kubernetes.client.rest import ApiException

_api: client.ApiClient | None = None
_executor: ThreadPoolExecutor | None = None


def missing_configuration() -> str | None:
    """Why :func:`api_client` has no configuration to load (None when it may have one): no
    kubeconfig file (the ``kubeconfig`` setting or KUBECONFIG, else ~/.kube/config) and not in
    a pod. Answered without importing the client."""
    s = settings()
    if not s.kubeconfig and os.environ.get("KUBERNETES_SERVICE_HOST"):
        return None
    files = (s.kubeconfig or "~/.kube/config").split(os.pathsep)  # KUBECONFIG may list several
    if any(os.path.exists(os.path.expanduser(f)) for f in files if f):
        return None
    if s.kubeconfig:
        return f"no kubeconfig file at {s.kubeconfig}"
    return "no Kubernetes configuration (KUBECONFIG, ~/.kube/config or in-cluster)"


def api_client() -> client.ApiClient:
    """The process's API client: in-cluster config inside a pod, else the kubeconfig."""
    global _api
    if _api is None:
        from kubernetes import client, config

        s = settings()
        configuration = client.Configuration()
        if not s.kubeconfig and os.environ.get("KUBERNETES_SERVICE_HOST"):
            config.load_incluster_config(client_configuration=configuration)
        else:
            config.load_kube_config(
                config_file=s.kubeconfig or None, context=s.context or None, client_configuration=configuration
            )
        configuration.connection_pool_maxsize = max(s.api_threads, 4) + 2
        _api = client.ApiClient(configuration)
    return _api


def core() -> client.CoreV1Api:
    from kubernetes import client

    return client.CoreV1Api(api_client())


def rbac() -> client.RbacAuthorizationV1Api:
    from kubernetes import client

    return client.RbacAuthorizationV1Api(api_client())


def authz() -> client.AuthorizationV1Api:
    from kubernetes import client

    return client.AuthorizationV1Api(api_client())


async def call(fn: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
    """Run one blocking client call in the API thread pool."""
    global _executor
    if _executor is None:
        _executor = ThreadPoolExecutor(max_workers=max(settings().api_threads, 1), thread_name_prefix="eg-k8s-api")
    return await asyncio.get_running_loop().run_in_executor(_executor, functools.partial(fn, *args, **kwargs))


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
    global _api, _executor
    if _api is not None:
        try:
            _api.close()
        except Exception:
            pass
        _api = None
    if _executor is not None:
        _executor.shutdown(wait=False)
        _executor = None


__all__ = ["missing_configuration", "api_client", "core", "rbac", "authz", "call", "call_raw", "message", "is_status", "ignore_missing", "list_and_watch", "close"]
