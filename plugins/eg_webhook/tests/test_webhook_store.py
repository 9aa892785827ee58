"""The webhook session store against a real HTTP server the test starts (Enterprise Gateway's
webhook protocol, basic auth): a kernel's session is saved, adopted by the next gateway from
the webhook, and deleted at shutdown."""

from __future__ import annotations

import asyncio
import base64
import json

import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from eg_core.testing import GatewayProcess, KernelSocket

pytestmark = pytest.mark.timeout(240)
AUTH = "Basic " + base64.b64encode(b"eg:webhook-pw").decode()


class Webhook(ThreadingHTTPServer):
    """Enterprise Gateway's webhook, in a thread (the gateway calls it while tests wait on it):
    POST/GET {url}/{id}, GET/DELETE {url}; every call recorded."""

    def __init__(self):
        self.store: dict = {}
        self.calls: list = []
        super().__init__(("127.0.0.1", 0), _Handler)
        self.url = f"http://127.0.0.1:{self.server_address[1]}/sessions"


class _Handler(BaseHTTPRequestHandler):
    server: Webhook

    def log_message(self, *args) -> None:
        pass

    def _answer(self, status: int, body: object = None) -> None:
        data = json.dumps(body).encode() if body is not None else b""
        self.send_response(status)
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def _start(self) -> tuple[str | None, object] | None:
        self.server.calls.append((self.command, self.path))
        length = int(self.headers.get("Content-Length") or 0)
        body = json.loads(self.rfile.read(length)) if length else None
        if self.headers.get("Authorization") != AUTH:
            self._answer(401)
            return None
        kernel_id = self.path[len("/sessions/"):] if self.path.startswith("/sessions/") else None
        return kernel_id or None, body

    def do_GET(self) -> None:
        if (started := self._start()) is None:
            return
        kernel_id, _ = started
        store = self.server.store
        if kernel_id is None:
            self._answer(200, [{"kernel_session": s} for s in store.values()])
        elif kernel_id in store:
            self._answer(200, {"kernel_session": store[kernel_id]})
        else:
            self._answer(404)

    def do_POST(self) -> None:
        if (started := self._start()) is not None:
            self.server.store.update(started[1])
            self._answer(204)

    def do_DELETE(self) -> None:
        if (started := self._start()) is not None:
            for kid in started[1]:
                self.server.store.pop(kid, None)
            self._answer(204)


@pytest.fixture
def webhook():
    server = Webhook()
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield server.url, server.store, server.calls
    server.shutdown()
    server.server_close()


async def wait_for(condition, timeout: float = 30) -> None:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while not condition():
        assert loop.time() < deadline, "condition not met in time"
        await asyncio.sleep(0.05)


async def test_sessions_kept_by_the_webhook_survive_a_gateway_restart(tmp_path, webhook):
    url, store, calls = webhook
    env = {"EG_WEBHOOK_URL": url, "EG_AUTH_TYPE": "basic", "EG_WEBHOOK_USERNAME": "eg", "EG_WEBHOOK_PASSWORD": "webhook-pw"}
    args = ("--Gateway.availability_mode=standalone",)
    first = GatewayProcess(tmp_path, *args, env=env)
    try:
        async with first.client() as http:
            r = await http.post("/api/kernels", json={"name": "python3"})
            assert r.status_code == 201, r.text
            kid = r.json()["id"]
            ws = await KernelSocket.connect(first, kid)
            assert (await ws.execute("x = 41"))["reply"]["status"] == "ok"
            await ws.close()
        assert kid in store and store[kid]["kernel_id"] == kid
        assert ("POST", f"/sessions/{kid}") in calls
    finally:
        first.stop()  # standalone: the kernel keeps running for the next gateway
    second = GatewayProcess(tmp_path, *args, env=env)
    try:
        assert ("GET", "/sessions") in calls
        async with second.client() as http:
            assert (await http.get(f"/api/kernels/{kid}")).status_code == 200
            ws = await KernelSocket.connect(second, kid)
            assert (await ws.execute("print(x + 1)"))["stdout"].strip() == "42"
            await ws.close()
            assert (await http.delete(f"/api/kernels/{kid}")).status_code == 204
        await wait_for(lambda: kid not in store)
        assert ("DELETE", "/sessions") in calls
    finally:
        second.stop()
    assert "webhook-pw" not in first.output() + second.output()
