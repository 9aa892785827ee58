"""The ``yarn`` resource manager's hooks: the resource-manager ones are :mod:`eg_yarn._lifecycle`'s functions.

Each kernel is a YARN application: submitted by the kernelspec's ``spark-submit`` command
(Enterprise Gateway's ``YarnClusterProcessProxy`` kernelspecs) or, with ``submission: rest``,
through the ResourceManager's REST API with eg's launcher as the application master. The launcher
calls back to the gateway's response address from the AM's host; signals and shutdown go through
its comm port; kills go through the ResourceManager.
"""

from __future__ import annotations

from eg_core import hookimpl, hooks_from, provisioner_for

from . import _settings

YarnProvisioner = provisioner_for("yarn")


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
async def eg_doctor(kernels):
    """Called by ``eg-gateway doctor``: each YARN kernelspec's RM, queue and submit command."""
    from . import _doctor

    return await _doctor.checks(kernels)


# The resource-manager hooks: eg_<name> for each function <name> of ._lifecycle, imported on first
# use (a gateway that runs no YARN kernel never loads yarn-api-client and requests).
globals().update(hooks_from("eg_yarn._lifecycle"))


@hookimpl
def eg_launch_parameters(kernel):
    """What a request may set for this kernelspec's applications (``metadata.parameters``)."""
    from ._settings import launch_parameters

    return launch_parameters(kernel)
