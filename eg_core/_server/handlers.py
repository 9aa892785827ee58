"""The REST API (Enterprise Gateway's): handlers, token auth, CORS and JSON errors."""

from __future__ import annotations

import asyncio
import base64
import functools
import hmac
import json
import mimetypes
import os
import re
import socket
import sys
from typing import Any
from urllib.parse import urlparse

from tornado import web
from tornado.iostream import StreamClosedError

from .. import __version__
from .._runtime.context import may_see
from .._runtime.errors import BadRequest, EGError, NotFound
from ..identity import Identity
from ..lifecycle import scrubbed

API_DIR = os.path.join(os.path.dirname(os.path.dirname(__file__)), "api")
MAX_PATH = 4096  # characters of a kernel's working directory
SMALL_BODY = 64 * 1024  # bytes of a refused request's body still read, so the answer arrives


class AuthMixin:
    """Token auth and origin checks shared by REST and websocket handlers."""

    @property
    def gateway(self) -> Any:
        return self.settings["eg_gateway"]

    identity: Identity | None = None  # the token's user; None for the service token, or without auth
    admin = False

    @property
    def principal(self) -> str | None:
        """The name of the token's user (None: the service token, or no auth)."""
        return self.identity.name if self.identity else None

    @property
    def viewer(self) -> str | None:
        """Whose kernels and sessions this request may see and use: None for all (the
        gateway's own token, an admin by ``admin_users`` or ``admin_groups``, or a gateway
        without per-user tokens), else the token's user, who sees only their own
        (:func:`eg_core._runtime.context.may_see`)."""
        return None if self.principal is None or self.admin else self.principal

    async def authenticate(self) -> None:
        """Accept ``?token=``, ``Authorization: token <t>`` or ``Bearer <t>``; 401 otherwise
        (when auth is on). The gateway's own token leaves ``self.principal`` None (a service
        that may act for any user); any other token is asked of the identity providers
        (``eg_identify``, cached), whose answer becomes ``self.identity``."""
        gateway = self.gateway
        if gateway.authorized_origin:
            self.check_client_certificate(gateway.authorized_origin)
        if not gateway.auth_enabled:
            return
        supplied = self.get_query_argument("token", None)
        if supplied is None:
            supplied = _token_from_header(self.request.headers.get("Authorization", ""))
        if supplied:
            if gateway.auth_token and hmac.compare_digest(supplied.encode(), gateway.auth_token.encode()):
                return
            identity = await gateway.identify(supplied)
            if identity is not None:
                self.identity, self.admin = identity, gateway.is_admin(identity)
                return
        raise EGError(
            "a valid token is required: send 'Authorization: token <token>' or '?token=<token>'",
            status=401,
            reason="Unauthorized",
        )

    def check_client_certificate(self, host: str) -> None:
        """403 unless the client's certificate names ``host`` (``authorized_origin``) in its
        subjectAltName DNS entries or, without those, its commonName."""
        cert = self.request.get_ssl_certificate() or {}
        names = [v for k, v in cert.get("subjectAltName", ()) if k == "DNS"]
        if not names:
            names = [v for rdn in cert.get("subject", ()) for k, v in rdn if k == "commonName"]
        if not any(_host_matches(name, host) for name in names):
            raise EGError(
                f"the client certificate ({', '.join(names) or 'none'}) does not match authorized_origin", status=403, reason="Forbidden"
            )

    def origin_allowed(self, origin: str) -> bool:
        """``allow_origin`` ('*' or one origin), else the same origin: scheme, host and port
        of the request, under a name of this gateway (a ``Host`` header naming another site is
        what a DNS-rebinding page sends)."""
        allowed = self.gateway.allow_origin
        if allowed == "*" or origin == allowed:
            return True
        parsed = urlparse(origin)
        return (
            parsed.scheme == self.request.protocol
            and parsed.netloc.lower() == self.request.host.lower()
            and self.request.host_name.lower().strip("[]") in _own_names(self.gateway.ip)
        )


@functools.lru_cache(maxsize=4)
def _own_names(ip: str) -> frozenset[str]:
    """The names a browser may use for this gateway: its address, loopback, the host's names."""
    names = {"localhost", "127.0.0.1", "::1", socket.gethostname().lower(), socket.getfqdn().lower()}
    if ip not in ("", "0.0.0.0", "::"):
        names.add(ip.lower())
    return frozenset(names)


