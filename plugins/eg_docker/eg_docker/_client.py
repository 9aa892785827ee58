"""Async access to the Docker Engine API: raw HTTP over the engine's unix socket (or TCP) with httpx.

Only the endpoints eg-docker uses, each a small method; nothing here blocks the event loop.
Long waits use the engine's own blocking endpoints (``POST /containers/{id}/wait``), not
sleep-polling. One client per engine address and event loop is shared by every kernel
(:func:`client_for`); it holds no per-kernel state.
"""

from __future__ import annotations

import asyncio
import json
import os
import struct
from typing import Any, AsyncIterator, Callable
from urllib.parse import quote, urlparse

import httpx

DEFAULT_HOST = "unix:///var/run/docker.sock"
MAX_API_VERSION = (1, 41)  # Docker 20.10; newer engines serve it too
REQUEST_TIMEOUT = 30.0


class DockerError(Exception):
    """The engine answered with an error status (or could not be reached: ``status`` 0)."""

    def __init__(self, status: int, message: str, *, method: str = "", path: str = ""):
        super().__init__(message)
        self.status = status
        self.message = message
        self.method = method
        self.path = path

    def __str__(self) -> str:
        return self.message if not self.status else f"{self.message} (Docker API {self.method} {self.path}: {self.status})"


def _transport_and_base(docker_host: str) -> tuple[httpx.AsyncHTTPTransport, str]:
    url = urlparse(docker_host)
    limits = httpx.Limits(max_connections=None, max_keepalive_connections=32)
    if url.scheme == "unix":
        return httpx.AsyncHTTPTransport(uds=url.path, limits=limits), "http://docker"
    if url.scheme in ("tcp", "http"):
        return httpx.AsyncHTTPTransport(limits=limits), f"http://{url.netloc}"
    if url.scheme == "https":
        return httpx.AsyncHTTPTransport(limits=limits), f"https://{url.netloc}"
    raise ValueError(f"unsupported Docker host {docker_host!r}: use unix:///path or tcp://host:port")


