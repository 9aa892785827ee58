"""The Docker Engine API from the event loop, through the ``docker`` package.

The ``docker`` package (and ``requests`` under it) is imported by the first client: a gateway
that runs no Docker kernel, or has no engine, never loads it. It is synchronous: each call runs
in a thread pool of this client's own, so nothing blocks the event loop and a slow engine call
never waits behind another plugin's work.
Containers ending are learnt from one stream of the engine's events for all kernel containers
(an :class:`eg_core.watch.SharedWatch`), not from one ``/containers/{id}/wait`` per kernel. One
client per engine address and event loop is shared by every kernel (:func:`client_for`); it holds
no per-kernel state.
"""

from __future__ import annotations

import asyncio
import functools
import os
import time
from concurrent.futures import ThreadPoolExecutor
from typing import Any, AsyncIterator, Callable

from eg_core.watch import Change, SharedWatch, Snapshot, iterate_in_thread

DEFAULT_HOST = "unix:///var/run/docker.sock"
API_VERSION = "1.41"  # Docker 20.10; newer engines serve it too
REQUEST_TIMEOUT = 30
THREADS = 16
KERNEL_LABEL = "component=kernel"  # what every kernel container carries (see _settings)


class DockerError(Exception):
    """The engine answered with an error status (or could not be reached: ``status`` 0)."""

    def __init__(self, status: int, message: str, *, method: str = "", path: str = ""):
        super().__init__(message)
        self.status = status
        self.message = message
        self.method = method
        self.path = path

    def __str__(self) -> str:
        return self.message if not self.status else f"{self.message} (Docker API {self.method}: {self.status})"


def _error(exc: Exception, what: str, docker_host: str) -> DockerError:
    import docker.errors

    if isinstance(exc, docker.errors.APIError):
        status = exc.status_code or 500
        return DockerError(status, str(exc.explanation or exc).strip(), method=what)
    return DockerError(0, f"cannot reach the Docker engine at {docker_host}: {exc or type(exc).__name__}")


def _engine_errors() -> tuple[type[Exception], ...]:
    import docker.errors
    import requests.exceptions

    return (docker.errors.APIError, docker.errors.DockerException, requests.exceptions.RequestException, OSError)


def engine_absent(docker_host: str | None) -> str | None:
    """Why there is plainly no engine at ``docker_host`` (as :class:`DockerClient` resolves it):
    its unix socket file does not exist. None when there may be one (any other address is
    only known by asking). Answered without importing the ``docker`` package."""
    host = docker_host or os.environ.get("DOCKER_HOST") or DEFAULT_HOST
    if host.startswith("unix://") and not os.path.exists("/" + host[len("unix://"):].lstrip("/")):
        return f"no Docker engine at {host}"
    return None


