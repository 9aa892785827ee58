"""SSH kernels a gateway may have left behind on its hosts, found at startup (``eg_reconcile``).

Every launcher starts with its owner in its environment (:func:`eg_core.orphans.owner_marks`:
``EG_GATEWAY_ID`` and ``EG_GATEWAY_OWNER``, next to ``KERNEL_ID``; delivered over the SSH
channel like the rest of the kernel's environment). At startup, when ``remote_hosts`` is
configured, the gateway logs in to each of them as ``remote_user`` and runs eg's own scan of
that user's processes (:func:`eg_core.procinfo.kernel_sessions`, sent as ``python3 -c`` with no
value from a request in it); kernels of its ``gateway_id`` that its session store does not know
and whose gateway process is not alive on this host are orphans, logged or killed
(``orphans_at_startup``). Hosts named only in a kernelspec, and users only reached through
impersonation, are not visited.
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
import shlex
from typing import Iterable

from eg_core import KernelContext, orphans, procinfo

from ._settings import SSHResourceManager, resolve, split_host, target
from ._ssh import Target

RESOURCE_MANAGER = "ssh"
_SCAN_TIMEOUT = 30.0
log = logging.getLogger("eg.ssh")


def marks() -> dict[str, str]:
    """The ownership variables for a launcher's environment."""
    return orphans.owner_marks(RESOURCE_MANAGER, SSHResourceManager.instance().gateway_id)


def _hosts_configured(rm: SSHResourceManager) -> bool:
    """Whether the operator named the hosts (config, CLI or environment): a gateway that only
    has eg-ssh installed does not log in to the default ``localhost`` at each start."""
    if "remote_hosts" in rm.config.get("SSHResourceManager", {}):
        return True
    return any(os.environ.get(name) for name in rm.traits()["remote_hosts"].metadata.get("env", ()))


def _command(python: str, function, *args: int) -> str:
    return f"exec {shlex.quote(python)} -c {shlex.quote(procinfo.script(function, *args))}"


async def _sessions_on(t: Target, python: str, gateway_id: str) -> list[tuple[orphans.Resource, Target]]:
    from . import _remote

    result = await _remote.run(t, _command(python, procinfo.kernel_sessions), timeout=_SCAN_TIMEOUT)
    if result.exit_status != 0:
        raise RuntimeError(f"the process scan on {t} exited with {result.exit_status}: {str(result.stderr)[-500:]}")
    sessions = json.loads(result.stdout)
    return [(r, t) for r in orphans.owned_sessions(sessions, RESOURCE_MANAGER, gateway_id, where=f"{t.user}@{t.host}:{t.port}")]


async def reconcile(known_kernel_ids: Iterable[str]) -> list[orphans.Resource]:
    """Log or remove this gateway's orphaned SSH kernels (see the module docstring)."""
    rm = SSHResourceManager.instance()
    if rm.orphans_at_startup == "ignore" or not _hosts_configured(rm):
        return []
    settings = resolve(KernelContext(kernel_id="", kernel_name="", resource_manager=RESOURCE_MANAGER))
    targets = [target(settings, *split_host(entry, settings.ssh_port), settings.remote_user) for entry in settings.remote_hosts]
    where: dict[orphans.Resource, Target] = {}

    async def owned() -> list[orphans.Resource]:
        answers = await asyncio.gather(
            *(_sessions_on(t, settings.remote_python, rm.gateway_id) for t in targets), return_exceptions=True
        )
        failed = [f"{t}: {answer}" for t, answer in zip(targets, answers) if isinstance(answer, Exception)]
        if failed and len(failed) == len(targets):  # the sweep reports it as unreachable
            raise RuntimeError("; ".join(failed))
        seen: set[tuple[str, str]] = set()  # two host entries may name one machine
        for t, answer in zip(targets, answers):
            if isinstance(answer, Exception):  # one host down must not hide the others' orphans
                log.warning("ssh: cannot look for orphaned kernels on %s: %s", t, answer)
                continue
            for resource, on in answer:
                if (resource.kernel_id, resource.id) not in seen:
                    seen.add((resource.kernel_id, resource.id))
                    where[resource] = on
        return list(where)

    async def remove(resource: orphans.Resource) -> bool:
        from . import _remote

        result = await _remote.run(where[resource], _command(settings.remote_python, procinfo.end_session, *orphans.session_of(resource)))
        return json.loads(result.stdout or "false") is True

    return await orphans.sweep(RESOURCE_MANAGER, known_kernel_ids, owned, remove, policy=rm.orphans_at_startup)
