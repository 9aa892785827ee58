"""The command and environment of a kernel container (Docker, Kubernetes, any image-based
resource manager).

Two kinds of kernelspec reach a container resource manager:

- eg's (``python_docker``, ``python_kubernetes``): ``argv`` is the command run *inside* the
  container (the launcher, with ``{response_address}``, ``{port_range}``, ``{kernel_id}``,
  ``{kernel_bind_ip}`` filled);
- Enterprise Gateway's (``DockerProcessProxy``, ``KubernetesProcessProxy``...): ``argv`` runs a
  launcher script on the gateway host (``launch_docker.py``, ``launch_kubernetes.py``) that is not
  needed here. The container runs its image's default command instead (EG images start
  ``bootstrap-kernel.sh``), with the launch parameters in the environment as those scripts put
  them (``RESPONSE_ADDRESS``, ``PUBLIC_KEY``, ``PORT_RANGE``, ``KERNEL_ID``...).

The per-kernel launch key is never put on a command line nor in the container's environment
(the engine shows both): the resource manager delivers it as a file the environment names
(``EG_LAUNCH_KEY_FILE``, see :func:`eg_core.remote.launcher_env`) or from a secret store.
"""

from __future__ import annotations

import json
import os
import re
import uuid
from collections.abc import Callable, Iterable
from dataclasses import replace
from typing import Any

from . import argv, remote
from ._runtime.context import KernelContext
from ._runtime.errors import BadRequest, LaunchRefused

MAX_ID = 2**32 - 1
EG_CONTAINER_LAUNCHERS = ("launch_docker.py", "launch_kubernetes.py", "launch_custom_resource.py")
_PORT_RANGE_FLAGS = ("--port-range", "--RemoteProcessProxy.port-range")


def uses_image_command(kernel: KernelContext, cmd: list[str]) -> bool:
    """True for Enterprise Gateway kernelspecs (their argv starts the container from the
    gateway host), for ``config.use_image_command``, and for an empty argv."""
    if kernel.config.get("use_image_command"):
        return True
    return not cmd or any(os.path.basename(arg) in EG_CONTAINER_LAUNCHERS for arg in cmd[:3])


def argument(cmd: list[str], flags: tuple[str, ...]) -> str | None:
    """The value of the first of ``flags`` in ``cmd`` (``--flag value`` or ``--flag=value``)."""
    for i, arg in enumerate(cmd):
        for flag in flags:
            if arg == flag and i + 1 < len(cmd):
                return cmd[i + 1]
            if arg.startswith(flag + "="):
                return arg.split("=", 1)[1]
    return None


def container_command(kernel: KernelContext, cmd: list[str], bind_ip: str) -> list[str] | None:
    """The container's command (None: the image's default), with the templates the core could
    not fill before the response listener ran filled now (and ``{kernel_bind_ip}``)."""
    if uses_image_command(kernel, cmd):
        return None
    values = {"kernel_bind_ip": bind_ip, "kernel_id": kernel.kernel_id, **remote.substitutions()}
    return argv.fill(cmd, values)


def container_env(kernel: KernelContext, cmd: list[str], bind_ip: str, extra: dict[str, str]) -> dict[str, str]:
    """The container's environment: the kernel's (kernelspec env, allowed request values,
    ``KERNEL_*`` set by the core), ``extra`` (what the resource manager's EG launcher adds:
    ``KERNEL_IMAGE``, ``KERNEL_UID``...), and for image-command kernelspecs the launch
    parameters of Enterprise Gateway's ``bootstrap-kernel.sh`` contract."""
    env = dict(kernel.env)
    env.update(extra)
    if uses_image_command(kernel, cmd):
        substitutions = remote.substitutions()
        env.update(
            RESPONSE_ADDRESS=substitutions.get("response_address", ""),
            PUBLIC_KEY=substitutions.get("public_key", ""),
            PORT_RANGE=argument(cmd, _PORT_RANGE_FLAGS) or str(kernel.config.get("port_range") or "0..0"),
            KERNEL_ID=kernel.kernel_id,
            KERNEL_IP=bind_ip,
            KERNEL_SPARK_CONTEXT_INIT_MODE=env.get("KERNEL_SPARK_CONTEXT_INIT_MODE", "none"),
        )
        env.setdefault("KERNEL_LANGUAGE", str(kernel.spec.get("language", "python")).lower())
    return env


