"""Kernels as Docker Swarm services (Enterprise Gateway's DockerSwarmProcessProxy): one
replicated service with one task and no restarts per kernel.

The same operations as :mod:`eg_docker._containers`, on the service and its task. Swarm tasks
have no wait endpoint, so a task's end is seen by reading its state every
``task_poll_interval`` seconds while launching; the launch itself waits on the launcher's
callback, not on this. Running kernels are watched together: one task listing per engine and
second for all of them (:class:`eg_core.poller.StatusPoller`).
"""

from __future__ import annotations

import asyncio
import time
from typing import Any

from eg_core import BadRequest, KernelContext, LaunchFailed
from eg_core.poller import StatusPoller

from ._client import DockerClient, DockerError, client_for
from ._command import SECRET_FILE
from ._settings import KernelContainer

ALIVE = {"new", "allocated", "pending", "assigned", "accepted", "preparing", "ready", "starting", "running"}


def client(kernel: KernelContext) -> DockerClient:
    return client_for(kernel.state.get("docker_host"))


def service_spec(kc: KernelContainer, cmd: list[str] | None, env: list[str], secret: dict | None = None) -> dict[str, Any]:
    """The ``POST /services/create`` body; ``secret`` (``{"ID", "Name"}``) is the launch key's
    Docker secret, mounted at :data:`SECRET_FILE` for the container's user only."""
    container: dict[str, Any] = {
        "Image": kc.image,
        "Env": env,
        "Labels": kc.labels,
        "User": f"{kc.uid}:{kc.gid}",
        "Groups": [str(kc.gid)] + (["100"] if kc.gid != 100 else []),
        "Mounts": kc.mounts,
        "Init": kc.init,
        "StopSignal": "SIGTERM",
    }
    if secret:
        container["Secrets"] = [{
            "SecretID": secret["ID"], "SecretName": secret["Name"],
            "File": {"Name": SECRET_FILE.rsplit("/", 1)[1], "UID": str(kc.uid), "GID": str(kc.gid), "Mode": 0o400},
        }]
    if cmd is not None:
        container["Args"] = cmd  # keeps the image's entrypoint, replaces its command
    if kc.working_dir:
        container["Dir"] = kc.working_dir
    limits: dict[str, Any] = {}
    if kc.cpus:
        limits["NanoCPUs"] = int(kc.cpus * 1e9)
    if kc.memory:
        limits["MemoryBytes"] = kc.memory
    return {
        "Name": kc.name[:63],
        "Labels": kc.labels,
        "TaskTemplate": {
            "ContainerSpec": container,
            "Resources": {"Limits": limits},
            "RestartPolicy": {"Condition": "none", "MaxAttempts": 0},
            "Networks": [{"Target": kc.network}],
        },
        "Mode": {"Replicated": {"Replicas": 1}},
        "EndpointSpec": {"Mode": "dnsrr"},
    }


async def check_swarm(docker: DockerClient) -> None:
    try:
        info = await docker.info()
    except DockerError as exc:
        raise LaunchFailed("launch_process", f"cannot reach the Docker engine: {exc}") from exc
    swarm = info.get("Swarm") or {}
    if swarm.get("LocalNodeState") != "active" or not swarm.get("ControlAvailable"):
        raise LaunchFailed(
            "launch_process",
            f"the Docker engine is not a Swarm manager (swarm state {swarm.get('LocalNodeState')!r}); "
            "run 'docker swarm init' or use mode 'container'",
        )


