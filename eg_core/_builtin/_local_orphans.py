"""Local kernels a gateway may have left behind, found at startup (``eg_reconcile``).

Every local kernel starts with its owner in its environment (:func:`eg_core.orphans.owner_marks`:
``EG_GATEWAY_ID`` and ``EG_GATEWAY_OWNER``, next to ``KERNEL_ID``), which no later change of the
kernel's own environment alters (``/proc/<pid>/environ``). At startup the gateway lists this
user's kernel sessions and treats as orphans those of its ``gateway_id`` that its session store
does not know and whose gateway process has ended; a kernel of a live gateway (this one, or
another on this host, with any id) is never touched. ``orphans_at_startup`` says whether they
are logged, removed (SIGKILL to the kernel's process group) or ignored.
"""

from __future__ import annotations

import asyncio
from typing import Iterable

from traitlets import Bool, Enum, Unicode
from traitlets.config import SingletonConfigurable

from eg_core import orphans, procinfo
from eg_core.config import EnvDefaults

RESOURCE_MANAGER = "local"


class LocalResourceManager(EnvDefaults, SingletonConfigurable):
    """Settings of the builtin ``local`` resource manager (kernels as processes on this host)."""

    gateway_id = orphans.GatewayId(
        config=True,
        help="Marks this gateway's local kernels (in their environment). At startup, kernels of this id "
        "that the session store does not know and whose gateway process has ended are orphans. "
        "Gateways on one host that keep separate session stores should have different ids.",
    )
    orphans_at_startup = Enum(
        orphans.POLICIES, "log", config=True,
        help="What to do at startup with orphaned local kernels of this gateway_id: 'log', "
        "'remove' (kill their process group) or 'ignore'.",
    )
    allow_in_pod = Bool(
        False, config=True,
        help="Run local kernels even when the gateway is in a Kubernetes pod (its service_account_token "
        "file exists). Off: local kernelspecs are not offered there, since a local kernel runs in the "
        "gateway's pod with the gateway's service account and could read its Secrets.",
    ).tag(env=("EG_LOCAL_ALLOW_IN_POD",))
    service_account_token = Unicode(
        "/var/run/secrets/kubernetes.io/serviceaccount/token", config=True,
        help="The file whose presence means the gateway runs in a Kubernetes pod with a service account "
        "token (see allow_in_pod).",
    ).tag(env=("EG_LOCAL_SERVICE_ACCOUNT_TOKEN",))


def settings() -> LocalResourceManager:
    return LocalResourceManager.instance()


def marks() -> dict[str, str]:
    """The ownership variables for a local kernel's environment."""
    return orphans.owner_marks(RESOURCE_MANAGER, settings().gateway_id)


async def _owned() -> list[orphans.Resource]:
    sessions = await asyncio.to_thread(procinfo.kernel_sessions)
    return orphans.owned_sessions(sessions, RESOURCE_MANAGER, settings().gateway_id)


async def _remove(resource: orphans.Resource) -> bool:
    return procinfo.end_session(*orphans.session_of(resource))


async def reconcile(known_kernel_ids: Iterable[str]) -> list[orphans.Resource]:
    """Log or remove the orphaned local kernels (see the module docstring)."""
    return await orphans.sweep(RESOURCE_MANAGER, known_kernel_ids, _owned, _remove, policy=settings().orphans_at_startup)