class DockerClient:
    """One Docker engine. Methods raise :class:`DockerError`; "not found" returns None where noted."""

    def __init__(self, docker_host: str | None = None):
        import docker

        self.docker_host = docker_host or os.environ.get("DOCKER_HOST") or DEFAULT_HOST
        self._api = docker.APIClient(base_url=self.docker_host, version=API_VERSION, timeout=REQUEST_TIMEOUT, max_pool_size=THREADS)
        self._executor = ThreadPoolExecutor(max_workers=THREADS, thread_name_prefix="eg-docker-api")
        self._exits: SharedWatch | None = None

    async def aclose(self) -> None:
        if self._exits is not None:
            await self._exits.close()
        self._executor.shutdown(wait=False)
        self._api.close()

    # -- plumbing ------------------------------------------------------------------------------

    async def _call(self, what: str, fn: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
        loop = asyncio.get_running_loop()
        try:
            return await loop.run_in_executor(self._executor, functools.partial(fn, *args, **kwargs))
        except _engine_errors() as exc:
            raise _error(exc, what, self.docker_host) from exc

    async def _call_or_none(self, what: str, fn: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
        try:
            return await self._call(what, fn, *args, **kwargs)
        except DockerError as exc:
            if exc.status == 404:
                return None
            raise

    # -- engine --------------------------------------------------------------------------------

    async def version(self) -> dict:
        return await self._call("version", self._api.version)

    async def info(self) -> dict:
        return await self._call("info", self._api.info)

    # -- images and networks ---------------------------------------------------------------------

    async def image_inspect(self, name: str) -> dict | None:
        """The image, or None when the engine does not have it."""
        return await self._call_or_none("image inspect", self._api.inspect_image, name)

    async def image_pull(self, name: str, timeout: float, progress: Callable[[dict], None] | None = None) -> None:
        """Pull ``name`` (``repo[:tag]`` or ``repo@digest``); raises DockerError with the registry's
        error. ``progress`` gets each of the engine's progress events (on the event loop)."""
        import docker.errors

        repo, tag = split_image(name)
        loop = asyncio.get_running_loop()

        def pull() -> None:
            for event in self._api.pull(repo, tag=tag or None, stream=True, decode=True):
                if event.get("error"):
                    raise docker.errors.APIError(event["error"], explanation=event["error"])
                if progress is not None:
                    loop.call_soon_threadsafe(progress, event)

        try:
            await asyncio.wait_for(self._call("image pull", pull), timeout)
        except asyncio.TimeoutError:
            raise DockerError(0, f"pulling {name} took longer than {timeout:g}s") from None

    async def network_inspect(self, name: str) -> dict | None:
        return await self._call_or_none("network inspect", self._api.inspect_network, name)

    # -- containers ------------------------------------------------------------------------------

    async def container_create(self, name: str, config: dict) -> str:
        data = await self._call("container create", self._api.create_container_from_config, config, name=name)
        return data["Id"]

    async def container_put_archive(self, container_id: str, path: str, data: bytes) -> None:
        """Extract the tar ``data`` into directory ``path`` of a (created) container."""
        await self._call("container archive", self._api.put_archive, container_id, path, data)

    async def container_start(self, container_id: str) -> None:
        await self._call("container start", self._api.start, container_id)

    async def container_inspect(self, container_id: str) -> dict | None:
        return await self._call_or_none("container inspect", self._api.inspect_container, container_id)

    async def container_wait(self, container_id: str) -> int:
        """Wait until the container stops, on the engine's shared event stream; returns its exit
        code. A container that no longer exists counts as ended with status 0."""
        exits = self.container_exits()
        await exits.synced()
        if exits.get(container_id) is None:  # not seen on the stream yet: ask the engine once
            info = await self.container_inspect(container_id)
            if info is None:
                return 0
            if not (info.get("State") or {}).get("Running"):
                return int((info.get("State") or {}).get("ExitCode") or 0)
        seen = False

        def ended(state: dict | None) -> int | None:
            nonlocal seen
            if state is None:  # destroyed, or not on the stream yet (its start event is coming)
                return 0 if seen else None
            seen = True
            return None if state.get("running") else int(state.get("exit_code") or 0)

        return await exits.wait(container_id, ended)

    async def container_kill(self, container_id: str, signal: str = "SIGKILL") -> None:
        """Signal the container's main process; a container gone or not running is fine."""
        try:
            await self._call("container kill", self._api.kill, container_id, signal=signal)
        except DockerError as exc:
            if exc.status not in (404, 409):
                raise

    async def container_remove(self, container_id: str) -> bool:
        """Remove the container (killing it if it runs) and its anonymous volumes; False if already gone."""
        try:
            await self._call("container remove", self._api.remove_container, container_id, v=True, force=True)
        except DockerError as exc:
            if exc.status == 404:
                return False
            if exc.status == 409 and "already in progress" in exc.message:
                return True
            raise
        return True

    async def container_logs(self, container_id: str, tail: int) -> str:
        try:
            data = await self._call("container logs", self._api.logs, container_id, stdout=True, stderr=True, tail=tail)
        except DockerError as exc:
            if exc.status == 404:
                return ""
            raise
        return data.decode("utf-8", errors="replace") if isinstance(data, bytes) else str(data)

    async def containers(self, labels: dict[str, str | None], all: bool = True) -> list[dict]:
        """Containers carrying every label (``None`` value: the label with any value)."""
        filters = {"label": [k if v is None else f"{k}={v}" for k, v in labels.items()]}
        return await self._call("container list", self._api.containers, all=all, filters=filters)

    def container_exits(self) -> SharedWatch:
        """The engine's kernel containers, by id, as ``{"running": bool, "exit_code": int}``:
        one listing, then one event stream (``start``, ``die``, ``destroy``) for all of them."""
        if self._exits is None:
            self._exits = SharedWatch(f"kernel containers on {self.docker_host}", self._container_feed)
        return self._exits

    async def _container_feed(self) -> AsyncIterator[Snapshot | Change]:
        since = int(time.time()) - 1  # events from just before the listing on: none missed
        listing = await self._call("container list", self._api.containers, all=True, filters={"label": [KERNEL_LABEL]})
        current = {}
        for c in listing:
            state = {"running": c.get("State") in ("running", "created", "restarting", "paused")}
            if not state["running"]:
                info = await self._call_or_none("container inspect", self._api.inspect_container, c["Id"])
                state["exit_code"] = int(((info or {}).get("State") or {}).get("ExitCode") or 0)
            current[c["Id"]] = state
        yield Snapshot(current)
        filters = {"type": ["container"], "label": [KERNEL_LABEL], "event": ["start", "die", "destroy"]}
        holder: dict[str, Any] = {}

        def open_stream():
            holder["stream"] = self._api.events(since=since, filters=filters, decode=True)
            return holder["stream"]

        def close() -> None:
            if "stream" in holder:
                holder["stream"].close()

        async for event in iterate_in_thread(open_stream, name="eg-docker-events", close=close):
            container_id = event.get("id") or (event.get("Actor") or {}).get("ID")
            action = event.get("Action") or event.get("status")
            if not container_id:
                continue
            if action == "destroy":
                yield Change(container_id, None)
            elif action == "die":
                code = (event.get("Actor") or {}).get("Attributes", {}).get("exitCode", "0")
                yield Change(container_id, {"running": False, "exit_code": int(code or 0)})
            elif action == "start":
                yield Change(container_id, {"running": True})

    # -- swarm -----------------------------------------------------------------------------------

    async def service_create(self, spec: dict) -> str:
        data = await self._call(
            "service create", self._api.create_service, spec["TaskTemplate"], name=spec.get("Name"),
            labels=spec.get("Labels"), mode=spec.get("Mode"), endpoint_spec=spec.get("EndpointSpec"),
        )
        return data["ID"]

    async def service_inspect(self, service_id: str) -> dict | None:
        return await self._call_or_none("service inspect", self._api.inspect_service, service_id)

    async def service_remove(self, service_id: str) -> bool:
        try:
            await self._call("service remove", self._api.remove_service, service_id)
        except DockerError as exc:
            if exc.status == 404:
                return False
            raise
        return True

    async def secret_create(self, name: str, data: bytes, labels: dict[str, str]) -> str:
        """A Swarm secret (only the tasks it is given to read its value); returns its id."""
        return (await self._call("secret create", self._api.create_secret, name, data, labels=labels))["ID"]

    async def secrets(self, labels: dict[str, str | None]) -> list[dict]:
        filters = {"label": [k if v is None else f"{k}={v}" for k, v in labels.items()]}
        return await self._call("secret list", self._api.secrets, filters=filters)

    async def secret_remove(self, secret_id: str) -> bool:
        try:
            await self._call("secret remove", self._api.remove_secret, secret_id)
        except DockerError as exc:
            if exc.status == 404:
                return False
            raise
        return True

    async def services(self, labels: dict[str, str | None]) -> list[dict]:
        filters = {"label": [k if v is None else f"{k}={v}" for k, v in labels.items()]}
        return await self._call("service list", self._api.services, filters=filters)

    async def service_tasks(self, *service_ids: str) -> list[dict]:
        """The tasks of the services (one request); none when no service exists (any more)."""
        try:
            return await self._call("task list", self._api.tasks, filters={"service": list(service_ids)})
        except DockerError as exc:
            if exc.status == 404:
                return []
            raise

    async def service_logs(self, service_id: str, tail: int) -> str:
        try:
            data = await self._call("service logs", self._api.service_logs, service_id, stdout=True, stderr=True, tail=tail, is_tty=False)
        except DockerError as exc:
            if exc.status in (404, 503):
                return ""
            raise
        if not isinstance(data, (bytes, str)):
            data = b"".join(data)
        return data.decode("utf-8", errors="replace") if isinstance(data, bytes) else data

    async def node_inspect(self, node_id: str) -> dict | None:
        return await self._call_or_none("node inspect", self._api.inspect_node, node_id)


def split_image(name: str) -> tuple[str, str]:
    """``repo[:tag]`` → (repo, tag or "latest"); a digest stays in the repo part."""
    if "@" in name:
        return name, ""
    slash = name.rfind("/")
    colon = name.rfind(":")
    if colon > slash:
        return name[:colon], name[colon + 1:]
    return name, "latest"


_clients: dict[tuple[int, str], DockerClient] = {}


def client_for(docker_host: str | None) -> DockerClient:
    """The shared client of an engine for the running event loop."""
    host = docker_host or os.environ.get("DOCKER_HOST") or DEFAULT_HOST
    key = (id(asyncio.get_running_loop()), host)
    client = _clients.get(key)
    if client is None:
        client = _clients[key] = DockerClient(host)
    return client


async def close_clients() -> None:
    """Close every shared client of the running loop (at gateway shutdown)."""
    loop_id = id(asyncio.get_running_loop())
    for key in [k for k in _clients if k[0] == loop_id]:
        await _clients.pop(key).aclose()


__all__ = ["DockerClient", "DockerError", "client_for", "close_clients", "engine_absent", "split_image"]
