"""eg: a pluggable Jupyter kernel gateway.

Writing a plugin (a resource manager or a policy) takes three steps::

    # my_plugin/__init__.py
    from eg_core import LaunchRefused, hookimpl

    @hookimpl
    async def eg_before_launch(kernel):
        if kernel.user == "mallory":
            raise LaunchRefused("mallory may not start kernels")

    # pyproject.toml
    [project.entry-points."eg.plugins"]
    myplugin = "my_plugin"

Every hook, with when it is called and what it returns, is in :mod:`eg_core.hookspecs`.
A resource manager implements the resource-manager hooks and is named in kernelspecs by its
entry-point name (``metadata.kernel_provisioner.provisioner_name = "eg-<name>"``). It keeps one
kernel's life in a module with one function per hook, named as the hook without ``eg_``, and
its plugin module makes those functions its hooks in one line (:func:`hooks_from`)::

    globals().update(hooks_from("my_plugin._kernels"))

The public API
--------------
Public is a spelling rule: a plugin imports only modules and names no part of which starts with
``_``; everything else in ``eg_core`` (``eg_core._runtime``, ``eg_core._server``,
``eg_core._builtin``...) is internal and may change (``tests/test_public_api.py`` fails on any
other import from a plugin). The public modules, listed in ``PUBLIC_MODULES``:

- this package: the names in ``__all__`` below;
- :mod:`eg_core.hookspecs`: the hook reference (``NAME``, the ``eg_*`` specs);
- :mod:`eg_core.config`: settings classes (:class:`~eg_core.config.EnvDefaults`, ``EG_*``
  environment defaults, kernelspec overrides validated through the traits);
- :mod:`eg_core.remote`: kernels started elsewhere (the launcher, its callback, its comm port,
  signals with one fallback policy);
- :mod:`eg_core.argv`: filling ``{name}`` templates in a kernelspec's argv;
- :mod:`eg_core.containers`: the command and environment of a kernel container (eg's and
  Enterprise Gateway's kernelspecs);
- :mod:`eg_core.batch`: kernels as batch-scheduler jobs (the settings every scheduler plugin
  shares, its launch, job script, output file, exit status, cancel-wait-then-force; ``Scheduler``,
  the resource-manager hooks over a scheduler's commands);
- :mod:`eg_core.watch`: ``SharedWatch``, one backend stream feeding every kernel's waiters;
- :mod:`eg_core.process`: commands on the gateway host (a runner with a timeout and captured
  output; the environment of local processes);
- :mod:`eg_core.poller`: one batched status query for every kernel of a backend without events;
- :mod:`eg_core.orphans`: the startup sweep of what a backend still runs for unknown kernels;
- :mod:`eg_core.procinfo`: local processes named across restarts (pid with start time, found by
  an environment variable), the parent-death signal and non-dumpable processes;
- :mod:`eg_core.gateway`: the object ``eg_startup``/``eg_shutdown`` receive;
- :mod:`eg_core.lifecycle`: event and launch-phase names;
- :mod:`eg_core.doctor`: ``Check``, what a plugin's ``eg_doctor`` returns;
- :mod:`eg_core.web`: the base class of a plugin's web handlers;
- :mod:`eg_core.identity`: what an identity provider (``eg_identify``) answers or raises;
- :mod:`eg_core.testing`: the pytest plugin (fixtures, the resource-manager conformance suite).
"""

from typing import Any

import pluggy

from ._runtime.context import KernelContext
from ._runtime.errors import BadRequest, EGError, LaunchFailed, LaunchRefused, NotFound
from ._runtime.forwarding import hooks_from
from .gateway import GatewayAPI, KernelSummary
from .hookspecs import NAME
from .lifecycle import Event, Phase

__version__ = "0.1.0"

hookimpl = pluggy.HookimplMarker(NAME)

PUBLIC_MODULES = (
    "eg_core",
    "eg_core.hookspecs",
    "eg_core.config",
    "eg_core.remote",
    "eg_core.argv",
    "eg_core.containers",
    "eg_core.batch",
    "eg_core.watch",
    "eg_core.process",
    "eg_core.poller",
    "eg_core.orphans",
    "eg_core.procinfo",
    "eg_core.gateway",
    "eg_core.lifecycle",
    "eg_core.doctor",
    "eg_core.web",
    "eg_core.identity",
    "eg_core.testing",
)


def __getattr__(name: str) -> Any:
    if name == "provisioner_for":  # imported on use: it loads jupyter_client's provisioning
        from ._runtime.provisioner import provisioner_for

        return provisioner_for
    raise AttributeError(f"module 'eg_core' has no attribute {name!r}")


__all__ = [
    "NAME",
    "hookimpl",
    "KernelContext",
    "EGError",
    "BadRequest",
    "NotFound",
    "LaunchRefused",
    "LaunchFailed",
    "Event",
    "Phase",
    "GatewayAPI",
    "KernelSummary",
    "provisioner_for",
    "hooks_from",
    "PUBLIC_MODULES",
    "__version__",
]
