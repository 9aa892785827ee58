"""What the gateway may do in the cluster, asked with SelfSubjectAccessReviews.

A missing permission is named exactly (verb, resource, namespace), at startup in the log and at
launch as a 403, before anything is created, instead of surfacing later as a half-done launch.
Answers are cached for :data:`CACHE_SECONDS` per namespace and cluster, and a question already
asked and not answered yet is not asked again (ten concurrent launches make one set of reviews,
not ten).
"""

from __future__ import annotations

import asyncio
import time
from typing import Iterable

from eg_core import LaunchRefused

from . import _api as api
from . import _clusters as clusters

CACHE_SECONDS = 60.0
# (verb, resource, subresource) the gateway needs in a kernel's namespace
KERNEL_NAMESPACE = [
    ("create", "pods", ""), ("get", "pods", ""), ("list", "pods", ""), ("watch", "pods", ""), ("delete", "pods", ""),
    ("patch", "pods", ""), ("get", "pods", "log"),
    ("create", "secrets", ""), ("get", "secrets", ""), ("patch", "secrets", ""), ("delete", "secrets", ""),
]
CREATED_NAMESPACE = [("create", "namespaces", ""), ("delete", "namespaces", ""), ("create", "rolebindings", "")]
ALL_NAMESPACES = [("list", "pods", ""), ("watch", "pods", "")]
KIND_RESOURCES = {"Service": "services", "ConfigMap": "configmaps", "PersistentVolumeClaim": "persistentvolumeclaims", "Secret": "secrets"}
_GROUPS = {"rolebindings": "rbac.authorization.k8s.io", "roles": "rbac.authorization.k8s.io"}

_cache: dict[tuple[object, str, str, str, str], tuple[float, asyncio.Future]] = {}


async def allowed(verb: str, resource: str, subresource: str = "", namespace: str = "") -> bool:
    """Whether the gateway may do this in the current cluster; concurrent launches asking the
    same share one review."""
    key = (clusters.current(), verb, resource, subresource, namespace)
    hit = _cache.get(key)
    if hit and time.monotonic() - hit[0] < CACHE_SECONDS and _usable(hit[1]):
        return await asyncio.shield(hit[1])
    answer = asyncio.ensure_future(_review(verb, resource, subresource, namespace))
    _cache[key] = (time.monotonic(), answer)
    return await asyncio.shield(answer)


def _usable(answer: asyncio.Future) -> bool:
    """A review under way or answered in this event loop; a failed one is asked again."""
    if answer.get_loop() is not asyncio.get_running_loop():
        return False
    return not answer.done() or (not answer.cancelled() and answer.exception() is None)


async def _review(verb: str, resource: str, subresource: str, namespace: str) -> bool:
    from kubernetes import client

    review = client.V1SelfSubjectAccessReview(
        spec=client.V1SelfSubjectAccessReviewSpec(
            resource_attributes=client.V1ResourceAttributes(
                verb=verb, resource=resource, subresource=subresource or None, namespace=namespace or None,
                group=_GROUPS.get(resource, ""),
            )
        )
    )
    answer = await api.call(api.authz().create_self_subject_access_review, review)
    return bool(answer.status.allowed)


def describe(verb: str, resource: str, subresource: str, namespace: str) -> str:
    what = f"{resource}/{subresource}" if subresource else resource
    return f"{verb} {what}" + (f" in namespace {namespace}" if namespace else " (cluster-wide)")


async def missing(needs: Iterable[tuple[str, str, str]], namespace: str) -> list[str]:
    """The permissions of ``needs`` the gateway lacks in ``namespace`` ('' for cluster scope)."""
    needs = list(needs)
    answers = await asyncio.gather(*(allowed(v, r, s, namespace) for v, r, s in needs))
    return [describe(v, r, s, namespace) for (v, r, s), ok in zip(needs, answers) if not ok]


def launch_needs(kinds: Iterable[str], creates_namespace: bool) -> list[tuple[str, str, str]]:
    needs = list(KERNEL_NAMESPACE)
    for kind in kinds:
        resource = KIND_RESOURCES.get(kind)
        if resource:
            needs += [("create", resource, ""), ("list", resource, ""), ("delete", resource, "")]
    if creates_namespace:
        needs.append(("create", "rolebindings", ""))
    return needs


async def require(namespace: str, kinds: Iterable[str], creates_namespace: bool, all_namespaces: bool,
                  extra: Iterable[tuple[str, str, str]] = ()) -> None:
    """Refuse the launch (403) naming every permission the gateway lacks for it (``extra``: what
    else this launch needs in its namespace, e.g. a Spark driver's account)."""
    lacking = await missing([*launch_needs(kinds, creates_namespace), *extra], namespace)
    if creates_namespace:
        lacking += await missing([n for n in CREATED_NAMESPACE if n[1] == "namespaces"], "")
    if all_namespaces:
        lacking += await missing(ALL_NAMESPACES, "")
    if lacking:
        raise LaunchRefused(
            "the gateway's Kubernetes identity lacks RBAC permission to: " + "; ".join(lacking)
            + " (grant them in the gateway's Role or ClusterRole)",
            reason="Kubernetes Permission Missing",
        )


def forget() -> None:
    _cache.clear()
