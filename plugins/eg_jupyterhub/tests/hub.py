"""A real JupyterHub for the tests: the ``dummy`` authenticator, ``SimpleLocalProcessSpawner``
(single-user servers as this OS user, homes under the test's directory), a real
configurable-http-proxy, and each single-user server using eg as its gateway with the user's own
Hub API token, as README.md tells operators to wire it."""

from __future__ import annotations

import asyncio
import json
import os
import secrets
import shutil
import subprocess
import sys
from pathlib import Path

import httpx

from eg_core.testing import free_port

SINGLE_USER_CONFIG = Path(__file__).resolve().parent.parent / "examples" / "jupyter_server_config.py"


class Hub:
    """A running Hub; ``admin`` is an HTTP client with a Hub service token that may manage users."""

    proc = None

    def __init__(self, tmp: Path, groups: dict[str, list[str]]):
        """Choose the Hub's ports and tokens (eg needs them before the Hub starts)."""
        self.tmp, self.groups = tmp, groups
        self.port, self.hub_port, self.proxy_api_port = free_port(), free_port(), free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.api_url = f"http://127.0.0.1:{self.hub_port}/hub/api"
        self.admin_token = secrets.token_hex(16)
        self.eg_token = secrets.token_hex(16)  # eg's own service token: reads users' groups
        self.admin = httpx.AsyncClient(base_url=self.api_url, headers={"Authorization": f"token {self.admin_token}"}, timeout=60)

    async def start(self, gateway_url: str) -> None:
        """Start the Hub, its single-user servers using eg at ``gateway_url``; wait for its API."""
        tmp = self.tmp
        config_dir = tmp / "singleuser-config"
        config_dir.mkdir()
        shutil.copy(SINGLE_USER_CONFIG, config_dir / "jupyter_server_config.py")
        bin_dir = os.path.dirname(sys.executable)
        config = {
            "ip": "127.0.0.1", "port": self.port, "hub_ip": "127.0.0.1", "hub_port": self.hub_port,
            "proxy_api": f"http://127.0.0.1:{self.proxy_api_port}", "db": f"sqlite:///{tmp}/hub.sqlite",
            "cookie_secret_file": str(tmp / "cookie_secret"), "pid_file": str(tmp / "proxy.pid"),
            "admin_token": self.admin_token, "eg_token": self.eg_token, "groups": self.groups,
            "homes": str(tmp / "homes" / "{username}"), "singleuser": os.path.join(bin_dir, "jupyterhub-singleuser"),
            "environment": {"JUPYTER_GATEWAY_URL": gateway_url, "JUPYTER_CONFIG_DIR": str(config_dir),
                            "PATH": f"{bin_dir}:{os.environ['PATH']}"},
        }
        (tmp / "hub_config.py").write_text(HUB_CONFIG.format(config=json.dumps(config)))
        self.log = open(tmp / "hub.log", "wb")
        self.proc = subprocess.Popen(
            [os.path.join(bin_dir, "jupyterhub"), "-f", str(tmp / "hub_config.py")], cwd=tmp,
            stdout=self.log, stderr=subprocess.STDOUT, env={**os.environ, "CONFIGPROXY_AUTH_TOKEN": secrets.token_hex(16)},
        )
        await self._ready()

    def output(self) -> str:
        self.log.flush()
        return (self.tmp / "hub.log").read_text(errors="replace")

    async def _ready(self, timeout: float = 90) -> None:
        """Wait for the Hub's API to answer (it starts its proxy first)."""
        async with asyncio.timeout(timeout):
            while True:
                assert self.proc.poll() is None, self.output()
                try:
                    if (await self.admin.get("/")).status_code == 200:
                        return
                except httpx.TransportError:
                    pass
                await asyncio.sleep(0.2)

    async def start_server(self, user: str) -> str:
        """Create ``user``, start their single-user server and wait for it (the Hub's progress
        stream); return a new API token of the user."""
        r = await self.admin.post(f"/users/{user}")
        assert r.status_code in (201, 409), r.text
        r = await self.admin.post(f"/users/{user}/server")
        assert r.status_code in (201, 202), r.text
        async with self.admin.stream("GET", f"/users/{user}/server/progress", timeout=120) as events:
            async for line in events.aiter_lines():
                if line.startswith("data:") and json.loads(line[5:]).get("ready"):
                    break
                assert not (line.startswith("data:") and json.loads(line[5:]).get("failed")), self.output()
        r = await self.admin.post(f"/users/{user}/tokens", json={"note": "test"})
        assert r.status_code == 201, r.text
        return r.json()["token"]

    def user_client(self, user: str, token: str) -> httpx.AsyncClient:
        """An HTTP client of ``user``'s single-user server, through the Hub's proxy."""
        return httpx.AsyncClient(base_url=f"{self.url}/user/{user}", headers={"Authorization": f"token {token}"}, timeout=120)

    async def stop(self) -> None:
        await self.admin.aclose()
        if self.proc is None:
            return
        if self.proc.poll() is None:
            self.proc.terminate()  # the Hub stops its servers and its proxy
            try:
                await asyncio.to_thread(self.proc.wait, 60)
            except subprocess.TimeoutExpired:
                self.proc.kill()
        self.log.close()


HUB_CONFIG = """
import json
cfg = json.loads({config!r})
c.JupyterHub.ip = cfg["ip"]
c.JupyterHub.port = cfg["port"]
c.JupyterHub.hub_ip = cfg["hub_ip"]
c.JupyterHub.hub_port = cfg["hub_port"]
c.ConfigurableHTTPProxy.api_url = cfg["proxy_api"]
c.ConfigurableHTTPProxy.pid_file = cfg["pid_file"]
c.JupyterHub.db_url = cfg["db"]
c.JupyterHub.cookie_secret_file = cfg["cookie_secret_file"]
c.JupyterHub.authenticator_class = "dummy"
c.Authenticator.allow_all = True
c.JupyterHub.spawner_class = "simple"
c.SimpleLocalProcessSpawner.home_dir_template = cfg["homes"]
c.Spawner.cmd = [cfg["singleuser"]]
c.Spawner.args = ["--allow-root"]
c.Spawner.environment = cfg["environment"]
c.Spawner.start_timeout = 120
c.Spawner.http_timeout = 120
c.JupyterHub.services = [
    {{"name": "tester", "api_token": cfg["admin_token"]}},
    {{"name": "eg", "api_token": cfg["eg_token"]}},
]
c.JupyterHub.load_roles = [
    {{"name": "tester", "scopes": ["admin:users", "admin:servers", "tokens", "access:servers"], "services": ["tester"]}},
    {{"name": "eg-gateway", "scopes": ["read:users:groups", "read:users:name"], "services": ["eg"]}},
]
c.JupyterHub.load_groups = {{name: {{"users": users}} for name, users in cfg["groups"].items()}}
"""