def _host_matches(pattern: str, host: str) -> bool:
    """A certificate name against a host name; ``*.example.org`` covers one label."""
    pattern, host = pattern.lower().rstrip("."), host.lower().rstrip(".")
    if pattern.startswith("*."):
        return "." in host and host.split(".", 1)[1] == pattern[2:]
    return pattern == host


def _token_from_header(header: str) -> str | None:
    """The token of ``token <t>`` or ``Bearer <t>``, or the password of HTTP Basic credentials
    (Jupyter Server sends Basic when its gateway client has http_user/http_pwd set)."""
    scheme, _, value = header.partition(" ")
    scheme = scheme.lower()
    if scheme in ("token", "bearer"):
        return value.strip()
    if scheme == "basic":
        try:
            return base64.b64decode(value.strip(), validate=True).decode().partition(":")[2]
        except (ValueError, UnicodeDecodeError):
            return None
    return None


class JSONErrorsMixin:
    """Errors as ``{"reason","message"}`` JSON with the error's status, for REST and websocket
    handlers alike (a websocket handshake refused, or a method other than GET)."""

    def _handle_request_exception(self, e: BaseException) -> None:
        if isinstance(e, EGError) and not self._finished:
            self.eg_error = e
            self.send_error(e.status, reason=_header_safe(e.reason), exc_info=sys.exc_info())
            return
        super()._handle_request_exception(e)

    def write_error(self, status_code: int, **kwargs: Any) -> None:
        exc = kwargs.get("exc_info", (None, None, None))[1]
        self.set_header("Content-Type", "application/json")
        if isinstance(exc, EGError):
            body = {"reason": exc.reason, "message": exc.message}
        elif isinstance(exc, web.HTTPError):
            body = {"reason": exc.reason or self._reason, "message": exc.log_message or ""}
        else:
            body = {"reason": self._reason, "message": "internal error; see the gateway log" if status_code >= 500 else ""}
        self.finish(json.dumps(body))


@web.stream_request_body
class APIHandler(JSONErrorsMixin, AuthMixin, web.RequestHandler):
    """Base of every REST handler: JSON in and out, ``{"reason","message"}`` on errors.

    The token (and origin) is checked as soon as the headers arrive, before any of the body is
    read; the body is then received up to ``Gateway.max_body_size`` bytes (413 beyond) and read
    with :meth:`body` or :meth:`json_body`.
    """

    _body_parts: list[bytes] | None = None
    _body_size = 0
    _refusal: EGError | None = None

    def set_default_headers(self) -> None:
        self.set_header("Content-Type", "application/json")
        for header, value in self.gateway.cors_headers().items():
            self.set_header(header, value)

    async def prepare(self) -> None:
        if self.request.method == "OPTIONS":
            return
        try:
            await self.authenticate()
        except EGError as exc:
            return self.refuse(exc)
        origin = self.request.headers.get("Origin")
        if origin and not self.origin_allowed(origin):
            return self.refuse(EGError(
                f"cross-origin request from {origin} is not allowed; set allow_origin to permit it",
                status=403,
                reason="Forbidden",
            ))
        length = self.request.headers.get("Content-Length", "")
        if length.isdigit() and int(length) > self.gateway.max_body_size:
            raise self._too_large(int(length))

    def refuse(self, error: EGError) -> None:
        """Answer ``error`` without reading a large request body (the connection is closed
        then); no body or a small one (up to ``SMALL_BODY``) is read and dropped first, so the
        connection stays usable and the answer is not lost to a reset."""
        headers = self.request.headers
        length = headers.get("Content-Length")
        chunked = "chunked" in headers.get("Transfer-Encoding", "").lower()
        small = (length is None and not chunked) or (length is not None and length.isdigit() and int(length) <= SMALL_BODY)
        if not small:
            raise error
        if self._refusal is None:
            self._refusal = error
            setattr(self, self.request.method.lower(), self._refuse)  # runs once the body is in

    def _refuse(self, *args: Any, **kwargs: Any) -> None:
        raise self._refusal

    def _too_large(self, size: int) -> EGError:
        limit = self.gateway.max_body_size
        return EGError(
            f"the request body has {size} bytes or more; at most {limit} are accepted (max_body_size)",
            status=413,
            reason="Payload Too Large",
        )

    def data_received(self, chunk: bytes) -> None:
        if self._finished or self._refusal is not None:
            return
        self._body_size += len(chunk)
        if self._body_size > self.gateway.max_body_size:
            self._body_parts = None
            error = self._too_large(self._body_size)
            self.send_error(error.status, reason=error.reason, exc_info=(EGError, error, None))
            return
        if self._body_parts is None:
            self._body_parts = []
        self._body_parts.append(chunk)

    def body(self) -> bytes:
        """The request body (empty when there is none)."""
        return b"".join(self._body_parts or ())

    def options(self, *args: Any) -> None:
        self.set_status(204)
        self.finish()

    def json_body(self) -> dict[str, Any]:
        """The request body as a JSON object; an empty body is ``{}``."""
        raw = self.body()
        if not raw:
            return {}
        try:
            body = json.loads(raw)
        except ValueError as exc:
            raise BadRequest(f"the request body is not valid JSON: {exc}") from None
        except RecursionError:
            raise BadRequest("the request body is nested too deeply") from None
        if not isinstance(body, dict):
            raise BadRequest("the request body must be a JSON object")
        return body

    def write_json(self, obj: Any, status: int = 200) -> None:
        self.set_status(status)
        self.finish(json.dumps(obj))



