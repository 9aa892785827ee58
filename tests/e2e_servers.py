"""Real clients for the end-to-end tests: eg behind a Jupyter Server / JupyterLab subprocess.

``JupyterProcess`` starts ``jupyter server`` (or ``jupyter lab``) with ``--gateway-url`` pointing
at an eg ``GatewayProcess``, with its own token and private Jupyter config/data/runtime dirs so
nothing leaks in from (or out to) the user's environment. ``stop_gateway`` stops eg and makes sure
no kernel process it started survives it.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
import uuid
from pathlib import Path

import httpx
import psutil

from eg_core.testing import GatewayProcess, free_port


class JupyterProcess:
    """A ``jupyter server`` or ``jupyter lab`` subprocess whose kernels live in an eg gateway."""

    def __init__(self, tmp: Path, gateway: GatewayProcess, *args: str, app: str = "jupyter_server", user_settings: dict | None = None, startup_timeout: float = 90):
        self.gateway = gateway
        self.token = "js-token-" + uuid.uuid4().hex[:8]
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.ws_url = f"ws://127.0.0.1:{self.port}"
        self.root_dir = tmp / "root"
        self.root_dir.mkdir(exist_ok=True)
        home = tmp / "jupyter"
        env = {
            **os.environ,
            "JUPYTER_RUNTIME_DIR": str(home / "runtime"),
            "JUPYTER_CONFIG_DIR": str(home / "config"),
            "JUPYTER_DATA_DIR": str(home / "data"),
            "JUPYTER_PLATFORM_DIRS": "0",
            "JUPYTERLAB_SETTINGS_DIR": str(home / "lab-settings"),
            "JUPYTERLAB_WORKSPACES_DIR": str(home / "lab-workspaces"),
            "IPYTHONDIR": str(home / "ipython"),
        }
        for plugin, settings in (user_settings or {}).items():
            path = Path(env["JUPYTERLAB_SETTINGS_DIR"], f"{plugin}.jupyterlab-settings")
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(json.dumps(settings))
        # Gateway settings come from the command line only, never from the caller's environment.
        for name in list(env):
            if name.startswith(("JUPYTER_GATEWAY_", "KERNEL_")):
                del env[name]
        cmd = [
            sys.executable,
            "-m",
            app,
            f"--port={self.port}",
            "--ServerApp.port_retries=0",
            "--ip=127.0.0.1",
            "--no-browser",
            *(["--allow-root"] if os.geteuid() == 0 else []),
            f"--ServerApp.root_dir={self.root_dir}",
            f"--gateway-url={gateway.url}",
            f"--GatewayClient.auth_token={gateway.token}",
            f"--IdentityProvider.token={self.token}",
            *args,
        ]
        self.log_path = tmp / f"{app}-{self.port}.log"
        self.log = open(self.log_path, "wb")
        self.proc = subprocess.Popen(cmd, stdout=self.log, stderr=subprocess.STDOUT, env=env, cwd=str(tmp))
        try:
            self._wait_ready(startup_timeout)
        except BaseException:
            self.stop()
            raise

    def _wait_ready(self, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"{self.proc.args[2]} exited with {self.proc.returncode}:\n{self.output()}")
            try:
                if httpx.get(f"{self.url}/api/status", headers=self.headers, timeout=5).status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            time.sleep(0.2)
        raise RuntimeError(f"{self.proc.args[2]} not ready after {timeout} s:\n{self.output()}")

    @property
    def headers(self) -> dict:
        return {"Authorization": f"token {self.token}"}

    def client(self) -> httpx.AsyncClient:
        return httpx.AsyncClient(base_url=self.url, headers=self.headers, timeout=90)

    def output(self) -> str:
        self.log.flush()
        return self.log_path.read_text(errors="replace")

    def stop(self) -> None:
        """SIGTERM (Jupyter Server then DELETEs its kernels on the gateway), SIGKILL after 30 s."""
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        if not self.log.closed:
            self.log.close()


def stop_gateway(gateway: GatewayProcess) -> list[str]:
    """Stop eg and kill any process it started that outlived it; return descriptions of those."""
    try:
        descendants = psutil.Process(gateway.proc.pid).children(recursive=True)
    except psutil.NoSuchProcess:
        descendants = []
    gateway.stop()
    _, alive = psutil.wait_procs(descendants, timeout=10)
    leaked = []
    for proc in alive:
        try:
            leaked.append(f"pid {proc.pid}: {' '.join(proc.cmdline())}")
            proc.kill()
        except psutil.NoSuchProcess:
            pass
    psutil.wait_procs(alive, timeout=10)
    return leaked


def failure_context(*procs) -> str:
    """The logs of the gateway and Jupyter processes, for an assertion message."""
    parts = []
    for p in procs:
        name = "eg gateway" if isinstance(p, GatewayProcess) else p.proc.args[2]
        parts.append(f"----- {name} log (tail) -----\n{p.output()[-6000:]}")
    return "\n".join(parts)
