"""The jupyter_client adapter: its kernel manager and provisioner, over a :class:`KernelLaunch`.

This is the only module that subclasses jupyter_client's classes. Inside the gateway the
registry makes an :class:`EGKernelManager` with the kernel's :class:`KernelLaunch` (``km.launch``),
which :class:`HookProvisioner` uses; any other jupyter_client application gets a launch made
here, with a context built from the kernelspec and the shared plugin manager, so our kernelspecs
work there too. Nothing outside this module touches jupyter_client's private names.
"""

from __future__ import annotations

import os
import signal
import sys
from typing import Any

from jupyter_client.kernelspec import KernelSpec
from jupyter_client.manager import AsyncKernelManager
from jupyter_client.provisioning.provisioner_base import KernelProvisionerBase
from traitlets import Any as AnyTrait

from .. import argv as argv_templates
from .. import remote
from ..config import finite_number
from .context import KernelContext
from .env import substitute
from .launch import KernelLaunch
from .plugins import shared_plugin_manager

_PROVISIONER_TRAITS = {"kernel_id", "kernel_spec", "parent", "connection_info", "config", "log"}


class EGKernelManager(AsyncKernelManager):
    """jupyter_client's kernel manager for one of the gateway's kernels: it carries the kernel's
    :class:`KernelLaunch` (``launch``), waits on it instead of polling, and holds no control
    socket while the kernel idles (jupyter_client connects it when a shutdown request or a
    message-mode interrupt needs it)."""

    launch = AnyTrait(None, allow_none=True, help="the kernel's KernelLaunch (set by the registry)")

    def __init__(self, *, spec: KernelSpec, launch: KernelLaunch, connection_file: str, **kwargs: Any):
        super().__init__(kernel_name=launch.kernel.kernel_name, **kwargs)
        self._kernel_spec = spec
        self.kernel_id = launch.kernel.kernel_id
        self.connection_file = connection_file
        self.launch = launch
        self.provisioner = HookProvisioner(kernel_id=self.kernel_id, kernel_spec=spec, parent=self)

    async def _async_post_start_kernel(self, **kw: Any) -> None:
        self.start_restarter()
        await self.provisioner.post_launch(**kw)

    async def _async_wait(self, pollinterval: float = 0.1) -> None:
        if self.has_kernel:
            await self.launch.wait()

    def adopted(self, connection_file_exists: bool) -> None:
        """The kernel was restored from the session store: jupyter_client's restart treats it as
        started here, and a shutdown here removes the connection file the launching gateway wrote."""
        self._launch_args = {"kernel_id": self.kernel_id}
        self._attempted_start = True
        self._connection_file_written = connection_file_exists

    def new_ports(self) -> None:
        """The next (re)launch chooses new ports and writes a new connection file (a restart
        otherwise reuses the old ones); the ports chosen before are released."""
        self.cleanup_connection_file()
        self.launch.release_ports()
        self.shell_port = self.iopub_port = self.stdin_port = self.hb_port = self.control_port = 0

    def keep_connection_file(self) -> None:
        """The kernel outlives this gateway: its connection file stays when the manager goes."""
        self._connection_file_written = False