def _header_safe(text: str) -> str:
    return "".join(c for c in text if 32 <= ord(c) < 127)[:200]


class NotFoundHandler(APIHandler):
    async def prepare(self) -> None:
        await super().prepare()
        self.refuse(NotFound(f"no such resource: {self.request.path}"))


class APIVersionHandler(APIHandler):
    def get(self) -> None:
        self.write_json({"version": __version__, "gateway_version": __version__, "gateway": "eg"})


@functools.lru_cache(maxsize=2)
def openapi_text(ext: str) -> str:
    """The OpenAPI description as JSON or YAML text (read once)."""
    with open(os.path.join(API_DIR, "swagger.json")) as f:
        text = f.read()
    if ext == "yaml":
        import yaml

        return yaml.safe_dump(json.loads(text), sort_keys=False)
    return text


class ReadyHandler(APIHandler):
    """The readiness probe: 200 ``{"ready": true}`` when no plugin's ``eg_ready`` names a
    problem, else 503 ``{"reason": "Not Ready", "message": <the problems>}``. No token: a
    Kubernetes probe sends none, and the answer holds no secret."""

    async def prepare(self) -> None:
        if self.request.method != "GET":
            await super().prepare()

    async def get(self) -> None:
        problems = await self.gateway.readiness_problems()
        if problems:
            error = EGError("; ".join(problems), status=503, reason="Not Ready")
            error.logged = True  # the gateway logs a change of readiness once, not every probe
            raise error
        self.write_json({"ready": True})


class SwaggerHandler(APIHandler):
    def get(self, ext: str) -> None:
        if ext == "yaml":
            self.set_header("Content-Type", "text/x-yaml")
        self.finish(openapi_text(ext))


class KernelSpecsHandler(APIHandler):
    def get(self) -> None:
        catalog = self.gateway.catalog
        user = self.get_query_argument("user", "")
        if "/" in user:  # Jupyter Server joins "?user=<u>" before the kernelspec name
            user, name = user.split("/", 1)
            return self._one(name, self.principal or user)
        user = self.principal or user
        specs = {
            name: entry.model(self.gateway.base_url, self.gateway.kernels.launch_parameters(entry))
            for name, entry in catalog.available().items()
            if not user or self.gateway.kernels.user_allowed(user, entry, self._groups)
        }
        self.write_json({"default": self.gateway.default_kernel_name, "kernelspecs": specs})

    @property
    def _groups(self) -> frozenset[str]:
        return self.identity.groups if self.identity else frozenset()

    def _one(self, name: str, user: str | None) -> None:
        entry = self.gateway.catalog.get(name)
        if user and not self.gateway.kernels.user_allowed(user, entry, self._groups):
            raise EGError(f"User {user} is not authorized to use kernel spec {name}", status=403, reason="Forbidden")
        self.write_json(entry.model(self.gateway.base_url, self.gateway.kernels.launch_parameters(entry)))


