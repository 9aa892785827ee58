"""The ``yarn`` resource manager's hooks: thin delegations to :mod:`eg_yarn._lifecycle`.

Each kernel is a YARN application: submitted by the kernelspec's ``spark-submit`` command
(Enterprise Gateway's ``YarnClusterProcessProxy`` kernelspecs) or, with ``submission: rest``,
through the ResourceManager's REST API with eg's launcher as the application master. The launcher
calls back to the gateway's response address from the AM's host; signals and shutdown go through
its comm port; kills go through the ResourceManager.
"""

from __future__ import annotations

from eg_core import hookimpl, provisioner_for

from . import _settings

YarnProvisioner = provisioner_for("yarn")


def _kernels():
    """The lifecycle module, imported on first use: a gateway that runs no YARN kernel never
    loads yarn-api-client and requests."""
    from . import _lifecycle

    return _lifecycle


@hookimpl
def eg_configurables():
    """Called once at gateway startup: the settings class, configured from the gateway's config."""
    return [_settings.YarnSettings]


@hookimpl
def eg_kernelspec_aliases():
    """gateway_provisioners' and Enterprise Gateway's names for this resource manager."""
    return {"yarn-provisioner": "yarn", "YarnClusterProcessProxy": "yarn"}


@hookimpl
def eg_kernelspec_dirs():
    """Called once at gateway startup: the kernelspecs this package ships."""
    from . import kernelspecs_dir

    return [kernelspecs_dir()]


@hookimpl
async def eg_reconcile(known_kernel_ids):
    """Called once at startup, after adoption: log or kill this gateway's unknown applications."""
    from . import _orphans

    await _orphans.reconcile(known_kernel_ids)


@hookimpl
def eg_pool_fit(kernel, request):
    """Called when a request could claim a waiting pooled YARN kernel: a miss when the request
    needs another user, queue, node label, memory or RM."""
    return _kernels().pool_misfit(kernel, request)


@hookimpl
async def eg_doctor(kernels):
    """Called by ``eg-gateway doctor``: each YARN kernelspec's RM, queue and submit command."""
    from . import _doctor

    return await _doctor.checks(kernels)


@hookimpl
async def eg_launch_process(kernel, cmd):
    """Called once per (re)launch: check settings and queue room, then submit."""
    await _kernels().launch(kernel, cmd)


@hookimpl
async def eg_confirm_startup(kernel):
    """Called after the submission: wait for the launcher's callback, or the application's failure."""
    await _kernels().confirm(kernel)


@hookimpl
def eg_connection_info(kernel):
    """Called after the callback: the launcher's ports, with the AM host as ip."""
    return kernel.connection_info


@hookimpl
async def eg_poll(kernel):
    return await _kernels().poll(kernel)


@hookimpl
async def eg_wait(kernel):
    return await _kernels().wait(kernel)


@hookimpl
async def eg_send_signal(kernel, signum):
    await _kernels().send_signal(kernel, signum)


@hookimpl
async def eg_shutdown_requested(kernel):
    """Called after the kernel's shutdown_request: end an application the AM cannot end itself."""
    await _kernels().shutdown_requested(kernel)


@hookimpl
async def eg_terminate(kernel):
    await _kernels().terminate(kernel)


@hookimpl
async def eg_kill(kernel):
    await _kernels().kill(kernel)


@hookimpl
async def eg_cleanup(kernel, restart):
    await _kernels().cleanup(kernel, restart)


@hookimpl
async def eg_describe_exit(kernel):
    return await _kernels().describe_exit(kernel)


@hookimpl
def eg_load_process_info(kernel, info):
    _kernels().adopt(kernel, info)


@hookimpl
def eg_launch_parameters(kernel):
    """What a request may set for this kernelspec's applications (``metadata.parameters``)."""
    from ._settings import launch_parameters

    return launch_parameters(kernel)