def kernel_id_number(kind: str, value: Any, prohibited: Iterable[int | str], setting: str, *, optional: bool = True) -> int | None:
    """Enterprise Gateway's UID/GID rule for a container's ``KERNEL_UID``/``KERNEL_GID``:
    called while a resource manager resolves a launch's settings (``eg_launch_process``).

    ``value`` (from the request, kernelspec or gateway default) must be an integer
    0..2^32-1 that is not in ``prohibited``; ``kind`` ("UID", "GID") and ``setting`` (e.g.
    ``EG_PROHIBITED_UIDS``) name it in the error. Returns the number, or None for an empty
    value (the image's own user) when ``optional``. Raises :class:`eg_core.LaunchRefused` (403)
    otherwise.

    Prohibited ids are integers (``List(Integer())`` settings): ``"00"`` and ``0`` are the
    same uid. Entries given as text (a kernelspec's JSON) are read as integers; an entry that
    is no integer matches no id.
    """
    if value in (None, "") and optional:
        return None
    text = str(value).strip()
    if not re.fullmatch(r"\+?\d{1,10}", text) or int(text) > MAX_ID:
        raise LaunchRefused(f"Kernel's {kind} value of {str(value)[:20]!r} is not an integer between 0 and {MAX_ID}")
    number = int(text)
    if number in {int(str(p).strip()) for p in prohibited if re.fullmatch(r"\+?\d{1,10}", str(p).strip())}:
        raise LaunchRefused(f"Kernel's {kind} value of '{number}' has been denied via {setting}")
    return number


def working_dir(value: Any) -> str | None:
    """A container's working directory (``KERNEL_WORKING_DIR`` or ``working_dir``), checked while
    a launch's settings are resolved: None for an empty value (the image's), else an absolute
    path. Raises :class:`eg_core.BadRequest` (400) for anything else."""
    if value in (None, ""):
        return None
    path = str(value)
    if not path.startswith("/") or "\0" in path or len(path) > 4096:
        raise BadRequest(f"working dir (KERNEL_WORKING_DIR, working_dir) {path[:80]!r} must be an absolute path inside the container")
    return path


def pool_differences(resolve: Callable[[KernelContext], Any], pooled: KernelContext, request: KernelContext,
                     settings: Iterable[str]) -> tuple[Any, Any, list[str]]:
    """For a container resource manager's ``eg_pool_fit``: ``resolve`` (the plugin's checked
    settings of a kernel) of the request and of the waiting kernel ``pooled``, each on a copy,
    and the names among ``settings`` (attributes of what ``resolve`` returns, applied only when
    a container or pod is created) whose values differ. Raises what ``resolve`` raises: an
    :class:`eg_core.EGError` is a miss, whose launch then answers the request with it."""
    wanted = resolve(replace(request, env=dict(request.env)))
    have = resolve(replace(pooled, env=dict(pooled.env)))
    return wanted, have, [name for name in settings if getattr(wanted, name) != getattr(have, name)]


async def kernel_answers(connection_info: dict[str, Any], ip: str | None = None) -> dict[str, Any]:
    """Wait until the kernel at ``connection_info`` (dialled on ``ip`` when given) answers a
    ``kernel_info_request`` on its shell port, and return the reply's content. Bounded by the
    caller (cancel it or wrap it in a timeout); a kernel not listening yet is dialled again
    until it is (ZeroMQ reconnects), so no polling.

    For a resource manager whose kernel runs on the gateway's connection file (no launcher
    calling back) and whose backend reports the kernel running late (a pod's Running status
    trails the kernel by seconds when the kubelet writes many statuses): its
    ``eg_confirm_startup`` races this with the backend's word and returns at the first.
    """
    import zmq
    import zmq.asyncio

    from ._runtime.channels import DELIM, Signer

    key = connection_info.get("key") or b""
    signer = Signer(key.encode() if isinstance(key, str) else key, connection_info.get("signature_scheme") or "hmac-sha256")
    msg_id = uuid.uuid4().hex
    header = {"msg_id": msg_id, "msg_type": "kernel_info_request", "username": "eg", "session": f"eg-probe-{msg_id}",
              "date": "1970-01-01T00:00:00+00:00", "version": "5.3"}
    sock = zmq.asyncio.Context.instance().socket(zmq.DEALER)
    try:
        sock.connect(f"{connection_info.get('transport') or 'tcp'}://{ip or connection_info['ip']}:{connection_info['shell_port']}")
        await sock.send_multipart(signer.frames([json.dumps(header).encode(), b"{}", b"{}", b"{}"]))
        while True:
            frames = await sock.recv_multipart()
            if DELIM not in frames:
                continue
            parts = frames[frames.index(DELIM) + 2:]
            if len(parts) >= 4 and json.loads(parts[1] or b"{}").get("msg_id") == msg_id:
                return json.loads(parts[3])
    finally:
        sock.close(linger=0)


__all__ = ["kernel_answers", "pool_differences", "kernel_id_number", "working_dir", "MAX_ID", "uses_image_command", "argument", "container_command", "container_env", "EG_CONTAINER_LAUNCHERS"]
