"""Kernels as jobs of a real one-node Slurm cluster, through the gateway's API."""

from __future__ import annotations

import time

from eg_core.testing import KernelSocket, wait_until_busy


async def test_launch_execute_interrupt_restart_shutdown(gateway_factory, kernel_jobs):
    gw = gateway_factory()
    async with gw.client() as http:
        r = await http.post("/api/kernels", json={"name": "python_slurm_test", "env": {"KERNEL_NOTE": "it's; \"q\" &"}})
        assert r.status_code == 201, r.text
        kid = r.json()["id"]
        assert len(kernel_jobs(kid)) == 1 and "RUNNING" in kernel_jobs(kid)[0]
        ws = await KernelSocket.connect(gw, kid)
        out = await ws.execute("import os\ny = 41\nprint(y + 1, os.environ['KERNEL_NOTE'], 'SLURM_JOB_ID' in os.environ)")
        assert out["stdout"] == "42 it's; \"q\" & True\n", out

        msg_id = await ws.request("execute_request", {"code": "import time\ntime.sleep(60)", "silent": False})
        await wait_until_busy(http, kid)
        assert (await http.post(f"/api/kernels/{kid}/interrupt")).status_code == 204
        ename = None
        while True:
            msg = await ws.recv(timeout=30)
            if msg["parent_header"].get("msg_id") != msg_id:
                continue
            if msg["header"]["msg_type"] == "error":
                ename = msg["content"]["ename"]
            if msg["header"]["msg_type"] == "execute_reply":
                break
        assert ename == "KeyboardInterrupt"
        assert (await ws.execute("print(y)"))["stdout"] == "41\n"

        old_job = kernel_jobs(kid)[0].split()[0]
        r = await http.post(f"/api/kernels/{kid}/restart")
        assert r.status_code == 200, r.text
        assert (await ws.execute("print('y' in dir())"))["stdout"] == "False\n"
        jobs = kernel_jobs(kid)
        assert len(jobs) == 1 and jobs[0].split()[0] != old_job
        await ws.close()

        assert (await http.delete(f"/api/kernels/{kid}")).status_code == 204
        assert kernel_jobs(kid) == []
    assert "slurm: submitted job" in gw.output()


async def test_bad_kernelspec_setting_is_refused_before_submitting(gateway_factory, kernel_jobs):
    gw = gateway_factory()
    async with gw.client() as http:
        r = await http.post("/api/kernels", json={"name": "slurm_bad_config"})
        assert r.status_code == 400, r.text
        assert "partition" in r.json()["message"]
        assert (await http.get("/api/kernels")).json() == []
    assert "submitted job" not in gw.output()


async def test_failed_start_names_the_phase_and_leaves_nothing(gateway_factory, kernel_jobs):
    gw = gateway_factory()
    async with gw.client() as http:
        r = await http.post("/api/kernels", json={"name": "slurm_crash"})
        assert r.status_code == 502, r.text
        message = r.json()["message"]
        assert message.startswith(("confirm_startup:", "kernel_info:")) and "Slurm job" in message and "NoSuchKernel" in message, message
        r = await http.post("/api/kernels", json={"name": "slurm_bad_partition"})
        assert r.status_code == 502 and "launch_process" in r.json()["message"]
        assert "invalid partition" in r.json()["message"].lower(), r.text
        assert (await http.get("/api/kernels")).json() == []
    assert not [line for line in kernel_jobs("") if "RUNNING" in line or "PENDING" in line]
