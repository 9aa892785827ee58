"""Readiness (``eg_ready``): the gateway can reach its Kubernetes API server.

Asked at each ``GET /api/ready`` (the Deployment's readiness probe), so a replica that cannot
reach the API server leaves its Service until it can. A gateway with no Kubernetes configuration
at all (no kubeconfig, not in a pod) runs no pod kernel and is not held back. Only the gateway's
own cluster counts (``KubernetesSettings``): a cluster a kernelspec names fails that kernelspec's
launches when it is down, and ``eg-gateway doctor`` checks each one.
"""

from __future__ import annotations

from . import _api as api
from . import _clusters as clusters

TIMEOUT = 3.0  # seconds the API server has to answer a probe


async def problems() -> list[str]:
    """One problem when the API server does not answer ``GET /version`` within ``TIMEOUT``
    seconds (or the client cannot be configured); none otherwise."""
    if api.missing_configuration(clusters.default()):
        return []
    from kubernetes import client

    try:
        with clusters.using(clusters.default()):
            await api.call(client.VersionApi(api.api_client()).get_code, _request_timeout=TIMEOUT)
    except Exception as exc:  # noqa: BLE001 - any failure means the API server is not usable
        return [f"k8s: the Kubernetes API server does not answer: {_short(exc)}"]
    return []


def _short(exc: BaseException) -> str:
    """The error's first line, cut to 300 characters (urllib3's are long and repeat the URL)."""
    text = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
    return text[:300]
