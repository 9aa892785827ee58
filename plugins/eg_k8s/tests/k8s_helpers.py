"""Helpers of eg-k8s's tests (imported by the test modules and conftest)."""

from __future__ import annotations

import asyncio

from kubernetes import client

KINDS = ("pods", "secrets", "services", "configmaps")


SA_TOKEN = "/var/run/secrets/kubernetes.io/serviceaccount/token"

# Run in a kernel: does it hold a service-account token, and what does the API server answer it
# for the Secrets of ``namespace`` (it has no credentials to send).
_CLUSTER_ACCESS = """
import json, os, ssl, urllib.error, urllib.request
answer = {{"token": os.path.exists({token!r})}}
context = ssl.create_default_context(); context.check_hostname = False; context.verify_mode = ssl.CERT_NONE
try:
    urllib.request.urlopen("https://127.0.0.1:{port}/api/v1/namespaces/{namespace}/secrets", context=context, timeout=20)
    answer["secrets"] = 200
except urllib.error.HTTPError as exc:
    answer["secrets"] = exc.code
print(json.dumps(answer))
"""


def cluster_access_code(cluster, namespace: str) -> str:
    """Code for a kernel on the node's network that prints ``{"token": bool, "secrets": status}``."""
    return _CLUSTER_ACCESS.format(token=SA_TOKEN, port=cluster["EG_K8S_APISERVER_PORT"], namespace=namespace)


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
