"""The ``hostproc`` resource manager's hooks: the resource-manager ones are the functions of
:mod:`eg_hostproc._kernels`, the others are written here.

Every hook is in :mod:`eg_core.hookspecs`; the launch sequence calls
``eg_launch_process``, ``eg_confirm_startup``, then connects to the kernel with the connection
info the launcher sent back (the default ``eg_connection_info``).
"""

from __future__ import annotations

from pathlib import Path

from eg_core import hookimpl, hooks_from, provisioner_for

from . import _kernels
from ._settings import HostProcSettings

# jupyter_client finds this class through the "jupyter_client.kernel_provisioners" entry point.
HostProcProvisioner = provisioner_for("hostproc")


@hookimpl
def eg_configurables():
    """Called once at startup: the settings class, configured from the gateway's config."""
    return [HostProcSettings]


@hookimpl
def eg_kernelspec_dirs():
    """Called once at startup: the kernelspecs this package ships."""
    return [str(Path(__file__).parent / "kernelspecs")]


# The resource-manager hooks: eg_<name> for each function <name> of _kernels (eg_launch_process
# is _kernels.launch_process).
globals().update(hooks_from("eg_hostproc._kernels"))


@hookimpl
async def eg_doctor(kernels):
    return await _kernels.doctor_checks(kernels)
