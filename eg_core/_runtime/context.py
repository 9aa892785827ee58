"""The per-kernel context object passed to every hook."""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Awaitable, Callable

from .logs import KernelLog

if TYPE_CHECKING:
    from .deadline import Deadline


@dataclass
class KernelContext:
    """Everything a plugin may know or record about one kernel.

    Plugins keep no per-kernel state on themselves: they read and write this object instead.

    - ``kernel_id``, ``kernel_name``: the kernel and its kernelspec name.
    - ``resource_manager``: the name of the plugin that runs this kernel (``local``, ``ssh``, ...).
    - ``spec``: the kernelspec (``argv``, ``env``, ``display_name``, ``language``, ``metadata``...).
    - ``config``: the resource manager's settings from the kernelspec (its provisioner ``config``
      or Enterprise Gateway's ``metadata.process_proxy.config``).
    - ``env``: the environment for the kernel: kernelspec env, inherited and allowed request
      values, and ``KERNEL_*`` values set by the core. It holds no gateway secrets.
    - ``user``: the user the kernel runs for (``KERNEL_USERNAME`` or the authenticated principal);
      ``user_from_request`` tells it came from the request, not the gateway's own OS user.
    - ``owner``: the API user the kernel belongs to, who alone (with the admins) may see and use
      it through the API: the user of the per-user token that started it, else the
      ``KERNEL_USERNAME`` a trusted client (the service token) named; "" for nobody's (the
      gateway's own, e.g. a waiting pooled kernel).
    - ``groups``: the owner's groups as their identity provider reported them at the request
      (group authorization and limits use them); empty for the service token or no provider.
    - ``cwd``: the requested working directory, if any.
    - ``launch_timeout``: seconds the whole launch may take.
    - ``connection_info``: ip, transport, the five ports, key and signature scheme, once known.
    - ``state``: JSON-able facts a resource manager records (pid, host, container id, app id...);
      it is what gets persisted, and what ``eg_load_process_info`` gets back after a gateway restart.
    - ``handles``: live objects (process handles, SSH connections) for this process only; never
      persisted.
    - ``pooled``: True while the kernel waits in a warm pool, started for nobody yet (its
      ``user``, ``env`` and ``cwd`` are the gateway's defaults until a request claims it).
    - ``restarting``: True while the kernel is being restarted (the launch is a relaunch).
    - ``notify``: set by the gateway; use :meth:`progress` rather than calling it.
    - ``deadline``: the launch under way's, set by the gateway; use
      :meth:`pause_launch_deadline` and :meth:`resume_launch_deadline`.
    - ``survives_gateway``: True when the session store records the kernel, so a later gateway
      process adopts or removes it; False when nothing would, and the kernel should end with
      this gateway process (the local resource manager sets a parent-death signal).
    """

    kernel_id: str
    kernel_name: str
    resource_manager: str
    spec: dict[str, Any] = field(default_factory=dict)
    config: dict[str, Any] = field(default_factory=dict)
    env: dict[str, str] = field(default_factory=dict)
    user: str = ""
    user_from_request: bool = False
    owner: str = ""
    groups: frozenset[str] = field(default_factory=frozenset)
    cwd: str | None = None
    launch_timeout: float = 60.0
    connection_info: dict[str, Any] = field(default_factory=dict)
    state: dict[str, Any] = field(default_factory=dict)
    handles: dict[str, Any] = field(default_factory=dict, repr=False)
    restarting: bool = False
    pooled: bool = False
    notify: Callable[[str, dict[str, Any]], Awaitable[None]] | None = field(default=None, repr=False, compare=False)
    survives_gateway: bool = True
    _checkpoint: Callable[[], Awaitable[None]] | None = field(default=None, repr=False, compare=False)
    deadline: Deadline | None = field(default=None, repr=False, compare=False)  # the launch's, set by the core

    def progress(self, step: str, **details: Any) -> None:
        """Report a step of a slow launch (``scheduled``, ``pulling``, ``started``...): a log line,
        and a ``progress`` lifecycle event ``{"step": step, **details}`` for every
        ``eg_kernel_event`` observer. Callable from sync code on the event loop."""
        self.log.info("launch progress: %s%s", step, "".join(f" {k}={v}" for k, v in details.items()))
        if self.notify is not None:
            asyncio.ensure_future(self.notify("progress", {"step": step, **details}))


    def pause_launch_deadline(self) -> None:
        """Stop the launch timeout's clock, for a wait that has a limit of its own which the
        resource manager enforces (eg-k8s: an image pull and ``image_pull_timeout``); the
        phase under way then waits without a timeout. Callable from sync code on the loop."""
        if self.deadline is not None:
            self.deadline.pause()

    def resume_launch_deadline(self) -> None:
        """Start the launch timeout's clock again with the time it had left when paused."""
        if self.deadline is not None:
            self.deadline.resume()

    async def checkpoint(self) -> None:
        """Save ``state`` to the session store now (a no-op without one).

        The core checkpoints before ``eg_launch_process`` and right after it. A resource
        manager that creates something it could not find again from what the core saved (a
        container named after a setting, a host picked from a list) records in ``state`` what
        finds or removes it and calls this *before* creating it: a gateway that crashes from
        then on leaves a record from which the next gateway removes it.
        """
        if self._checkpoint is not None:
            await self._checkpoint()

    @property
    def log(self) -> logging.LoggerAdapter:
        """A logger whose lines start with the kernel id."""
        name = f"eg.{self.resource_manager}" if self.resource_manager else "eg"
        return KernelLog(logging.getLogger(name), {"kernel_id": self.kernel_id})

    def to_json(self) -> dict[str, Any]:
        """The persistable part of the context (no handles)."""
        info = dict(self.connection_info)
        if isinstance(info.get("key"), bytes):
            info["key"] = info["key"].decode()
        return {
            "kernel_id": self.kernel_id,
            "kernel_name": self.kernel_name,
            "resource_manager": self.resource_manager,
            "spec": self.spec,
            "config": self.config,
            "env": self.env,
            "user": self.user,
            "user_from_request": self.user_from_request,
            "owner": self.owner,
            "groups": sorted(self.groups),
            "cwd": self.cwd,
            "launch_timeout": self.launch_timeout,
            "connection_info": info,
            "state": self.state,
        }

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> "KernelContext":
        """Rebuild a context saved by :meth:`to_json`."""
        fields = {k: v for k, v in data.items() if k in cls.__dataclass_fields__ and k not in ("handles", "_checkpoint", "deadline")}
        fields["groups"] = frozenset(fields.get("groups") or ())
        return cls(**fields)


def may_see(viewer: str | None, owner: str) -> bool:
    """Whether a request acting as ``viewer`` may see and use a kernel (or session) of
    ``owner``: ``viewer`` None (an admin, the service token, or a gateway without per-user
    tokens) sees all; a user sees what they own."""
    return viewer is None or viewer == owner

