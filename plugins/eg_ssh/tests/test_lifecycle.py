"""A kernel on a remote host through the gateway's API: launch, execute, interrupt, restart,
shutdown, death, Enterprise Gateway's kernelspec, connection reuse. Real sshd, real kernels."""

from __future__ import annotations

import re
import time

from eg_core.testing import KernelSocket, wait_until_busy
from eg_ssh.testing import run_code, user_processes, wait_no_processes, where

USER = "egtest"


async def test_kernelspec_listed(ssh_gateway):
    gw = ssh_gateway()
    async with gw.client() as http:
        specs = (await http.get("/api/kernelspecs")).json()["kernelspecs"]
    assert "python_ssh" in specs
    assert specs["python_ssh"]["spec"]["metadata"]["kernel_provisioner"]["provisioner_name"] == "eg-ssh"
    assert "eg_distributed" in specs  # Enterprise Gateway's DistributedProcessProxy maps to ssh


async def test_launch_execute_interrupt_restart_shutdown(ssh_gateway, sshd):
    gw = ssh_gateway()
    async with gw.client() as http:
        r = await http.post("/api/kernels", json={"name": "python_ssh"})
        assert r.status_code == 201, r.text
        kid = r.json()["id"]
        assert await where(gw, kid) == (USER, "127.0.0.1")
        procs = user_processes(USER, kid)
        assert any("launch_ipykernel" in p for p in procs), procs

        ws = await KernelSocket.connect(gw, kid)
        out = await ws.execute("y = 123\nprint(y + 1)")
        assert out["stdout"] == "124\n" and out["reply"]["status"] == "ok"

        # interrupt (signal mode through the launcher's comm port): KeyboardInterrupt, state kept
        msg_id = await ws.request("execute_request", {"code": "import time\ntime.sleep(60)", "silent": False})
        await wait_until_busy(http, kid)
        start = time.monotonic()
        assert (await http.post(f"/api/kernels/{kid}/interrupt")).status_code == 204
        ename = None
        while True:
            msg = await ws.recv(timeout=15)
            if msg["parent_header"].get("msg_id") != msg_id:
                continue
            if msg["header"]["msg_type"] == "error":
                ename = msg["content"]["ename"]
            if msg["header"]["msg_type"] == "execute_reply":
                break
        assert ename == "KeyboardInterrupt" and time.monotonic() - start < 10
        assert (await ws.execute("print(y)"))["stdout"] == "123\n"

        # restart: a new process on the same host, same kernel id, state gone
        old = set(user_processes(USER, "launch_ipykernel"))
        r = await http.post(f"/api/kernels/{kid}/restart")
        assert r.status_code == 200, r.text
        out = await ws.execute("print(y)")
        assert out["errors"] == ["NameError"]
        assert (await ws.execute("print('after restart')"))["stdout"] == "after restart\n"
        new = set(user_processes(USER, "launch_ipykernel"))
        assert new and not (new & old), (old, new)
        await ws.close()
        assert await where(gw, kid) == (USER, "127.0.0.1")

        # shutdown: the API answers once the remote launcher and kernel are gone
        assert (await http.delete(f"/api/kernels/{kid}")).status_code == 204
        assert user_processes(USER, kid) == []
        assert (await http.get(f"/api/kernels/{kid}")).status_code == 404
    log = gw.output()
    assert re.search(r"ssh: launcher pid \d+ started on egtest@127\.0\.0\.1:\d+", log)
    assert "shut down in" in log


async def test_connection_reused_and_start_is_fast(ssh_gateway):
    """Kernels for the same (host, user) share one SSH connection; starts after the first do
    not pay for a connection."""
    gw = ssh_gateway()
    async with gw.client() as http:
        ids = []
        for _ in range(3):
            r = await http.post("/api/kernels", json={"name": "python_ssh"})
            assert r.status_code == 201, r.text
            ids.append(r.json()["id"])
        for kid in ids:
            assert (await http.delete(f"/api/kernels/{kid}")).status_code == 204
    log = gw.output()
    assert log.count("SSH connection to egtest@127.0.0.1") == 1, log
    starts = [float(t) for t in re.findall(r"launch_process (\d+\.\d+)s", log)]
    assert len(starts) == 3 and max(starts[1:]) < 0.5, starts


