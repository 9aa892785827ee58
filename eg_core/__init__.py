"""eg: a pluggable Jupyter kernel gateway.

Writing a plugin (a resource manager or a policy) takes three steps::

    # my_plugin/__init__.py
    from eg_core import hookimpl

    @hookimpl
    async def eg_before_launch(kernel):
        if kernel.user == "mallory":
            raise LaunchRefused("mallory may not start kernels")

    # pyproject.toml
    [project.entry-points."eg.plugins"]
    myplugin = "my_plugin"

Every hook, with when it is called and what it returns, is in :mod:`eg_core.hookspecs`.
A resource manager implements the resource-manager hooks and is named in kernelspecs by its
entry-point name (``metadata.kernel_provisioner.provisioner_name = "eg-<name>"``).
"""

import pluggy

from .context import KernelContext
from .errors import BadRequest, EGError, LaunchFailed, LaunchRefused, NotFound
from .hookspecs import NAME

__version__ = "0.1.0"

hookimpl = pluggy.HookimplMarker(NAME)

__all__ = [
    "NAME",
    "hookimpl",
    "KernelContext",
    "EGError",
    "BadRequest",
    "NotFound",
    "LaunchRefused",
    "LaunchFailed",
    "__version__",
]
