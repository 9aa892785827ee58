"""What a Spark kernel needs of the cluster beyond its pod: the driver's service account and
Role (made before the pod), and the removal of its executor pods (at cleanup and when an orphan
is removed; the garbage collector would remove them with the driver pod too, later)."""

from __future__ import annotations

from typing import Any

from . import _api as api
from ._manifest import APP, LABEL_APP, LABEL_GATEWAY
from ._spark import DRIVER_RULES, executor_selector

RBAC_COMPONENT = "spark-driver-rbac"
# what the gateway needs, beyond a pod kernel's, to make the driver's account (granting a Role
# needs the gateway to hold its rules itself: hence deletecollection on pods)
GATEWAY_NEEDS = [
    ("create", "serviceaccounts", ""), ("create", "roles", ""), ("patch", "roles", ""),
    ("create", "rolebindings", ""), ("patch", "rolebindings", ""), ("deletecollection", "pods", ""),
]


async def ensure_driver_account(namespace: str, name: str, gateway_id: str) -> None:
    """Make (or bring back to eg's rules) the ServiceAccount ``name``, a Role of that name with
    exactly :data:`DRIVER_RULES`, and their RoleBinding, in ``namespace``. Called at a Spark
    kernel's launch, before its pod is created; shared by the Spark kernels of the namespace."""
    from kubernetes.client.rest import ApiException

    core, rbac = api.core(), api.rbac()
    labels = {LABEL_APP: APP, "component": RBAC_COMPONENT, LABEL_GATEWAY: gateway_id}
    meta: dict[str, Any] = {"name": name, "namespace": namespace, "labels": labels}
    role = {"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "Role", "metadata": meta, "rules": DRIVER_RULES}
    binding = {
        "apiVersion": "rbac.authorization.k8s.io/v1", "kind": "RoleBinding", "metadata": meta,
        "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": name},
        "subjects": [{"kind": "ServiceAccount", "name": name, "namespace": namespace}],
    }
    for create, patch, body in (
        (core.create_namespaced_service_account, None, {"apiVersion": "v1", "kind": "ServiceAccount", "metadata": meta}),
        (rbac.create_namespaced_role, rbac.patch_namespaced_role, role),
        (rbac.create_namespaced_role_binding, rbac.patch_namespaced_role_binding, binding),
    ):
        try:
            await api.call(create, namespace, body)
        except ApiException as exc:
            if exc.status != 409:
                raise
            if patch is not None:
                await api.call(patch, name, namespace, {k: v for k, v in body.items() if k in ("rules", "subjects")})


async def delete_executors(namespace: str, gateway_id: str, kernel_id: str) -> list[str]:
    """Delete the kernel's executor pods (at once, not gracefully); returns their names."""
    from kubernetes import client

    core = api.core()
    listing = await api.call_raw(core.list_namespaced_pod, namespace, label_selector=executor_selector(gateway_id, kernel_id))
    names = [p["metadata"]["name"] for p in listing.get("items") or []]
    options = client.V1DeleteOptions(grace_period_seconds=0, propagation_policy="Background")
    for name in names:
        await api.ignore_missing(core.delete_namespaced_pod, name, namespace, body=options)
    return names


__all__ = ["ensure_driver_account", "delete_executors", "GATEWAY_NEEDS"]
