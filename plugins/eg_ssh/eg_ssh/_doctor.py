"""``eg-gateway doctor`` for SSH: each host of each SSH kernelspec accepts the gateway's login
with a known host key, and its ``remote_python`` imports ipykernel."""

from __future__ import annotations

import shlex

from eg_core.doctor import Check, each_kernelspec

from . import _remote
from ._settings import remote_user, resolve, split_host
from ._settings import target as ssh_target
from ._ssh import HostUnreachable, LoginRejected, Target, pool


def _targets(kernels, found: list[Check]) -> dict[tuple[Target, str], list[str]]:
    """(target, remote python) -> the kernelspecs that use it; bad settings become failed checks."""
    targets: dict[tuple[Target, str], list[str]] = {}
    for kernel, _, pairs in each_kernelspec(kernels, _kernel_targets, found):
        for pair in pairs:
            targets.setdefault(pair, []).append(kernel.kernel_name)
    return targets


def _kernel_targets(kernel) -> list[tuple[Target, str]]:
    """(target, remote python) of each of the kernelspec's hosts; raises EGError for bad settings."""
    settings = resolve(kernel)
    user = remote_user(kernel, settings)
    return [(ssh_target(settings, *split_host(entry, settings.ssh_port), user), settings.remote_python) for entry in settings.remote_hosts]


async def checks(kernels) -> list[Check]:
    found: list[Check] = []
    try:
        for (target, python), names in _targets(kernels, found).items():
            what = f"host {target} (kernelspecs {', '.join(names)})"
            try:
                result = await _remote.run(target, f"{shlex.quote(python)} -c 'import ipykernel'")
            except HostUnreachable as exc:
                found.append(Check(what, False, str(exc), f"start sshd on {target.host}:{target.port}, or correct remote_hosts/ssh_port"))
                continue
            except LoginRejected as exc:
                found.append(Check(what, False, str(exc), "make the host accept the gateway's key and list its host key in known_hosts, as the message says"))
                continue
            ok = result.exit_status == 0
            detail = f"login ok, host key known; {python} {'imports' if ok else 'cannot import'} ipykernel"
            found.append(Check(what, ok, detail, f"install ipykernel for {python} on {target.host}, or set remote_python"))
    finally:
        await pool.close_all()
    return found
