"""``eg-gateway doctor`` for Kubernetes: the API server answers, each kernelspec's values are
valid, the gateway holds every RBAC permission its launches need (named when missing), and
which nodes lack which of the kernelspecs' images (``node.status.images``), in each cluster the
kernelspecs name."""

from __future__ import annotations

from kubernetes import client

from eg_core import EGError
from eg_core.doctor import Check, each_kernelspec

from . import _access as access
from . import _api as api
from . import _clusters as clusters
from . import _prepull as prepull
from ._namespaces import creates_namespace
from ._request import resolve
from ._settings import settings


async def checks(kernels) -> list[Check]:
    """The checks of each cluster the kernelspecs name (the gateway's first): its API server,
    then each of its kernelspecs' permissions, then its nodes' images. Names carry the cluster
    when there are several."""
    if not kernels:
        return []
    found: list[Check] = []
    by_cluster: dict[clusters.Cluster, list] = {}
    for kernel, what, kp in each_kernelspec(kernels, lambda kernel: resolve(kernel, settings()), found):
        by_cluster.setdefault(clusters.of_config(kernel.config), []).append((what, kernel, kp))
    several = len(by_cluster) > 1
    for cluster, specs in sorted(by_cluster.items(), key=lambda item: item[0] != clusters.default()):
        with clusters.using(cluster):
            found += await _cluster_checks(cluster, specs, f" of {cluster}" if several else "")
    return found


async def _cluster_checks(cluster: clusters.Cluster, specs: list, where: str) -> list[Check]:
    found: list[Check] = []
    try:
        version = await api.call(client.VersionApi(api.api_client()).get_code)
        found.append(Check(f"API server{where}", True, f"Kubernetes {version.git_version} answers at {cluster}"))
    except Exception as exc:
        reason = exc.message if isinstance(exc, EGError) else str(exc)
        return [Check(f"API server{where}", False, reason,
                      "set KubernetesSettings.kubeconfig (KUBECONFIG) or the kernelspec's kubeconfig/context, or run the gateway in the cluster")]
    for what, kernel, kp in specs:
        creates = creates_namespace(kernel, kp)
        try:
            lacking = await access.missing(access.launch_needs(["Pod"], creates), kp.namespace if not creates else "")
        except Exception as exc:
            found.append(Check(what, False, f"cannot check permissions: {exc}", "check the API server"))
            continue
        detail = f"pods in namespace {kp.namespace if not creates else '(created per launch)'} from {kp.image}{where}"
        if lacking:
            found.append(Check(what, False, "the gateway may not " + "; ".join(lacking), "grant them in the gateway's Role or ClusterRole"))
        else:
            found.append(Check(what, True, detail))
    images = {kp.image: kp for _, _, kp in specs}
    if images:
        check = await _images_on_nodes(images)
        check.what += where
        found.append(check)
    return found


async def _images_on_nodes(images: dict) -> Check:
    """Which nodes lack which kernel images, and the command that pulls them there."""
    try:
        lacking = await prepull.lacking(images)
    except Exception as exc:
        return Check("images on nodes", False, f"cannot read the nodes' images: {exc}", "let the gateway list nodes (a ClusterRole)")
    if not lacking:
        return Check("images on nodes", True, f"every node has {', '.join(sorted(images))}")
    missing = sorted({image for missing in lacking.values() for image in missing})
    kp = images[missing[0]]
    secrets = "".join(f" --pull-secret {name}" for name in kp.pull_secrets)
    return Check(
        "images on nodes", False, "; ".join(f"node {node} lacks {', '.join(missing)}" for node, missing in sorted(lacking.items())),
        f"eg-k8s-prepull --namespace {kp.namespace}{secrets} {' '.join(missing)} (or let the first launches pull them)",
    )