async def create_and_start(kernel: KernelContext, kc: KernelContainer, cmd: list[str] | None, env: list[str],
                           launch_key: str | None = None) -> None:
    """Create the kernel's service. The launch key goes into a Docker secret made for it (its
    id in ``kernel.state["secret_id"]``, removed with the service): the service's spec names
    the secret, never its value."""
    docker = client(kernel)
    await check_swarm(docker)
    secret = None
    if launch_key:
        await _remove_secret(kernel)  # a relaunch's earlier one
        name = f"eg-key-{kernel.kernel_id}-{int(time.time() * 1000)}"
        try:
            kernel.state["secret_id"] = await docker.secret_create(name, launch_key.encode("ascii"), kc.labels)
        except DockerError as exc:
            raise LaunchFailed("launch_process", f"cannot create the launch key's Docker secret: {exc}") from exc
        secret = {"ID": kernel.state["secret_id"], "Name": name}
    spec = service_spec(kc, cmd, env, secret)
    try:
        service_id = await docker.service_create(spec)
    except DockerError as exc:
        if exc.status == 409:  # this kernel's service from an earlier launch
            old = await docker.service_inspect(kc.name)
            if old and (old.get("Spec", {}).get("Labels") or {}).get("kernel_id") == kernel.kernel_id:
                await docker.service_remove(old["ID"])
                await _gone(docker, old["ID"])
                service_id = await docker.service_create(spec)
            else:
                raise LaunchFailed("launch_process", f"a service named {kc.name} exists and belongs to no kernel of this gateway") from exc
        elif exc.status == 400:
            raise BadRequest(f"the Docker engine refused the service settings: {exc.message}") from exc
        else:
            raise LaunchFailed("launch_process", f"creating the Swarm service failed: {exc}") from exc
    kernel.state["service_id"] = service_id


async def _gone(docker: DockerClient, service_id: str, timeout: float = 10.0) -> None:
    """Wait until a removed service's tasks are gone (its name is free again)."""
    loop = asyncio.get_running_loop()
    end = loop.time() + timeout
    while loop.time() < end and await docker.service_tasks(service_id):
        await asyncio.sleep(0.1)


async def current_task(kernel: KernelContext) -> dict | None:
    service_id = kernel.state.get("service_id")
    if not service_id:
        return None
    tasks = await client(kernel).service_tasks(service_id)
    if not tasks:
        return None
    return _latest(tasks)


def _latest(tasks: list[dict]) -> dict:
    return max(tasks, key=lambda t: (t.get("Version", {}).get("Index", 0), t.get("CreatedAt", "")))


def _tasks_poller(kernel: KernelContext) -> StatusPoller:
    """The engine's poller of running kernels' tasks: ``{service_id: its latest task}``."""
    docker_host = kernel.state.get("docker_host") or ""

    async def latest_tasks(service_ids: list[str]) -> dict[str, dict]:
        by_service: dict[str, list[dict]] = {}
        for task in await client_for(docker_host or None).service_tasks(*service_ids):
            by_service.setdefault(task.get("ServiceID", ""), []).append(task)
        return {sid: _latest(tasks) for sid, tasks in by_service.items()}

    return StatusPoller.shared(docker_host, latest_tasks, interval=1.0, name=f"docker swarm tasks at {docker_host}")


def _task_status(task: dict | None) -> tuple[str, int | None, str]:
    if task is None:
        return "pending", None, ""
    status = task.get("Status") or {}
    code = (status.get("ContainerStatus") or {}).get("ExitCode")
    return str(status.get("State", "")), code, str(status.get("Err") or "")


async def exited(kernel: KernelContext, interval: float | None = None) -> str:
    """Complete when the service's task has ended; the text says how. Checks the task every
    ``task_poll_interval`` seconds while launching (``interval`` overrides it)."""
    interval = interval or float(kernel.state.get("task_poll_interval") or 0.25)
    if not kernel.state.get("service_id"):
        return "no service was created"
    while True:
        task = await current_task(kernel)
        if task is None and await client(kernel).service_inspect(kernel.state["service_id"]) is None:
            return f"service {kernel.state.get('name')} was removed"
        state, code, err = _task_status(task)
        if state and state not in ALIVE:
            text = f"service {kernel.state.get('name')} task {state}"
            if code is not None:
                text += f" with status {code}"
            return text + (f": {err}" if err else "")
        await asyncio.sleep(interval)


