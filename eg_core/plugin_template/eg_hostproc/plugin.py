"""The ``hostproc`` resource manager: its hooks, each delegating to :mod:`eg_hostproc._kernels`.

Every hook it implements is in :mod:`eg_core.hookspecs`; the launch sequence calls
``eg_launch_process``, ``eg_confirm_startup``, then connects to the kernel with the connection
info the launcher sent back (the default ``eg_connection_info``).
"""

from __future__ import annotations

from pathlib import Path

from eg_core import hookimpl, provisioner_for, remote

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


@hookimpl
async def eg_launch_process(kernel, cmd):
    await _kernels.launch(kernel, cmd)


@hookimpl
async def eg_confirm_startup(kernel):
    await _kernels.confirm(kernel)


@hookimpl
def eg_poll(kernel):
    return _kernels.poll(kernel)


@hookimpl
async def eg_wait(kernel):
    return await _kernels.wait(kernel)


@hookimpl
async def eg_send_signal(kernel, signum):
    """Through the launcher's comm port; the process group when that fails."""
    await remote.send_signal(kernel, signum, fallback=_kernels.signal_group)


@hookimpl
async def eg_terminate(kernel):
    await remote.terminate(kernel, fallback=_kernels.signal_group)


@hookimpl
async def eg_kill(kernel):
    await _kernels.kill(kernel)


@hookimpl
def eg_cleanup(kernel):
    _kernels.cleanup(kernel)


@hookimpl
def eg_describe_exit(kernel):
    return _kernels.describe_exit(kernel)


@hookimpl
async def eg_doctor(kernels):
    return await _kernels.doctor_checks(kernels)
