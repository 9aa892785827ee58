"""``/api/sessions``: notebook paths bound to kernels, kept in memory (Enterprise Gateway's model)."""

from __future__ import annotations

import uuid
from typing import Any

from .._runtime.errors import BadRequest, EGError, NotFound
from ..identity import Identity
from .._runtime.context import may_see
from .._runtime.kernels import KernelRegistry

MAX_TEXT = 4096  # characters of a session's path, name and type
MAX_PER_KERNEL = 64  # sessions bound to one kernel


class SessionManager:
    def __init__(self, kernels: KernelRegistry):
        self.kernels = kernels
        self.sessions: dict[str, dict[str, Any]] = {}

    def _model(self, session: dict[str, Any], viewer: str | None = None) -> dict[str, Any] | None:
        """The session's model, or None when its kernel is gone (the session goes too) or is
        not ``viewer``'s: a session belongs to its kernel's owner."""
        kernel = self.kernels.kernels.get(session["kernel_id"])
        if kernel is None:  # its kernel was shut down or culled: the session goes too
            self.sessions.pop(session["id"], None)
            return None
        if not may_see(viewer, kernel.kernel.owner):
            return None
        return {
            "id": session["id"],
            "path": session["path"],
            "name": session["name"],
            "type": session["type"],
            "kernel": kernel.model(),
            "notebook": {"path": session["path"], "name": session["name"]},
        }

    def list(self, viewer: str | None = None) -> list[dict[str, Any]]:
        """The sessions ``viewer`` may see (:func:`eg_core._runtime.context.may_see`)."""
        return [m for s in list(self.sessions.values()) if (m := self._model(s, viewer)) is not None]

    def get(self, session_id: str, viewer: str | None = None) -> dict[str, Any]:
        """A session by id; another user's is :class:`NotFound` exactly as an unknown id."""
        session = self.sessions.get(session_id)
        model = self._model(session, viewer) if session else None
        if model is None:
            raise NotFound(f"Session does not exist: {session_id}")
        return model

    async def create(
        self, body: dict[str, Any], identity: Identity | None = None, viewer: str | None = None
    ) -> tuple[dict[str, Any], bool]:
        """Create a session (and its kernel) or return ``viewer``'s existing one for the path.
        Returns ``(model, created)``."""
        path, kind, name = _path_type_name(body)
        for session in list(self.sessions.values()):
            if session["path"] == path and (model := self._model(session, viewer)) is not None:
                return model, False
        kernel_spec = body.get("kernel") or {}
        if not isinstance(kernel_spec, dict):
            raise BadRequest("'kernel' must be an object like {\"name\": \"python3\"}")
        kernel_id = kernel_spec.get("id")
        if kernel_id:
            kernel = await self.kernels.lookup(str(kernel_id), viewer)
            self._check_room(kernel.kernel_id)
        else:
            kernel_name = kernel_spec.get("name")
            if kernel_name is not None and not isinstance(kernel_name, str):
                raise BadRequest("'kernel.name' must be a string")
            kernel = await self.kernels.start(kernel_name, kernel_spec.get("env"), identity=identity)
        session = {"id": str(uuid.uuid4()), "path": path, "name": name, "type": kind, "kernel_id": kernel.kernel_id}
        self.sessions[session["id"]] = session
        return self._model(session), True

    def _check_room(self, kernel_id: str) -> None:
        bound = sum(1 for s in list(self.sessions.values()) if s["kernel_id"] == kernel_id and self._model(s) is not None)
        if bound >= MAX_PER_KERNEL:
            raise EGError(
                f"kernel {kernel_id} already has {bound} sessions, the most one kernel may have", status=409, reason="Conflict"
            )

    async def update(
        self, session_id: str, body: dict[str, Any], identity: Identity | None = None, viewer: str | None = None
    ) -> dict[str, Any]:
        self.get(session_id, viewer)  # NotFound for another user's, as for an unknown id
        session = self.sessions[session_id]
        changes = {key: _text(body[key], key) for key in ("path", "name", "type") if key in body}
        if isinstance(body.get("notebook"), dict) and isinstance(body["notebook"].get("path"), str):
            changes["path"] = _text(body["notebook"]["path"], "notebook.path")
        kernel = body.get("kernel")
        if isinstance(kernel, dict) and kernel.get("id") and kernel["id"] != session["kernel_id"]:
            target = await self.kernels.lookup(str(kernel["id"]), viewer)
            self._check_room(target.kernel_id)
            session["kernel_id"] = target.kernel_id
        elif isinstance(kernel, dict) and kernel.get("name"):
            started = await self.kernels.start(str(kernel["name"]), identity=identity)
            old = self.kernels.kernels.get(session["kernel_id"])
            session["kernel_id"] = started.kernel_id
            if old is not None:
                await old.shutdown()
        session.update(changes)  # only once the kernel change (if any) went through
        return self.get(session_id, viewer)

    async def delete(self, session_id: str, viewer: str | None = None) -> None:
        self.get(session_id, viewer)  # NotFound for another user's, as for an unknown id
        session = self.sessions.pop(session_id)
        kernel = self.kernels.kernels.get(session["kernel_id"])
        if kernel is not None:
            await kernel.shutdown()


def _path_type_name(body: dict[str, Any]) -> tuple[str, str, str]:
    notebook = body.get("notebook") if isinstance(body.get("notebook"), dict) else {}
    path = body.get("path", notebook.get("path"))
    if not isinstance(path, str) or not path:
        raise BadRequest("a session needs 'path' (a string), e.g. {\"path\": \"nb.ipynb\", \"type\": \"notebook\", \"kernel\": {\"name\": \"python3\"}}")
    kind = body.get("type", "notebook" if notebook else None)
    if not isinstance(kind, str) or not kind:
        raise BadRequest("a session needs 'type' (a string such as 'notebook' or 'console')")
    name = body.get("name", notebook.get("name", ""))
    if not isinstance(name, str):
        raise BadRequest("'name' must be a string")
    return _text(path, "path"), _text(kind, "type"), _text(name, "name")


def _text(value: Any, key: str) -> str:
    if not isinstance(value, str):
        raise BadRequest(f"'{key}' must be a string")
    if len(value) > MAX_TEXT:
        raise BadRequest(f"'{key}' is longer than {MAX_TEXT} characters")
    return value
