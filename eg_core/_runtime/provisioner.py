"""jupyter_client's provisioner API mapped onto the resource-manager hooks.

This is the only module that subclasses jupyter_client's provisioner. Inside the gateway the
kernel manager carries the kernel's context (``km.eg_kernel``) and the plugin manager
(``km.eg_plugin_manager``); any other jupyter_client application gets a context built here and
the shared plugin manager, so our kernelspecs work there too.
"""

from __future__ import annotations

import asyncio
import os
import signal
import sys
from typing import Any

from jupyter_client.provisioning.provisioner_base import KernelProvisionerBase

from .. import argv as argv_templates
from .. import remote
from .calling import acall_first, implemented
from ..config import finite_number
from .context import KernelContext
from .env import substitute
from .launch import Deadline, before_launch, cleanup, launch_sequence, run_phase
from .plugins import resource_manager_hooks, shared_plugin_manager
from .ports import PortRange, free_ports, release_ports

_PROVISIONER_TRAITS = {"kernel_id", "kernel_spec", "parent", "connection_info", "config", "log"}
_UNATTENDED_POLL_INTERVAL = 2.0


class HookProvisioner(KernelProvisionerBase):
    """A provisioner whose every method calls the kernel's resource-manager hooks."""

    resource_manager = "local"

    def __init__(self, **kwargs: Any):
        rm_config = {k: kwargs.pop(k) for k in list(kwargs) if k not in _PROVISIONER_TRAITS}
        super().__init__(**kwargs)
        km = self.parent
        self.kernel: KernelContext = getattr(km, "eg_kernel", None) or KernelContext(
            kernel_id=self.kernel_id,
            kernel_name=getattr(km, "kernel_name", "") or "",
            resource_manager=self.resource_manager,
            spec=self.kernel_spec.to_dict() if self.kernel_spec else {},
            config=rm_config,
        )
        self.pm = getattr(km, "eg_plugin_manager", None) or shared_plugin_manager()
        self.hooks = resource_manager_hooks(self.pm, self.kernel.resource_manager)
        self.timings: dict[str, float] = {}
        self._running = False
        self._ports: list[int] = []
        self.chose_ports = False  # the gateway picked the kernel's ports (a connection file)

    @property
    def has_process(self) -> bool:
        return self._running

    # -- launch ----------------------------------------------------------------------------

    async def pre_launch(self, **kwargs: Any) -> dict[str, Any]:
        """Run ``eg_before_launch``, write the connection file if the argv uses one, and fill the
        argv templates. Called by jupyter_client's ``pre_start_kernel`` on every (re)launch."""
        kernel = self.kernel
        km = self.parent
        self.deadline = Deadline(kernel.launch_timeout)
        self.timings = {}
        if not hasattr(km, "eg_kernel"):  # a plain jupyter_client application
            kernel.env = {k: v for k, v in (kwargs.get("env") or {}).items() if k not in os.environ or os.environ[k] != v}
            kernel.env.update(substitute(self.kernel_spec.env, {**os.environ, **kernel.env}))
            kernel.cwd = kwargs.get("cwd")
        applied = kernel.handles.pop("policies_applied", None)  # seconds they took before a pool claim
        if applied is None:
            await run_phase("before_launch", self.deadline, before_launch(self.pm, kernel), self.timings)
        else:
            self.timings["before_launch"] = applied
        argv = list(self.kernel_spec.argv) + list(kwargs.pop("extra_arguments", []))
        if argv_templates.uses(argv, "connection_file"):
            self._write_connection_file()
        namespace = {
            "prefix": sys.prefix,
            "resource_dir": self.kernel_spec.resource_dir,
            "kernel_id": kernel.kernel_id,
            "port_range": str(self._port_range() or "0..0"),
            "connection_file": os.path.realpath(km.connection_file) if km.connection_file else "",
        }
        if argv_templates.uses(argv, "response_address", "public_key"):
            await remote.start_listener()
        namespace.update(remote.substitutions())
        for extra in self.pm.hook.eg_launch_substitutions(kernel=kernel):
            namespace.update(extra)
        if argv and argv[0] in ("python", f"python{sys.version_info[0]}") and kernel.resource_manager == "local":
            argv[0] = sys.executable
        cmd = argv_templates.fill(argv, namespace)
        return {"cmd": cmd, "env": kernel.env, "cwd": kernel.cwd}

    def _port_range(self) -> PortRange | None:
        return PortRange.parse(self.kernel.config.get("port_range") or getattr(self.parent, "eg_port_range", None))

    def _write_connection_file(self) -> None:
        km = self.parent
        if not km.shell_port:
            self._ports = free_ports(5, km.ip, self._port_range())
            self.chose_ports = True
            km.shell_port, km.iopub_port, km.stdin_port, km.hb_port, km.control_port = self._ports
        km.write_connection_file()
        self.kernel.connection_info = _jsonable(km.get_connection_info())

    async def launch_kernel(self, cmd: list[str], **kwargs: Any) -> dict[str, Any]:
        """Run steps 2-4 of the launch sequence; return the connection info (key as bytes)."""
        try:
            info = await launch_sequence(self.kernel, self.hooks, cmd, self.deadline, self.timings)
        except BaseException:
            if not self.kernel.restarting:
                self.release_ports()
            raise
        self._running = True
        info = dict(info)
        if isinstance(info.get("key"), str):
            info["key"] = info["key"].encode()
        self.kernel.connection_info = _jsonable(info)
        self.connection_info = info
        return info

    # -- lifecycle -------------------------------------------------------------------------

    async def poll(self) -> int | None:
        if not self._running:
            return 0
        status = await acall_first(self.hooks.eg_poll, kernel=self.kernel)
        return status

    async def wait(self) -> int | None:
        """Wait for the kernel to end: ``eg_wait`` when the resource manager has it, else
        ``eg_poll`` at a slow interval."""
        if not self._running:
            return 0
        if implemented(self.hooks.eg_wait):
            status = await acall_first(self.hooks.eg_wait, kernel=self.kernel)
        else:
            while (status := await self.poll()) is None:
                await asyncio.sleep(_UNATTENDED_POLL_INTERVAL)
        self._running = False
        return status

    async def send_signal(self, signum: int) -> None:
        await acall_first(self.hooks.eg_send_signal, kernel=self.kernel, signum=signum)

    async def shutdown_requested(self, restart: bool = False) -> None:
        if implemented(self.hooks.eg_shutdown_requested):
            await acall_first(self.hooks.eg_shutdown_requested, kernel=self.kernel, restart=restart)

    async def terminate(self, restart: bool = False) -> None:
        if implemented(self.hooks.eg_terminate):
            await acall_first(self.hooks.eg_terminate, kernel=self.kernel, restart=restart)
        else:
            await self.send_signal(signal.SIGTERM)

    async def kill(self, restart: bool = False) -> None:
        await acall_first(self.hooks.eg_kill, kernel=self.kernel, restart=restart)

    async def cleanup(self, restart: bool = False) -> None:
        await cleanup(self.kernel, self.hooks, restart)
        self._running = False
        if not restart:
            self.release_ports()

    def release_ports(self) -> None:
        release_ports(self._ports)
        self._ports = []

    async def describe_exit(self) -> str | None:
        if implemented(self.hooks.eg_describe_exit):
            return await acall_first(self.hooks.eg_describe_exit, kernel=self.kernel)
        return None

    def get_shutdown_wait_time(self, recommended: float = 5.0) -> float:
        try:
            return finite_number(self.kernel.config.get("shutdown_wait_time", recommended))
        except (TypeError, ValueError):
            return recommended

    # -- persistence -----------------------------------------------------------------------

    async def get_provisioner_info(self) -> dict[str, Any]:
        info = await super().get_provisioner_info()
        info["connection_info"] = self.kernel.connection_info
        if implemented(self.hooks.eg_save_process_info):
            process_info = await acall_first(self.hooks.eg_save_process_info, kernel=self.kernel)
        else:
            process_info = dict(self.kernel.state)
        info["eg"] = {**self.kernel.to_json(), "process_info": process_info}
        return info

    async def load_provisioner_info(self, provisioner_info: dict) -> None:
        await super().load_provisioner_info(provisioner_info)
        saved = provisioner_info["eg"]
        process_info = saved.get("process_info", {})
        for name in ("env", "user", "cwd", "config", "connection_info", "launch_timeout"):
            if name in saved:
                setattr(self.kernel, name, saved[name])
        if implemented(self.hooks.eg_load_process_info):
            await acall_first(self.hooks.eg_load_process_info, kernel=self.kernel, info=process_info)
        else:
            self.kernel.state = dict(process_info)
            self.kernel.handles.clear()
        self._running = True


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


__all__ = ["HookProvisioner", "provisioner_for"]
