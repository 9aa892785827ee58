"""Startup errors that name the fix: busy ports (the gateway's and the response listener's)."""

from __future__ import annotations

import socket

from eg_core.testing import GatewayProcess, gateway_exit


def busy_port() -> socket.socket:
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    s.listen()
    return s


def test_busy_gateway_port_names_the_option(tmp_path):
    with busy_port() as s:
        port = s.getsockname()[1]
        result = gateway_exit(tmp_path, "--no-auth", f"--port={port}")
    assert result.returncode != 0
    assert result.stderr.strip().splitlines()[-1] == (
        f"eg-gateway: port {port} is in use: choose another with --port (EG_PORT), "
        "or let eg try more with --port-retries (EG_PORT_RETRIES)"
    )
    assert "Traceback" not in result.stderr
