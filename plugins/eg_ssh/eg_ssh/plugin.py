"""The ``ssh`` resource manager's hooks: the resource-manager ones are :mod:`eg_ssh._lifecycle`'s functions.

Every kernel runs under eg's launcher on a remote host, started over a pooled asyncssh
connection by a small bootstrap that gets the kernel's environment over stdin (never on a
command line). The launcher calls back to the gateway's response address; signals and shutdown
go through its comm port, with SSH ``kill`` as the fallback.
"""

from __future__ import annotations

from pathlib import Path

from eg_core import hookimpl, hooks_from, provisioner_for

from . import _settings

SSHProvisioner = provisioner_for("ssh")


@hookimpl
def eg_configurables():
    """Called once at gateway startup: the settings class, configured from the gateway's config."""
    return [_settings.SSHResourceManager]


@hookimpl
def eg_kernelspec_aliases():
    """gateway_provisioners' and Enterprise Gateway's names for this resource manager."""
    return {"distributed-provisioner": "ssh", "DistributedProcessProxy": "ssh"}


@hookimpl
def eg_kernelspec_dirs():
    """The ``python_ssh`` kernelspec this package ships."""
    return [str(Path(__file__).parent / "kernelspecs")]


# The resource-manager hooks: eg_<name> for each function <name> of ._lifecycle, imported on first
# use (a gateway that runs no SSH kernel never loads asyncssh, about 14 MiB of RSS).
globals().update(hooks_from("eg_ssh._lifecycle"))


@hookimpl
async def eg_reconcile(known_kernel_ids):
    """Called once at startup: this gateway's kernels on ``remote_hosts`` that no store knows
    and no live gateway owns, logged or killed (``SSHResourceManager.orphans_at_startup``)."""
    from . import _orphans

    await _orphans.reconcile(known_kernel_ids)


@hookimpl
async def eg_shutdown():
    """Called once when the gateway stops: close the SSH connections (launchers keep running
    when the gateway does not shut its kernels down)."""
    from ._ssh import pool

    await pool.close_all()


@hookimpl
def eg_pool_fit(kernel, request):
    """Called when a request could claim a waiting pooled SSH kernel: a miss for another
    remote user (impersonation) or another host."""
    return _settings.pool_misfit(kernel, request)


@hookimpl
async def eg_doctor(kernels):
    """Each SSH kernelspec's hosts accept our login, with known host keys, and run ipykernel."""
    from . import _doctor

    return await _doctor.checks(kernels)


@hookimpl
def eg_launch_parameters(kernel):
    """What a request may set for this kernelspec (``metadata.parameters``): its host."""
    return _settings.launch_parameters(kernel)
