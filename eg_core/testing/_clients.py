"""A websocket client of one kernel, in the legacy or the v1 protocol, and waiting for a busy kernel."""

from __future__ import annotations

import asyncio
import json
import time
import uuid

from .._server.wsproto import V1, from_legacy, from_v1, to_v1


def new_msg(msg_type: str, content: dict, session: str, channel: str = "shell") -> dict:
    return {
        "header": {
            "msg_id": uuid.uuid4().hex,
            "msg_type": msg_type,
            "username": "test",
            "session": session,
            "date": "2026-01-01T00:00:00.000000Z",
            "version": "5.3",
        },
        "parent_header": {},
        "metadata": {},
        "content": content,
        "channel": channel,
        "buffers": [],
    }


class KernelSocket:
    """A websocket client of one kernel, in the legacy or the v1 protocol."""

    def __init__(self, ws, protocol: str | None, session_id: str):
        self.ws = ws
        self.v1 = protocol == V1
        self.session = session_id

    @classmethod
    async def connect(cls, gateway, kernel_id: str, *, v1: bool = False, session_id: str | None = None, headers=None):
        session_id = session_id or uuid.uuid4().hex
        import websockets

        ws = await websockets.connect(
            f"{gateway.ws_url}/api/kernels/{kernel_id}/channels?session_id={session_id}",
            additional_headers=gateway.headers if headers is None else headers,
            subprotocols=[V1] if v1 else None,
            max_size=None,
        )
        return cls(ws, ws.subprotocol, session_id)

    async def send(self, msg: dict) -> None:
        if self.v1:
            parts = [json.dumps(msg[k]).encode() for k in ("header", "parent_header", "metadata", "content")]
            await self.ws.send(to_v1(msg["channel"], parts + list(msg.get("buffers", []))))
        else:
            await self.ws.send(json.dumps(msg))

    async def recv(self, timeout: float = 30) -> dict:
        frame = await asyncio.wait_for(self.ws.recv(), timeout)
        if self.v1:
            channel, parts = from_v1(frame)
            msg = {k: json.loads(p) for k, p in zip(("header", "parent_header", "metadata", "content"), parts)}
            msg["channel"], msg["buffers"] = channel, parts[4:]
            return msg
        if isinstance(frame, bytes):
            channel, parts = from_legacy(frame)
            msg = {k: json.loads(bytes(p)) for k, p in zip(("header", "parent_header", "metadata", "content"), parts)}
            msg["channel"], msg["buffers"] = channel, parts[4:]
            return msg
        return json.loads(frame)

    async def request(self, msg_type: str, content: dict, channel: str = "shell") -> str:
        msg = new_msg(msg_type, content, self.session, channel)
        await self.send(msg)
        return msg["header"]["msg_id"]

    async def execute(self, code: str, timeout: float = 60, stdin_reply: str | None = None) -> dict:
        """Run code (an execute_request with every field of the protocol's: Toree refuses one
        without them); return the reply, stdout text, results and errors of that request."""
        msg_id = await self.request("execute_request", {"code": code, "silent": False, "store_history": True, "user_expressions": {},
                                                         "allow_stdin": stdin_reply is not None, "stop_on_error": True})
        out = {"stdout": "", "results": [], "errors": [], "reply": None, "idle": False}
        stdout: list[str] = []  # joined at the end: += on a dict item copies the whole text each time
        deadline = time.monotonic() + timeout
        while not (out["reply"] and out["idle"]):
            msg = await self.recv(timeout=max(deadline - time.monotonic(), 0.1))
            if msg["parent_header"].get("msg_id") != msg_id:
                continue
            kind = msg["header"]["msg_type"]
            if kind == "stream" and msg["content"].get("name") == "stdout":
                stdout.append(msg["content"]["text"])
            elif kind in ("execute_result", "display_data"):
                out["results"].append(msg["content"]["data"])
            elif kind == "error":
                out["errors"].append(msg["content"]["ename"])
            elif kind == "execute_reply":
                out["reply"] = msg["content"]
            elif kind == "status" and msg["content"]["execution_state"] == "idle":
                out["idle"] = True
            elif kind == "input_request":
                reply = new_msg("input_reply", {"value": stdin_reply}, self.session, "stdin")
                reply["parent_header"] = msg["header"]
                await self.send(reply)
        out["stdout"] = "".join(stdout)
        return out

    async def close(self) -> None:
        await self.ws.close()


async def wait_until_busy(http, kernel_id: str, timeout: float = 30.0) -> None:
    """Wait until the kernel's model says ``busy`` (a cell runs), e.g. before an interrupt."""
    deadline = time.monotonic() + timeout
    while (await http.get(f"/api/kernels/{kernel_id}")).json()["execution_state"] != "busy":
        if time.monotonic() > deadline:
            raise TimeoutError(f"kernel {kernel_id} did not become busy within {timeout}s")
        await asyncio.sleep(0.05)