async def test_kernel_that_dies_is_seen_at_once(ssh_gateway):
    """A remote kernel killed behind the gateway's back: the launcher's channel ends at once, the
    gateway reports the death (exit status from the remote host), and a restart brings it back."""
    gw = ssh_gateway()
    async with gw.client() as http:
        r = await http.post("/api/kernels", json={"name": "python_ssh"})
        kid = r.json()["id"]
        ws = await KernelSocket.connect(gw, kid)
        await ws.execute("x = 1")
        await ws.request("execute_request", {"code": "import os, signal; os.kill(os.getpid(), signal.SIGKILL)", "silent": False})
        states = []
        while "dead" not in states:
            msg = await ws.recv(timeout=15)
            if msg["header"]["msg_type"] == "status":
                states.append(msg["content"]["execution_state"])
        # (the core's auto-restart may be under way; an explicit restart waits for it)
        assert (await http.post(f"/api/kernels/{kid}/restart")).status_code == 200
        out = await ws.execute("print('alive again')")
        assert out["stdout"] == "alive again\n"
        await ws.close()
        assert (await http.delete(f"/api/kernels/{kid}")).status_code == 204
    assert re.search(r"died with status 137", gw.output())  # the launcher's status: 128 + SIGKILL


async def test_enterprise_gateway_kernelspec(ssh_gateway):
    """EG's python_distributed kernelspec as shipped (DistributedProcessProxy, the launcher path
    on the remote host, --RemoteProcessProxy.* arguments, config.remote_hosts as a comma string)
    runs with only Python and ipykernel on the host."""
    gw = ssh_gateway(hosts=["127.0.0.1", "127.0.0.2"])
    async with gw.client() as http:
        r = await http.post("/api/kernels", json={"name": "eg_distributed"})
        assert r.status_code == 201, r.text
        kid = r.json()["id"]
        assert await where(gw, kid) == (USER, "127.0.0.2")
        assert (await run_code(gw, kid, "print(6 * 7)"))["stdout"] == "42\n"
        assert (await http.delete(f"/api/kernels/{kid}")).status_code == 204
    assert await wait_no_processes(USER) == []


async def test_gateway_stop_shuts_remote_kernels_down(ssh_gateway):
    gw = ssh_gateway()
    async with gw.client() as http:
        r = await http.post("/api/kernels", json={"name": "python_ssh"})
        kid = r.json()["id"]
    assert user_processes(USER, kid)
    gw.stop()
    assert await wait_no_processes(USER, kid) == []


async def test_killed_gateway_without_persistence_takes_its_kernels_along(ssh_gateway):
    """With no session store, a SIGKILLed gateway's lease connection closes and the launcher
    stops its kernel; no other gateway has to start."""
    gw = ssh_gateway("--Gateway.kernel_session_persistence=False")
    async with gw.client() as http:
        r = await http.post("/api/kernels", json={"name": "python_ssh"})
        assert r.status_code == 201, r.text
        kid = r.json()["id"]
    assert (await run_code(gw, kid, "print(6 * 7)"))["stdout"] == "42\n"
    assert user_processes(USER, kid)
    gw.proc.kill()
    gw.proc.wait()
    assert await wait_no_processes(USER, kid, timeout=60) == []


async def test_more_kernels_than_sshd_max_sessions(gateway_factory, tmp_path):
    """sshd allows 2 sessions per connection here; the gateway is told 8: the third kernel's
    channel is refused, and the pool opens a second connection for it."""
    from eg_ssh.testing import TestSSHD

    small = TestSSHD(addresses=("127.0.0.1",), max_sessions=2).start()
    try:
        (tmp_path / "cfg").mkdir()
        (tmp_path / "cfg" / "eg_gateway_config.py").write_text(small.gateway_config(max_sessions_per_connection=8))
        gw = gateway_factory(env={"JUPYTER_CONFIG_DIR": str(tmp_path / "cfg"), "EG_RESPONSE_PORT": "0"})
        async with gw.client() as http:
            ids = []
            for _ in range(3):
                r = await http.post("/api/kernels", json={"name": "python_ssh"})
                assert r.status_code == 201, r.text
                ids.append(r.json()["id"])
            for kid in ids:
                assert (await run_code(gw, kid, "print('ok')"))["stdout"] == "ok\n"
                assert (await http.delete(f"/api/kernels/{kid}")).status_code == 204
        log = gw.output()
        assert "refused a new session" in log
        assert log.count(f"SSH connection to egtest@127.0.0.1:{small.port} opened") == 2, log
    finally:
        small.stop()