class KernelSpecHandler(KernelSpecsHandler):
    def get(self, name: str) -> None:
        self._one(web.escape.url_unescape(name), self.principal or self.get_query_argument("user", "") or None)


class KernelSpecResourceHandler(APIHandler):
    """``/kernelspecs/{name}/{file}``: logos and kernel.js from the kernelspec's directory."""

    def get(self, name: str, path: str, include_body: bool = True) -> None:
        entry = self.gateway.catalog.get(web.escape.url_unescape(name))
        root = os.path.realpath(entry.resource_dir)
        full = os.path.realpath(os.path.join(root, path))
        if not full.startswith(root + os.sep) or not os.path.isfile(full):
            raise NotFound(f"kernelspec {name!r} has no resource {path!r}")
        self.set_header("Content-Type", mimetypes.guess_type(full)[0] or "application/octet-stream")
        with open(full, "rb") as f:
            data = f.read()
        self.set_header("Content-Length", str(len(data)))
        self.finish(data if include_body else None)

    def head(self, name: str, path: str) -> None:
        self.get(name, path, include_body=False)


class KernelsHandler(APIHandler):
    async def get(self) -> None:
        if not self.gateway.list_kernels:
            raise EGError("listing kernels is disabled (list_kernels=False)", status=403, reason="Forbidden")
        await self.gateway.kernels.adopt_listed(self.viewer)
        self.write_json(self.gateway.kernels.models(self.viewer))

    async def post(self) -> None:
        body = self.json_body()
        name = body.get("name")
        if name is not None and not isinstance(name, str):
            raise BadRequest("'name' must be a kernelspec name (a string) or null")
        path = body.get("path")
        if path is not None and not isinstance(path, str):
            raise BadRequest("'path' must be a string")
        if path is not None and len(path) > MAX_PATH:
            raise BadRequest(f"'path' is longer than {MAX_PATH} characters")
        env = body.get("env")
        headers = self._kernel_header_env()
        if headers and (env is None or isinstance(env, dict)):
            env = {**(env or {}), **headers}
        kernel = await self.gateway.kernels.start(name, env, path, identity=self.identity)
        self.set_header("Location", f"{self.gateway.base_url}api/kernels/{kernel.kernel_id}")
        model = kernel.model()
        if kernel.from_pool:
            model["from_pool"] = True  # an extra key: Jupyter clients ignore it
            self.set_header("X-EG-Kernel-Source", "warm-pool")
        self.write_json(model, status=201)


    def _kernel_header_env(self) -> dict[str, str]:
        """``kernel_headers`` present on this request, as ``KERNEL_HEADER_<NAME>`` variables."""
        env = {}
        for name in self.gateway.kernel_headers:
            value = self.request.headers.get(name)
            if value is not None:
                env["KERNEL_HEADER_" + re.sub(r"[^A-Za-z0-9]", "_", name).upper()] = value
        return env


class KernelHandler(APIHandler):
    async def get(self, kernel_id: str) -> None:
        self.write_json((await self.gateway.kernels.lookup(kernel_id, self.viewer)).model())

    async def delete(self, kernel_id: str) -> None:
        await (await self.gateway.kernels.lookup(kernel_id, self.viewer)).shutdown()
        self.set_status(204)
        self.finish()


class KernelActionHandler(APIHandler):
    async def post(self, kernel_id: str, action: str) -> None:
        kernel = await self.gateway.kernels.lookup(kernel_id, self.viewer)
        self.json_body()
        if action == "interrupt":
            await kernel.interrupt()
            self.set_status(204)
            self.finish()
        else:
            await kernel.restart()
            self.write_json(kernel.model())


