"""Helpers of eg-k8s's tests (imported by the test modules and conftest)."""

from __future__ import annotations

import asyncio

from kubernetes import client

from eg_core.testing import KernelSocket

KINDS = ("pods", "secrets", "services", "configmaps")


def gateway_args(cluster, namespace: str, gateway_id: str, *extra: str, kubeconfig: str | None = None) -> list[str]:
    """A gateway on the test cluster: kernels in ``namespace`` on the node's network, dialled and
    bound on loopback (the node's own address is never a target here)."""
    return [
        f"--KubernetesSettings.kubeconfig={kubeconfig or cluster['KUBECONFIG']}",
        f"--KubernetesSettings.namespace={namespace}",
        f"--KubernetesSettings.gateway_id={gateway_id}",
        "--KubernetesSettings.host_network=True",
        "--KubernetesSettings.kernel_host=127.0.0.1",
        "--KubernetesSettings.kernel_bind_ip=127.0.0.1",
        "--KubernetesSettings.image_pull_policy=IfNotPresent",
        "--Gateway.launch_timeout=90",
        *extra,
    ]


async def left_behind(core: client.CoreV1Api, namespace: str, kernel_id: str) -> dict[str, list[str]]:
    """What exists in ``namespace`` (and as namespaces) labelled with the kernel id."""
    selector = f"kernel_id={kernel_id}"

    def names(kind: str) -> list[str]:
        listing = getattr(core, f"list_namespaced_{ {'pods': 'pod', 'secrets': 'secret', 'services': 'service', 'configmaps': 'config_map'}[kind] }")(
            namespace, label_selector=selector
        )
        return [i.metadata.name for i in listing.items if not i.metadata.deletion_timestamp]

    found = {kind: await asyncio.to_thread(names, kind) for kind in KINDS}
    namespaces = await asyncio.to_thread(core.list_namespace, label_selector=selector)
    found["namespaces"] = [n.metadata.name for n in namespaces.items if n.status.phase != "Terminating"]
    return {k: v for k, v in found.items() if v}


async def pod_of(core: client.CoreV1Api, namespace: str, kernel_id: str):
    pods = await asyncio.to_thread(core.list_namespaced_pod, namespace, label_selector=f"kernel_id={kernel_id}")
    return pods.items[0] if pods.items else None


async def run(gw, kernel_id: str, code: str) -> str:
    """The stdout of ``code`` run in the kernel through the gateway's websocket (it must succeed)."""
    ks = await KernelSocket.connect(gw, kernel_id)
    try:
        out = await ks.execute(code)
        assert out["reply"]["status"] == "ok", out
        return out["stdout"]
    finally:
        await ks.close()
