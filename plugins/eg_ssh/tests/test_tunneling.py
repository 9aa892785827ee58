"""SSH tunnelling of kernel ports (Enterprise Gateway's EG_ENABLE_TUNNELING) against the real
test sshd: the gateway talks to the kernel only through forwards on its SSH connection, also
after another gateway process adopted the kernel."""

from __future__ import annotations

import psutil
import pytest

from eg_ssh.testing import TEST_USERS, run_code, user_processes

pytestmark = pytest.mark.timeout(240)
USER = TEST_USERS[0]


def kernel_listening_ports(kernel_id: str) -> set[int]:
    pids = {int(line.split()[0]) for line in user_processes(USER, kernel_id)}
    ports = set()
    for pid in pids:
        for proc in [psutil.Process(pid), *psutil.Process(pid).children(recursive=True)]:
            ports |= {c.laddr.port for c in proc.net_connections("tcp") if c.status == psutil.CONN_LISTEN}
    return ports


def gateway_peer_ports(gw) -> set[int]:
    return {c.raddr.port for c in psutil.Process(gw.proc.pid).net_connections("tcp") if c.raddr}


async def test_kernel_ports_are_tunnelled_also_after_adoption(ssh_gateway, tmp_path):
    env = {"EG_ENABLE_TUNNELING": "true"}
    standalone = ("--Gateway.availability_mode=standalone", f"--FileSessionStore.persistence_root={tmp_path / 'store'}")
    first = ssh_gateway(*standalone, env=env)
    async with first.client() as http:
        r = await http.post("/api/kernels", json={"name": "python_ssh"})
        assert r.status_code == 201, r.text
        kid = r.json()["id"]
        assert (await run_code(first, kid, "x = 41"))["reply"]["status"] == "ok"
    assert "ssh: kernel ports tunnelled through" in first.output(), first.output()
    ports = kernel_listening_ports(kid)
    assert len(ports) >= 5 and not ports & gateway_peer_ports(first)  # nothing dialled directly
    first.stop()  # standalone: the kernel stays for the next gateway

    second = ssh_gateway(*standalone, "--Gateway.shutdown_kernels_on_exit=True", env=env)
    async with second.client() as http:
        assert (await http.get(f"/api/kernels/{kid}")).status_code == 200, second.output()
        out = await run_code(second, kid, "print(x + 1)")
        assert out["stdout"].strip() == "42"
        assert not kernel_listening_ports(kid) & gateway_peer_ports(second)
        assert (await http.delete(f"/api/kernels/{kid}")).status_code == 204
