"""Several hosts: round-robin and least-connection, KERNEL_REMOTE_HOST, kernelspec overrides, a
host that is down. 127.0.0.1 and 127.0.0.2 are served by the test sshd; nothing listens on
127.0.0.3. Each kernel tells where it runs (its SSH_CONNECTION)."""

from __future__ import annotations

import re
import time

from eg_ssh.testing import where

H1, H2, DOWN = "127.0.0.1", "127.0.0.2", "127.0.0.3"


async def start(http, name="python_ssh", **env) -> str:
    r = await http.post("/api/kernels", json={"name": name, "env": env})
    assert r.status_code == 201, r.text
    return r.json()["id"]


async def test_round_robin(ssh_gateway):
    gw = ssh_gateway(hosts=[H1, H2], load_balancing_algorithm="round-robin")
    async with gw.client() as http:
        ids = [await start(http) for _ in range(4)]
        placed = [(await where(gw, kid))[1] for kid in ids]
        assert placed == [H1, H2, H1, H2]
        # round-robin ignores load: after deleting the kernel on H2 the next one still goes to H1
        await http.delete(f"/api/kernels/{ids[1]}")
        await http.delete(f"/api/kernels/{ids[3]}")
        kid = await start(http)
        assert (await where(gw, kid))[1] == H1
        for k in (ids[0], ids[2], kid):
            await http.delete(f"/api/kernels/{k}")


async def test_least_connection(ssh_gateway):
    gw = ssh_gateway(env={"EG_LOAD_BALANCING_ALGORITHM": "least-connection", "EG_REMOTE_HOSTS": f"{H1},{H2}"}, hosts=False)
    async with gw.client() as http:
        k1, k2 = await start(http), await start(http)
        assert [(await where(gw, k))[1] for k in (k1, k2)] == [H1, H2]
        await http.delete(f"/api/kernels/{k2}")
        # H1 runs one kernel, H2 none: least-connection picks H2 (round-robin would pick H1)
        k3 = await start(http)
        assert (await where(gw, k3))[1] == H2
        k4 = await start(http)  # a tie: the first configured host
        assert (await where(gw, k4))[1] == H1
        for k in (k1, k3, k4):
            await http.delete(f"/api/kernels/{k}")


async def test_kernel_remote_host_picks_a_configured_host(ssh_gateway):
    gw = ssh_gateway(hosts=[H1, H2])
    async with gw.client() as http:
        for _ in range(2):
            kid = await start(http, KERNEL_REMOTE_HOST=H2)
            assert (await where(gw, kid))[1] == H2
            await http.delete(f"/api/kernels/{kid}")
        r = await http.post("/api/kernels", json={"name": "python_ssh", "env": {"KERNEL_REMOTE_HOST": "10.1.2.3"}})
        assert r.status_code == 400, r.text
        assert "KERNEL_REMOTE_HOST" in r.json()["message"] and "not one of the remote hosts" in r.json()["message"]


async def test_kernelspec_overrides_hosts(ssh_gateway):
    gw = ssh_gateway(hosts=[H1])
    async with gw.client() as http:
        kid = await start(http, "ssh_host2")
        assert (await where(gw, kid))[1] == H2
        await http.delete(f"/api/kernels/{kid}")


async def test_down_host_is_skipped_with_a_reason(ssh_gateway):
    gw = ssh_gateway(hosts=[DOWN, H1, H2], load_balancing_algorithm="round-robin")
    async with gw.client() as http:
        ids = [await start(http) for _ in range(3)]
        placed = [(await where(gw, kid))[1] for kid in ids]
        assert DOWN not in placed and set(placed) == {H1, H2}, placed
        for kid in ids:
            await http.delete(f"/api/kernels/{kid}")
    log = gw.output()
    assert re.search(rf"ssh: skipping host {re.escape(DOWN)}: cannot connect to {re.escape(DOWN)}:\d+: Connection refused", log), log
    # once seen down, the host is tried last, not on every launch
    assert log.count(f"skipping host {DOWN}") == 1


async def test_all_hosts_down(ssh_gateway):
    gw = ssh_gateway(hosts=[DOWN, "127.0.0.4"])
    async with gw.client() as http:
        start_time = time.monotonic()
        r = await http.post("/api/kernels", json={"name": "python_ssh"})
    assert r.status_code == 502, r.text
    message = r.json()["message"]
    assert message.startswith("launch_process: no remote host could be reached")
    assert f"{DOWN}: cannot connect" in message and "127.0.0.4: cannot connect" in message
    assert time.monotonic() - start_time < 5


async def test_explicit_host_that_is_down_fails(ssh_gateway):
    gw = ssh_gateway(hosts=[H1, DOWN])
    async with gw.client() as http:
        r = await http.post("/api/kernels", json={"name": "python_ssh", "env": {"KERNEL_REMOTE_HOST": DOWN}})
    assert r.status_code == 502 and "Connection refused" in r.json()["message"], r.text


async def test_restart_keeps_the_host(ssh_gateway):
    gw = ssh_gateway(hosts=[H1, H2], load_balancing_algorithm="round-robin")
    async with gw.client() as http:
        kid = await start(http)
        assert (await where(gw, kid))[1] == H1
        for _ in range(2):  # round-robin alone would move it to H2, then back
            assert (await http.post(f"/api/kernels/{kid}/restart")).status_code == 200
            assert (await where(gw, kid))[1] == H1
        await http.delete(f"/api/kernels/{kid}")


async def test_published_hosts_are_the_ones_a_request_may_name(ssh_gateway):
    """``metadata.parameters`` offers KERNEL_REMOTE_HOST as one of the kernelspec's hosts: a
    kernel starts on each, and any other host is refused with a 400 naming the variable."""
    from eg_core.testing import check_launch_parameters

    gw = ssh_gateway(hosts=[H1, H2])
    async with gw.client() as http:
        schema = await check_launch_parameters(http, "python_ssh")
    assert schema["properties"]["KERNEL_REMOTE_HOST"]["enum"] == [H1, H2]
