"""``eg-gateway doctor`` for Kubernetes: the API server answers, each kernelspec's values are
valid, and the gateway holds every RBAC permission its launches need (named when missing)."""

from __future__ import annotations

from kubernetes import client

from eg_core.doctor import Check, each_kernelspec

from . import _access as access
from . import _api as api
from ._namespaces import creates_namespace
from ._request import resolve
from ._settings import settings


async def checks(kernels) -> list[Check]:
    if not kernels:
        return []
    found: list[Check] = []
    try:
        version = await api.call(client.VersionApi(api.api_client()).get_code)
        found.append(Check("API server", True, f"Kubernetes {version.git_version} answers"))
    except Exception as exc:
        return [Check("API server", False, str(exc), "set KubernetesSettings.kubeconfig (KUBECONFIG), or run the gateway in the cluster")]
    for kernel, what, kp in each_kernelspec(kernels, lambda kernel: resolve(kernel, settings()), found):
        creates = creates_namespace(kernel, kp)
        try:
            lacking = await access.missing(access.launch_needs(["Pod"], creates), kp.namespace if not creates else "")
        except Exception as exc:
            found.append(Check(what, False, f"cannot check permissions: {exc}", "check the API server"))
            continue
        detail = f"pods in namespace {kp.namespace if not creates else '(created per launch)'} from {kp.image}"
        if lacking:
            found.append(Check(what, False, "the gateway may not " + "; ".join(lacking), "grant them in the gateway's Role or ClusterRole"))
        else:
            found.append(Check(what, True, detail))
    return found