class DockerClient:
    """One Docker engine. Methods raise :class:`DockerError`; "not found" returns None where noted."""

    def __init__(self, docker_host: str | None = None):
        self.docker_host = docker_host or os.environ.get("DOCKER_HOST") or DEFAULT_HOST
        transport, base = _transport_and_base(self.docker_host)
        # The transport has no cap on connections: every running kernel holds one open in its
        # /wait long-poll, and a cap would make the next requests queue behind them.
        self._http = httpx.AsyncClient(transport=transport, base_url=base, timeout=REQUEST_TIMEOUT)
        self._prefix: str | None = None
        self._prefix_lock = asyncio.Lock()

    async def aclose(self) -> None:
        await self._http.aclose()

    # -- plumbing ------------------------------------------------------------------------------

    async def _api_prefix(self) -> str:
        """``/v1.NN``: the engine's API version, capped at the newest we were written for."""
        if self._prefix is None:
            async with self._prefix_lock:
                if self._prefix is None:
                    data = await self._send("GET", "/version", prefix="")
                    major, minor = (int(p) for p in str(data.get("ApiVersion", "1.41")).split(".")[:2])
                    version = min((major, minor), MAX_API_VERSION)
                    self._prefix = f"/v{version[0]}.{version[1]}"
        return self._prefix

    async def _send(
        self, method: str, path: str, *, params: dict | None = None, body: Any = None,
        timeout: float | None = REQUEST_TIMEOUT, prefix: str | None = None, raw: bool = False,
    ) -> Any:
        prefix = await self._api_prefix() if prefix is None else prefix
        try:
            response = await self._http.request(
                method, prefix + path, params=_params(params), json=body,
                timeout=httpx.Timeout(timeout, connect=10.0),
            )
        except httpx.HTTPError as exc:
            raise DockerError(0, f"cannot reach the Docker engine at {self.docker_host}: {exc or type(exc).__name__}") from exc
        if response.status_code >= 400:
            raise DockerError(response.status_code, _error_message(response), method=method, path=path)
        if raw:
            return response.content
        if not response.content:
            return None
        try:
            return response.json()
        except ValueError:
            return response.text

    async def _send_or_none(self, method: str, path: str, **kwargs: Any) -> Any:
        try:
            return await self._send(method, path, **kwargs)
        except DockerError as exc:
            if exc.status == 404:
                return None
            raise

    # -- engine --------------------------------------------------------------------------------

    async def version(self) -> dict:
        return await self._send("GET", "/version", prefix="")

    async def info(self) -> dict:
        return await self._send("GET", "/info")

    # -- images and networks ---------------------------------------------------------------------

    async def image_inspect(self, name: str) -> dict | None:
        """The image, or None when the engine does not have it."""
        return await self._send_or_none("GET", f"/images/{quote(name, safe='')}/json")

    async def image_pull(self, name: str, timeout: float, progress: Callable[[dict], None] | None = None) -> None:
        """Pull ``name`` (``repo[:tag]`` or ``repo@digest``); raises DockerError with the registry's
        error. ``progress`` gets each of the engine's progress events."""
        repo, tag = split_image(name)
        params = {"fromImage": repo, "tag": tag}
        try:
            async for event in self._json_lines("POST", "/images/create", params, timeout):
                if event.get("error"):
                    raise DockerError(500, event["error"], method="POST", path="/images/create")
                if progress is not None:
                    progress(event)
        except httpx.HTTPError as exc:
            raise DockerError(0, f"pulling {name} failed: {exc or type(exc).__name__}") from exc

    async def network_inspect(self, name: str) -> dict | None:
        return await self._send_or_none("GET", f"/networks/{quote(name, safe='')}")

    # -- containers ------------------------------------------------------------------------------

    async def container_create(self, name: str, config: dict) -> str:
        data = await self._send("POST", "/containers/create", params={"name": name}, body=config)
        return data["Id"]

    async def container_start(self, container_id: str) -> None:
        await self._send("POST", f"/containers/{container_id}/start")

    async def container_inspect(self, container_id: str) -> dict | None:
        return await self._send_or_none("GET", f"/containers/{container_id}/json")

    async def container_wait(self, container_id: str) -> int:
        """Block (in the engine, not here) until the container stops; returns its exit code.

        A container that no longer exists counts as ended with status 0.
        """
        try:
            data = await self._send("POST", f"/containers/{container_id}/wait", params={"condition": "not-running"}, timeout=None)
        except DockerError as exc:
            if exc.status == 404:
                return 0
            raise
        return int((data or {}).get("StatusCode", 0))

    async def container_kill(self, container_id: str, signal: str = "SIGKILL") -> None:
        """Signal the container's main process; a container gone or not running is fine."""
        try:
            await self._send("POST", f"/containers/{container_id}/kill", params={"signal": signal})
        except DockerError as exc:
            if exc.status not in (404, 409):
                raise

    async def container_remove(self, container_id: str) -> bool:
        """Remove the container (killing it if it runs) and its anonymous volumes; False if already gone."""
        try:
            await self._send("DELETE", f"/containers/{container_id}", params={"force": True, "v": True})
        except DockerError as exc:
            if exc.status == 404:
                return False
            if exc.status == 409 and "already in progress" in exc.message:
                return True
            raise
        return True

    async def container_logs(self, container_id: str, tail: int) -> str:
        try:
            data = await self._send(
                "GET", f"/containers/{container_id}/logs",
                params={"stdout": True, "stderr": True, "tail": str(tail)}, raw=True,
            )
        except DockerError as exc:
            if exc.status == 404:
                return ""
            raise
        return demux_logs(data)

    async def containers(self, labels: dict[str, str | None], all: bool = True) -> list[dict]:
        """Containers carrying every label (``None`` value: the label with any value)."""
        filters = {"label": [k if v is None else f"{k}={v}" for k, v in labels.items()]}
        return await self._send("GET", "/containers/json", params={"all": all, "filters": json.dumps(filters)})

    # -- swarm -----------------------------------------------------------------------------------

    async def service_create(self, spec: dict) -> str:
        data = await self._send("POST", "/services/create", body=spec)
        return data["ID"]

    async def service_inspect(self, service_id: str) -> dict | None:
        return await self._send_or_none("GET", f"/services/{service_id}")

    async def service_remove(self, service_id: str) -> bool:
        try:
            await self._send("DELETE", f"/services/{service_id}")
        except DockerError as exc:
            if exc.status == 404:
                return False
            raise
        return True

    async def services(self, labels: dict[str, str | None]) -> list[dict]:
        filters = {"label": [k if v is None else f"{k}={v}" for k, v in labels.items()]}
        return await self._send("GET", "/services", params={"filters": json.dumps(filters)})

    async def service_tasks(self, service_id: str) -> list[dict]:
        """The service's tasks; none when the service does not exist (any more)."""
        try:
            return await self._send("GET", "/tasks", params={"filters": json.dumps({"service": [service_id]})})
        except DockerError as exc:
            if exc.status == 404:
                return []
            raise

    async def service_logs(self, service_id: str, tail: int) -> str:
        try:
            data = await self._send(
                "GET", f"/services/{service_id}/logs",
                params={"stdout": True, "stderr": True, "tail": str(tail)}, raw=True,
            )
        except DockerError as exc:
            if exc.status in (404, 503):
                return ""
            raise
        return demux_logs(data)

    async def node_inspect(self, node_id: str) -> dict | None:
        return await self._send_or_none("GET", f"/nodes/{node_id}")

    async def events(self, filters: dict[str, list[str]]) -> AsyncIterator[dict]:
        """Stream engine events matching ``filters`` until the caller stops iterating."""
        async for event in self._json_lines("GET", "/events", {"filters": json.dumps(filters)}, None):
            yield event

    async def _json_lines(self, method: str, path: str, params: dict, timeout: float | None) -> AsyncIterator[dict]:
        """A streaming endpoint's JSON lines (image pulls, events); an HTTP error raises DockerError."""
        async with self._http.stream(
            method, await self._api_prefix() + path, params=params, timeout=httpx.Timeout(timeout, connect=10.0)
        ) as response:
            if response.status_code >= 400:
                await response.aread()
                raise DockerError(response.status_code, _error_message(response), method=method, path=path)
            async for line in response.aiter_lines():
                if line.strip():
                    yield json.loads(line)


