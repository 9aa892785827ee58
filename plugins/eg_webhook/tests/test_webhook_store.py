"""The webhook session store against a real HTTP server the test starts (Enterprise Gateway's
webhook protocol, basic or digest auth): a kernel's session is saved, adopted by the next gateway
from the webhook, and deleted at shutdown."""

from __future__ import annotations

import asyncio
import base64
import hashlib
import json
import re
import secrets

import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from eg_core.testing import GatewayProcess, KernelSocket

pytestmark = pytest.mark.timeout(240)
USER, PASSWORD, REALM = "eg", "webhook-pw", "eg-sessions"
BASIC = "Basic " + base64.b64encode(f"{USER}:{PASSWORD}".encode()).decode()


def _md5(text: str) -> str:
    return hashlib.md5(text.encode()).hexdigest()


def digest_ok(header: str, method: str, nonces: set) -> bool:
    """RFC 7616 digest (MD5, qop=auth) as a server checks it: the response hash, the realm, a
    nonce this server issued, the request's own URI."""
    fields = dict(re.findall(r'(\w+)="?([^",]*)"?', header[len("Digest "):]))
    if fields.get("username") != USER or fields.get("realm") != REALM or fields.get("nonce") not in nonces:
        return False
    ha1 = _md5(f"{USER}:{REALM}:{PASSWORD}")
    ha2 = _md5(f"{method}:{fields.get('uri')}")
    expected = _md5(f"{ha1}:{fields['nonce']}:{fields.get('nc')}:{fields.get('cnonce')}:{fields.get('qop')}:{ha2}")
    return fields.get("qop") == "auth" and secrets.compare_digest(expected, fields.get("response", ""))


class Webhook(ThreadingHTTPServer):
    """Enterprise Gateway's webhook, in a thread (the gateway calls it while tests wait on it):
    POST/GET {url}/{id}, GET/DELETE {url}; every call recorded."""

    def __init__(self, auth_type: str):
        self.auth_type = auth_type
        self.nonces: set = set()
        self.store: dict = {}
        self.calls: list = []
        super().__init__(("127.0.0.1", 0), _Handler)
        self.url = f"http://127.0.0.1:{self.server_address[1]}/sessions"


class _Handler(BaseHTTPRequestHandler):
    server: Webhook

    def log_message(self, *args) -> None:
        pass

    def _answer(self, status: int, body: object = None, challenge: str | None = None) -> None:
        data = json.dumps(body).encode() if body is not None else b""
        self.send_response(status)
        if challenge:
            self.send_header("WWW-Authenticate", challenge)
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def _start(self) -> tuple[str | None, object] | None:
        self.server.calls.append((self.command, self.path))
        length = int(self.headers.get("Content-Length") or 0)
        body = json.loads(self.rfile.read(length)) if length else None
        if not self._authorized(self.headers.get("Authorization") or ""):
            return None
        kernel_id = self.path[len("/sessions/"):] if self.path.startswith("/sessions/") else None
        return kernel_id or None, body

    def _authorized(self, header: str) -> bool:
        if self.server.auth_type == "basic":
            if header == BASIC:
                return True
            self._answer(401, challenge=f'Basic realm="{REALM}"')
            return False
        if header.startswith("Digest ") and digest_ok(header, self.command, self.server.nonces):
            return True
        nonce = secrets.token_hex(16)
        self.server.nonces.add(nonce)
        self._answer(401, challenge=f'Digest realm="{REALM}", qop="auth", algorithm=MD5, nonce="{nonce}"')
        return False

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


@pytest.fixture(params=["basic", "digest"])
def webhook(request):
    server = Webhook(request.param)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield server
    server.shutdown()
    server.server_close()


async def wait_for(condition, timeout: float = 30) -> None:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while not condition():
        assert loop.time() < deadline, "condition not met in time"
        await asyncio.sleep(0.05)


async def test_sessions_kept_by_the_webhook_survive_a_gateway_restart(tmp_path, webhook):
    url, store, calls = webhook.url, webhook.store, webhook.calls
    env = {"EG_WEBHOOK_URL": url, "EG_AUTH_TYPE": webhook.auth_type, "EG_WEBHOOK_USERNAME": USER, "EG_WEBHOOK_PASSWORD": PASSWORD}
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
    assert PASSWORD not in first.output() + second.output()
    if webhook.auth_type == "digest":
        assert webhook.nonces, "the webhook never challenged: digest auth was not used"
