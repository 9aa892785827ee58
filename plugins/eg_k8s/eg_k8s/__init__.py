"""eg-k8s: Jupyter kernels as Kubernetes pods, for the eg gateway.

Install it next to eg-core (``pip install ./plugins/eg_k8s``); its ``python_kubernetes``
kernelspec is then listed, and Enterprise Gateway's ``KubernetesProcessProxy`` kernelspecs work
too. Gateway-wide settings are ``--KubernetesSettings.*`` (see ``eg-gateway --help-all`` and
the README). Kernel pods the gateway no longer knows are found with :func:`list_orphans`.
"""

from __future__ import annotations

from typing import Iterable

from ._orphans import OrphanPod, find, remove
from ._settings import KubernetesSettings

__version__ = "0.1.0"


async def list_orphans(known_kernel_ids: Iterable[str], *, gateway_id: str | None = None) -> list[OrphanPod]:
    """Kernel pods of ``gateway_id`` whose kernel id is not in ``known_kernel_ids``, in every
    cluster the gateway's kernelspecs name (the gateway's own cluster outside a running gateway)."""
    return await find(known_kernel_ids, gateway_id)


async def remove_orphans(known_kernel_ids: Iterable[str], *, gateway_id: str | None = None) -> list[OrphanPod]:
    """Remove what :func:`list_orphans` finds (pods, their Secrets and per-kernel namespaces)."""
    found = await find(known_kernel_ids, gateway_id)
    for orphan in found:
        await remove(orphan, gateway_id)
    return found


__all__ = ["KubernetesSettings", "OrphanPod", "list_orphans", "remove_orphans", "__version__"]
