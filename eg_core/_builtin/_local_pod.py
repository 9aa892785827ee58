"""Local kernels in a Kubernetes pod: refused unless the operator allows them.

A gateway in a pod holds its service account's token (mounted at
``LocalResourceManager.service_account_token``); a local kernel runs in the same pod, as the
same user, so it could read that token and act with the gateway's rights: read every kernel's
Secret (their connection keys), the gateway's own token Secret, create pods. The token file is
the sign: a pod without one (``automountServiceAccountToken: false``) gives its kernels no
Kubernetes rights. ``KUBERNETES_SERVICE_HOST`` is not used: every pod has it, token or not, and
tests on a host set it to reach a cluster.
"""

from __future__ import annotations

import os

from eg_core.doctor import Check

from ._local_orphans import settings

SETTING = "LocalResourceManager.allow_in_pod=True (EG_LOCAL_ALLOW_IN_POD=true)"


def pod_token() -> str | None:
    """The service-account token file when the gateway runs in a Kubernetes pod, else None."""
    path = settings().service_account_token
    return path if path and os.path.exists(path) else None


def refusal() -> str | None:
    """Why the ``local`` resource manager runs no kernel here (for ``eg_refused_resource_managers``),
    or None: the gateway is not in a pod, or the operator allowed local kernels there."""
    token = pod_token()
    if token is None or settings().allow_in_pod:
        return None
    return (
        f"is refused in a Kubernetes pod, where a local kernel would run with the gateway's service account "
        f"(its token {token} exists): set {SETTING} to run them anyway, or use a pod kernelspec"
    )

def allowed_warning() -> str | None:
    """The startup warning of a gateway in a pod that runs local kernels anyway, or None."""
    token = pod_token()
    if token is None or not settings().allow_in_pod:
        return None
    return (
        f"Local kernels are allowed in this Kubernetes pod (LocalResourceManager.allow_in_pod): they run with the "
        f"pod's service account and can read its token ({token}) and whatever it may read"
    )


def check() -> Check:
    """The ``eg-gateway doctor`` row: in a pod or not, and whether local kernels run there."""
    token = pod_token()
    what = "local kernels in a Kubernetes pod"
    if token is None:
        return Check(what, True, f"not in a pod (no {settings().service_account_token})")
    if settings().allow_in_pod:
        return Check(what, True, f"allowed (allow_in_pod): they run with the pod's service account ({token})")
    return Check(what, True, f"refused: the gateway is in a pod ({token} exists); {SETTING} allows them")