class HookProvisioner(KernelProvisionerBase):
    """jupyter_client's provisioner: each method hands over to the kernel's :class:`KernelLaunch`."""

    resource_manager = "local"

    def __init__(self, **kwargs: Any):
        rm_config = {k: kwargs.pop(k) for k in list(kwargs) if k not in _PROVISIONER_TRAITS}
        super().__init__(**kwargs)
        launch = getattr(self.parent, "launch", None)
        self.standalone = not isinstance(launch, KernelLaunch)  # a plain jupyter_client application
        if self.standalone:
            launch = KernelLaunch(KernelContext(
                kernel_id=self.kernel_id,
                kernel_name=getattr(self.parent, "kernel_name", "") or "",
                resource_manager=self.resource_manager,
                spec=self.kernel_spec.to_dict() if self.kernel_spec else {},
                config=rm_config,
            ), shared_plugin_manager())
        self.launch: KernelLaunch = launch
        self.kernel = launch.kernel

    @property
    def has_process(self) -> bool:
        return self.launch.running

    # -- launch ----------------------------------------------------------------------------

    async def pre_launch(self, **kwargs: Any) -> dict[str, Any]:
        """Write the connection file if the argv uses one, and fill the argv templates. Called by
        jupyter_client's ``pre_start_kernel`` on every (re)launch; in a plain jupyter_client
        application it first begins the launch and applies the policies (the gateway's registry
        does that before it starts or restarts a kernel)."""
        kernel = self.kernel
        km = self.parent
        if self.standalone:
            kernel.env = {k: v for k, v in (kwargs.get("env") or {}).items() if k not in os.environ or os.environ[k] != v}
            kernel.env.update(substitute(self.kernel_spec.env, {**os.environ, **kernel.env}))
            kernel.cwd = kwargs.get("cwd")
            self.launch.begin()
            await self.launch.apply_policies()
        argv = list(self.kernel_spec.argv) + list(kwargs.pop("extra_arguments", []))
        if argv_templates.uses(argv, "connection_file"):
            self._write_connection_file()
        namespace = {
            "prefix": sys.prefix,
            "resource_dir": self.kernel_spec.resource_dir,
            "kernel_id": kernel.kernel_id,
            "port_range": str(self.launch.port_range_of() or "0..0"),
            "connection_file": os.path.realpath(km.connection_file) if km.connection_file else "",
        }
        if argv_templates.uses(argv, "response_address", "public_key"):
            await remote.start_listener()
        namespace.update(remote.substitutions())
        for extra in self.launch.pm.hook.eg_launch_substitutions(kernel=kernel):
            namespace.update(extra)
        if argv and argv[0] in ("python", f"python{sys.version_info[0]}") and kernel.resource_manager == "local":
            argv[0] = sys.executable
        cmd = argv_templates.fill(argv, namespace)
        return {"cmd": cmd, "env": kernel.env, "cwd": kernel.cwd}

    def _write_connection_file(self) -> None:
        km = self.parent
        if not km.shell_port:
            km.shell_port, km.iopub_port, km.stdin_port, km.hb_port, km.control_port = self.launch.choose_ports(km.ip)
        km.write_connection_file()
        self.kernel.connection_info = _jsonable(km.get_connection_info())

    async def launch_kernel(self, cmd: list[str], **kwargs: Any) -> dict[str, Any]:
        """Run the resource manager's phases (:meth:`KernelLaunch.run`); return the connection
        info (key as bytes)."""
        info = dict(await self.launch.run(cmd))
        if isinstance(info.get("key"), str):
            info["key"] = info["key"].encode()
        self.kernel.connection_info = _jsonable(info)
        self.connection_info = info
        return info

    # -- lifecycle -------------------------------------------------------------------------

    async def poll(self) -> int | None:
        return await self.launch.poll()

    async def wait(self) -> int | None:
        return await self.launch.wait()

    async def send_signal(self, signum: int) -> None:
        await self.launch.send_signal(signum)

    async def shutdown_requested(self, restart: bool = False) -> None:
        await self.launch.shutdown_requested(restart)

    async def terminate(self, restart: bool = False) -> None:
        if not await self.launch.terminate(restart):
            await self.send_signal(signal.SIGTERM)

    async def kill(self, restart: bool = False) -> None:
        await self.launch.kill(restart)

    async def cleanup(self, restart: bool = False) -> None:
        await self.launch.cleanup(restart)

    def get_shutdown_wait_time(self, recommended: float = 5.0) -> float:
        try:
            return finite_number(self.kernel.config.get("shutdown_wait_time", recommended))
        except (TypeError, ValueError):
            return recommended

    # -- persistence -----------------------------------------------------------------------

    async def get_provisioner_info(self) -> dict[str, Any]:
        return {**await super().get_provisioner_info(), **await self.launch.saved()}

    async def load_provisioner_info(self, provisioner_info: dict) -> None:
        await super().load_provisioner_info(provisioner_info)
        await self.launch.restore(provisioner_info)


def provisioner_for(resource_manager: str) -> type[HookProvisioner]:
    """The provisioner class a resource-manager plugin registers for jupyter_client
    (entry point ``eg-<name>`` in group ``jupyter_client.kernel_provisioners``)."""
    name = "".join(part.title() for part in resource_manager.split("_")) + "Provisioner"
    return type(name, (HookProvisioner,), {"resource_manager": resource_manager})


def _jsonable(info: dict[str, Any]) -> dict[str, Any]:
    info = dict(info)
    if isinstance(info.get("key"), bytes):
        info["key"] = info["key"].decode()
    return info


__all__ = ["EGKernelManager", "HookProvisioner", "provisioner_for"]