def _params(params: dict | None) -> dict | None:
    if not params:
        return None
    return {k: ("1" if v is True else "0" if v is False else v) for k, v in params.items()}


def _error_message(response: httpx.Response) -> str:
    try:
        return str(response.json().get("message") or response.text).strip()
    except ValueError:
        return response.text.strip() or f"HTTP {response.status_code}"


def split_image(name: str) -> tuple[str, str]:
    """``repo[:tag]`` → (repo, tag or "latest"); a digest stays in the repo part."""
    if "@" in name:
        return name, ""
    slash = name.rfind("/")
    colon = name.rfind(":")
    if colon > slash:
        return name[:colon], name[colon + 1:]
    return name, "latest"


def demux_logs(data: bytes) -> str:
    """Decode the engine's multiplexed log stream (8-byte frame headers) into text."""
    out, pos = [], 0
    while pos + 8 <= len(data) and data[pos] in (0, 1, 2) and data[pos + 1:pos + 4] == b"\0\0\0":
        (size,) = struct.unpack(">I", data[pos + 4:pos + 8])
        out.append(data[pos + 8:pos + 8 + size])
        pos += 8 + size
    if pos < len(data):  # a TTY container's raw stream, or trailing bytes
        out.append(data[pos:])
    return b"".join(out).decode("utf-8", errors="replace")


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
