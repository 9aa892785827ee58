"""Startup errors about the response listener (it starts at startup because eg-ssh is a remote
resource manager): a busy response port names the option, or is replaced by a free one."""

from __future__ import annotations

import socket

from eg_core.testing import GatewayProcess, gateway_exit


def busy_port() -> socket.socket:
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    s.listen()
    return s


def test_busy_response_port_set_by_the_operator_names_the_option(tmp_path):
    with busy_port() as s:
        port = s.getsockname()[1]
        result = gateway_exit(tmp_path, "--no-auth", env={"EG_RESPONSE_PORT": str(port), "EG_RESPONSE_PORT_RETRIES": "0"})
    assert result.returncode != 0
    lines = result.stderr.strip().splitlines()
    assert lines[-1] == (
        f"eg-gateway: response port {port} is in use (another gateway on this host?): set "
        "ResponseListener.response_address (or EG_RESPONSE_PORT) to a free port, or port 0 for any free port"
    ), result.stderr
    assert "Traceback" not in result.stderr


def test_busy_default_response_port_falls_back_to_a_free_one(tmp_path):
    """A second gateway on a host: the default response port (8877) is taken, by us here or by
    another gateway; with no retries left the gateway picks a free port and says so."""
    holder = socket.socket()
    try:
        holder.bind(("127.0.0.1", 8877))
        holder.listen()
    except OSError:
        pass  # already in use: just as good
    gw = GatewayProcess(tmp_path, "--ResponseListener.port_retries=0", response_address=None)
    try:
        assert gw.proc.poll() is None
        assert "Response port 8877 is in use; using the free port" in gw.output()
    finally:
        gw.stop()
        holder.close()


def test_prohibited_local_ips_refuse_the_response_address(tmp_path):
    result = gateway_exit(tmp_path, "--no-auth", env={"EG_RESPONSE_ADDRESS": "127.0.0.1:0", "EG_PROHIBITED_LOCAL_IPS": "127.0.0.*"})
    assert result.returncode != 0
    assert "matches prohibited_local_ips (EG_PROHIBITED_LOCAL_IPS)" in result.stderr.strip().splitlines()[-1]