async def poll(kernel: KernelContext) -> int | None:
    service_id = kernel.state.get("service_id")
    if not service_id or await client(kernel).service_inspect(service_id) is None:
        return 0
    state, code, _ = _task_status(await current_task(kernel))
    if state in ALIVE:
        return None
    return int(code or 0)


async def wait(kernel: KernelContext) -> int:
    """Wait for a running kernel's task to end, or its service to go (checked every second
    with the engine's other kernels: tasks have no wait endpoint)."""
    service_id = kernel.state.get("service_id")
    if not service_id:
        return 0
    task = await _tasks_poller(kernel).wait_until(service_id, lambda t: t is None or _task_status(t)[0] not in ALIVE)
    return int(_task_status(task)[1] or 0) if task is not None else 0


async def address(kernel: KernelContext, kc: KernelContainer) -> str | None:
    """Where the gateway dials the task: its overlay address, or its node's for host networking."""
    task = await current_task(kernel)
    if not task:
        return None
    if kc.network != "host":
        for attachment in task.get("NetworksAttachments") or []:
            if (attachment.get("Network") or {}).get("Spec", {}).get("Name") == kc.network:
                for addr in attachment.get("Addresses") or []:
                    return addr.split("/")[0]
        return None
    node = await client(kernel).node_inspect(task["NodeID"]) if task.get("NodeID") else None
    addr = ((node or {}).get("Status") or {}).get("Addr")
    return addr if addr and addr != "0.0.0.0" else None


async def signal(kernel: KernelContext, signame: str) -> None:
    """Services cannot be signalled through the API: SIGKILL/SIGTERM remove the service."""
    if signame in ("SIGKILL", "SIGTERM"):
        await kill(kernel)


async def kill(kernel: KernelContext) -> None:
    service_id = kernel.state.get("service_id")
    if service_id:
        await client(kernel).service_remove(service_id)


async def remove(kernel: KernelContext) -> None:
    service_id = kernel.state.pop("service_id", None)
    if service_id:
        docker = client(kernel)
        await docker.service_remove(service_id)
        await _gone(docker, service_id)
    await _remove_secret(kernel)


async def _remove_secret(kernel: KernelContext) -> None:
    """Remove the launch key's secret (once no service uses it)."""
    secret_id = kernel.state.pop("secret_id", None)
    if secret_id:
        await client(kernel).secret_remove(secret_id)


async def describe(kernel: KernelContext) -> str | None:
    service_id = kernel.state.get("service_id")
    if not service_id:
        return None
    docker = client(kernel)
    if await docker.service_inspect(service_id) is None:
        return f"service {kernel.state.get('name')} no longer exists"
    state, code, err = _task_status(await current_task(kernel))
    head = f"service {kernel.state.get('name')} task is {state or 'not scheduled'}"
    if code is not None and state not in ALIVE:
        head += f" with status {code}"
    if err:
        head += f" ({err})"
    lines = int(kernel.state.get("log_tail_lines") or 25)
    logs = (await docker.service_logs(service_id, lines)).strip()
    return f"{head}; its last log lines:\n{logs}" if logs else f"{head}; it logged nothing"


async def log_tail(kernel: KernelContext, lines: int) -> list[str] | None:
    """The service's last ``lines`` log lines, None without a service."""
    service_id = kernel.state.get("service_id")
    if not service_id:
        return None
    return (await client(kernel).service_logs(service_id, lines)).splitlines() if lines else []


async def reattach(kernel: KernelContext) -> bool:
    """After a gateway restart: whether the saved service still exists and is this kernel's. One
    whose id a crashed launch never recorded is found by its name (and its id recorded)."""
    service_id = kernel.state.get("service_id") or kernel.state.get("name")
    if not service_id:
        return False
    info = await client(kernel).service_inspect(service_id)
    if not info or (info.get("Spec", {}).get("Labels") or {}).get("kernel_id") != kernel.kernel_id:
        return False
    kernel.state["service_id"] = info["ID"]
    return True