class KernelEventsHandler(APIHandler):
    """A kernel's lifecycle events and its backend's log tail; ``?follow=1`` (or ``Accept:
    text/event-stream``) streams them as server-sent events while a launch is under way."""

    MAX_LINES = 1000

    async def get(self, kernel_id: str) -> None:
        if self._follows():
            return await self._follow(kernel_id)
        registry = self.gateway.kernels
        lines = self._lines()
        history = registry.history.get(kernel_id)
        try:
            managed = await registry.lookup(kernel_id, self.viewer)
        except NotFound:
            if history is None or history.owner is None or not may_see(self.viewer, history.owner):
                raise
            managed = None
        backend_log = []
        if managed is not None and managed.launch.running:
            backend_log = scrubbed(managed.kernel, await managed.launch.backend_log(lines))
        events = list(history.events) if history is not None else []
        self.write_json({"id": kernel_id, "events": events, "backend_log": backend_log})

    def _follows(self) -> bool:
        follow = self.get_query_argument("follow", "").lower()
        if follow not in ("", "0", "1", "true", "false"):
            raise BadRequest("'follow' must be 1 or 0 (true or false)")
        return follow in ("1", "true") or "text/event-stream" in self.request.headers.get("Accept", "")

    def _lines(self) -> int:
        value = self.get_query_argument("lines", "100")
        if not value.isdigit() or not 0 <= int(value) <= self.MAX_LINES:
            raise BadRequest(f"'lines' must be a whole number from 0 to {self.MAX_LINES}")
        return int(value)

    _follower: asyncio.Future | None = None

    async def _follow(self, kernel_id: str) -> None:
        """Wait (up to the launch timeout) for the kernel's first event this request may see,
        else 404; then stream until no launch of it is under way. A client that leaves ends it."""
        self._follower = asyncio.ensure_future(self._stream(kernel_id))
        try:
            await self._follower
        except (asyncio.CancelledError, StreamClosedError):
            if not self.request.connection.stream.closed():
                raise

    def on_connection_close(self) -> None:
        if self._follower is not None:
            self._follower.cancel()

    async def _stream(self, kernel_id: str) -> None:
        registry, viewer = self.gateway.kernels, self.viewer
        stream = registry.history.follow(kernel_id, lambda owner: may_see(viewer, owner))
        try:
            try:
                first = await asyncio.wait_for(anext(stream), float(registry.settings.launch_timeout))
            except (asyncio.TimeoutError, StopAsyncIteration):
                raise registry._not_found(kernel_id, viewer) from None
            self.set_header("Content-Type", "text/event-stream")
            self.set_header("Cache-Control", "no-cache")
            await self._send(first)
            async for record in stream:
                await self._send(record)
        finally:
            await stream.aclose()
        self.finish()

    async def _send(self, record: dict[str, Any]) -> None:
        self.write(f"event: {record['event']}\ndata: {json.dumps(record, default=str)}\n\n")
        await self.flush()


class SessionsHandler(APIHandler):
    def get(self) -> None:
        if not self.gateway.list_kernels:
            raise EGError("listing sessions is disabled (list_kernels=False)", status=403, reason="Forbidden")
        self.write_json(self.gateway.sessions.list(self.viewer))

    async def post(self) -> None:
        model, created = await self.gateway.sessions.create(self.json_body(), identity=self.identity, viewer=self.viewer)
        self.set_header("Location", f"{self.gateway.base_url}api/sessions/{model['id']}")
        self.write_json(model, status=201 if created else 200)


class SessionHandler(APIHandler):
    def get(self, session_id: str) -> None:
        self.write_json(self.gateway.sessions.get(session_id, self.viewer))

    async def patch(self, session_id: str) -> None:
        self.write_json(await self.gateway.sessions.update(session_id, self.json_body(), identity=self.identity, viewer=self.viewer))

    async def delete(self, session_id: str) -> None:
        await self.gateway.sessions.delete(session_id, self.viewer)
        self.set_status(204)
        self.finish()


def api_routes() -> list[tuple]:
    """The REST routes, relative to base_url (the websocket route is added by the app)."""
    return [
        (r"api/?", APIVersionHandler),
        (r"api/ready/?", ReadyHandler),
        (r"api/swagger\.(json|yaml)", SwaggerHandler),
        (r"api/kernelspecs/?", KernelSpecsHandler),
        (r"api/kernelspecs/([^/]+)/?", KernelSpecHandler),
        (r"kernelspecs/([^/]+)/(.+)", KernelSpecResourceHandler),
        (r"api/kernels/?", KernelsHandler),
        (r"api/kernels/([^/]+)/?", KernelHandler),
        (r"api/kernels/([^/]+)/(interrupt|restart)/?", KernelActionHandler),
        (r"api/kernels/([^/]+)/events/?", KernelEventsHandler),
        (r"api/sessions/?", SessionsHandler),
        (r"api/sessions/([^/]+)/?", SessionHandler),
    ]
