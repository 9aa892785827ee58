"""Kernels as plain Docker containers: create, start, watch, signal, remove, explain.

Every function takes the kernel's context; what later calls need (container id, name, engine,
address) is in ``kernel.state``, so a gateway that restarts can adopt the container from it.
"""

from __future__ import annotations

import io
import tarfile
import time
from typing import Any

from eg_core import BadRequest, KernelContext, LaunchFailed

from ._client import DockerClient, DockerError, client_for
from ._command import KEY_DIR, KEY_NAME
from ._settings import KernelContainer


def client(kernel: KernelContext) -> DockerClient:
    return client_for(kernel.state.get("docker_host"))


# -- before anything is created ------------------------------------------------------------------


async def check_network(docker: DockerClient, kc: KernelContainer) -> None:
    """A named network must exist (and be swarm-scoped for services): 400 before creating anything."""
    if kc.network == "host":
        return
    try:
        network = await docker.network_inspect(kc.network)
    except DockerError as exc:
        raise LaunchFailed("launch_process", f"cannot check network {kc.network!r}: {exc}") from exc
    if network is None:
        raise BadRequest(f"network {kc.network!r} does not exist on the Docker engine at {kc.docker_host}")
    if kc.mode == "swarm" and network.get("Scope") != "swarm":
        raise BadRequest(f"network {kc.network!r} is not a swarm network; a Swarm service can use 'host' or an overlay network")


class _PullProgress:
    """Reports an image pull as it goes (``kernel.progress``): at the start, then every 5 s."""

    INTERVAL = 5.0

    def __init__(self, kernel: KernelContext, image: str):
        self.kernel, self.image = kernel, image
        self.layers: dict[str, tuple[str, int]] = {}
        self.next_report = time.monotonic() + self.INTERVAL
        kernel.progress("pulling", image=image)

    def __call__(self, event: dict) -> None:
        layer = event.get("id")
        if layer and event.get("status"):
            self.layers[layer] = (event["status"], int((event.get("progressDetail") or {}).get("current") or 0))
        if time.monotonic() >= self.next_report:
            self.next_report = time.monotonic() + self.INTERVAL
            done = sum(1 for status, _ in self.layers.values() if status in ("Pull complete", "Already exists"))
            self.kernel.progress(
                "pulling", image=self.image, layers_done=f"{done}/{len(self.layers)}",
                mb_in_progress=round(sum(current for _, current in self.layers.values()) / 1e6, 1),
            )


async def ensure_image(docker: DockerClient, kc: KernelContainer, timeout: float, kernel: KernelContext | None = None) -> None:
    """Have the image on the engine, per the pull policy; fails the launch in phase ``image_pull``."""
    try:
        present = await docker.image_inspect(kc.image) is not None
    except DockerError as exc:
        raise LaunchFailed("image_pull", f"cannot inspect image {kc.image!r}: {exc}") from exc
    if present and kc.pull_policy != "always":
        return
    if not present and kc.pull_policy == "never":
        raise LaunchFailed("image_pull", f"image {kc.image!r} is not on the Docker engine and the pull policy is 'never'")
    try:
        await docker.image_pull(kc.image, timeout, _PullProgress(kernel, kc.image) if kernel is not None else None)
    except DockerError as exc:
        if present:  # 'always', but the registry is unreachable: the local copy will do
            return
        raise LaunchFailed(
            "image_pull", f"image {kc.image!r} is not on the Docker engine and pulling it failed: {exc.message}"
        ) from exc


# -- launch ----------------------------------------------------------------------------------


def supplementary_groups(kc: KernelContainer) -> list[str]:
    """Enterprise Gateway's groups: the kernel's GID and 100 (``users``)."""
    return [str(kc.gid)] + (["100"] if kc.gid != 100 else [])


def container_config(kc: KernelContainer, cmd: list[str] | None, env: list[str]) -> dict[str, Any]:
    """The ``POST /containers/create`` body."""
    host_config: dict[str, Any] = {
        "NetworkMode": kc.network,
        "Init": kc.init,
        "RestartPolicy": {"Name": "no"},
        "AutoRemove": False,
        "Mounts": kc.mounts,
        "GroupAdd": supplementary_groups(kc),
    }
    if kc.cpus:
        host_config["NanoCpus"] = int(kc.cpus * 1e9)
    if kc.memory:
        host_config["Memory"] = kc.memory
        host_config["MemorySwap"] = kc.memory  # no swap beyond the limit
    if kc.gpus:
        host_config["DeviceRequests"] = [kc.gpus]
    config: dict[str, Any] = {
        "Image": kc.image,
        "Env": env,
        "Labels": kc.labels,
        "User": f"{kc.uid}:{kc.gid}",
        "HostConfig": host_config,
        "AttachStdin": False,
        "Tty": False,
        "StopSignal": "SIGTERM",
    }
    if cmd is not None:
        config["Cmd"] = cmd
    if kc.working_dir:
        config["WorkingDir"] = kc.working_dir
    if kc.network != "host":
        config["Hostname"] = kc.name[:63]
        config["NetworkingConfig"] = {"EndpointsConfig": {kc.network: {}}}
    return config


def key_archive(launch_key: str, uid: int, gid: int) -> bytes:
    """A tar holding the launch key as :data:`KEY_NAME`: mode 0400, owned by ``uid:gid``."""
    data = launch_key.encode("ascii")
    member = tarfile.TarInfo(KEY_NAME)
    member.size, member.mode, member.uid, member.gid, member.mtime = len(data), 0o400, uid, gid, int(time.time())
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w") as tar:
        tar.addfile(member, io.BytesIO(data))
    return buffer.getvalue()


