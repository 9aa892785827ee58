"""``eg-gateway doctor`` for SSH: each host of each SSH kernelspec accepts the gateway's login
with a known host key, and its ``remote_python`` imports ipykernel."""

from __future__ import annotations

import shlex

from eg_core import EGError
from eg_core.doctor import Check

from . import _remote
from ._settings import remote_user, resolve, split_host
from ._settings import target as ssh_target
from ._ssh import HostUnreachable, LoginRejected, Target, pool


def _targets(kernels, found: list[Check]) -> dict[tuple[Target, str], list[str]]:
    """(target, remote python) -> the kernelspecs that use it; bad settings become failed checks."""
    targets: dict[tuple[Target, str], list[str]] = {}
    for kernel in kernels:
        try:
            settings = resolve(kernel)
            user = remote_user(kernel, settings)
            for entry in settings.remote_hosts:
                host, port = split_host(entry, settings.ssh_port)
                target = ssh_target(settings, host, port, user)
                targets.setdefault((target, settings.remote_python), []).append(kernel.kernel_name)
        except EGError as exc:
            found.append(Check(f"kernelspec {kernel.kernel_name}", False, exc.message, "fix the kernelspec's config"))
    return targets


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