async def create_and_start(kernel: KernelContext, kc: KernelContainer, cmd: list[str] | None, env: list[str],
                           launch_key: str | None = None) -> None:
    """Create and start the kernel's container; its id is in ``kernel.state`` before it starts,
    so a failed start is cleaned up. The launch key is copied into the created container
    (:data:`KEY_FILE`) before it starts: it is in nothing ``docker inspect`` shows."""
    docker = client(kernel)
    config = container_config(kc, cmd, env)
    try:
        container_id = await _create(docker, kernel, kc, config)
    except DockerError as exc:
        if exc.status == 400:  # the engine rejected a setting: nothing was created
            raise BadRequest(f"the Docker engine refused the container settings: {exc.message}") from exc
        raise LaunchFailed("launch_process", f"creating the container failed: {exc}") from exc
    kernel.state["container_id"] = container_id
    if launch_key:
        try:
            await docker.container_put_archive(container_id, KEY_DIR, key_archive(launch_key, kc.uid, kc.gid))
        except DockerError as exc:
            raise LaunchFailed("launch_process", f"cannot copy the launch key into container {kc.name} ({KEY_DIR}): {exc.message}") from exc
    try:
        await docker.container_start(container_id)
    except DockerError as exc:
        raise LaunchFailed("launch_process", f"the Docker engine could not start container {kc.name}: {exc.message}") from exc
    if kc.network != "host":
        info = await docker.container_inspect(container_id) or {}
        networks = (info.get("NetworkSettings") or {}).get("Networks") or {}
        address = (networks.get(kc.network) or {}).get("IPAddress")
        if not address:
            raise LaunchFailed("launch_process", f"container {kc.name} has no address on network {kc.network!r}")
        kernel.state["host"] = address


async def _create(docker: DockerClient, kernel: KernelContext, kc: KernelContainer, config: dict) -> str:
    try:
        return await docker.container_create(kc.name, config)
    except DockerError as exc:
        if exc.status != 409:
            raise
    # A container of the same name: this kernel's own, left by an earlier launch. Replace it.
    old = await docker.container_inspect(kc.name)
    if old and (old.get("Config", {}).get("Labels") or {}).get("kernel_id") == kernel.kernel_id:
        await docker.container_remove(old["Id"])
        return await docker.container_create(kc.name, config)
    raise DockerError(409, f"a container named {kc.name} exists and belongs to no kernel of this gateway")


# -- running -----------------------------------------------------------------------------------


async def exited(kernel: KernelContext) -> str:
    """Complete when the container stops; the text says how (for a launch error)."""
    status = await client(kernel).container_wait(kernel.state["container_id"])
    return f"container {kernel.state.get('name')} exited with status {status}"


async def poll(kernel: KernelContext) -> int | None:
    container_id = kernel.state.get("container_id")
    if not container_id:
        return 0
    info = await client(kernel).container_inspect(container_id)
    if info is None:
        return 0
    state = info.get("State") or {}
    if state.get("Running") or state.get("Status") in ("created", "restarting"):
        return None
    return int(state.get("ExitCode") or 0)


async def wait(kernel: KernelContext) -> int:
    """Wait until the container stops (on the engine event stream every kernel shares)."""
    container_id = kernel.state.get("container_id")
    if not container_id:
        return 0
    return await client(kernel).container_wait(container_id)


async def signal(kernel: KernelContext, signame: str) -> None:
    container_id = kernel.state.get("container_id")
    if container_id:
        await client(kernel).container_kill(container_id, signame)


async def kill(kernel: KernelContext) -> None:
    await signal(kernel, "SIGKILL")


async def remove(kernel: KernelContext) -> None:
    container_id = kernel.state.pop("container_id", None)
    if container_id:
        await client(kernel).container_remove(container_id)


async def describe(kernel: KernelContext) -> str | None:
    """How the container ended (status, OOM kill, engine error) and its last log lines."""
    container_id = kernel.state.get("container_id")
    if not container_id:
        return None
    docker = client(kernel)
    info = await docker.container_inspect(container_id)
    if info is None:
        return f"container {kernel.state.get('name')} no longer exists"
    state = info.get("State") or {}
    name = kernel.state.get("name") or info.get("Name", "").lstrip("/")
    if state.get("Running"):
        head = f"container {name} is still running"
    else:
        head = f"container {name} exited with status {state.get('ExitCode')}"
        if state.get("OOMKilled"):
            head += " (killed by the out-of-memory killer: raise the memory limit)"
        if state.get("Error"):
            head += f"; engine error: {state['Error']}"
    lines = int(kernel.state.get("log_tail_lines") or 25)
    logs = (await docker.container_logs(container_id, lines)).strip()
    return f"{head}; its last log lines:\n{logs}" if logs else f"{head}; it logged nothing"


async def log_tail(kernel: KernelContext, lines: int) -> list[str] | None:
    """The container's last ``lines`` log lines (stdout and stderr), None without a container."""
    container_id = kernel.state.get("container_id")
    if not container_id:
        return None
    return (await client(kernel).container_logs(container_id, lines)).splitlines() if lines else []


async def reattach(kernel: KernelContext) -> bool:
    """After a gateway restart: whether the saved container still exists and is this kernel's. One
    whose id a crashed launch never recorded is found by its name (and its id recorded)."""
    container_id = kernel.state.get("container_id") or kernel.state.get("name")
    if not container_id:
        return False
    info = await client(kernel).container_inspect(container_id)
    if not info or (info.get("Config", {}).get("Labels") or {}).get("kernel_id") != kernel.kernel_id:
        return False
    kernel.state["container_id"] = info["Id"]
    return True
