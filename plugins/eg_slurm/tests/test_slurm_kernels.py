"""Kernels as jobs of a real one-node Slurm cluster, through the gateway's API."""

from __future__ import annotations

import subprocess
import tempfile
import time
from pathlib import Path

from eg_core.testing import (
    KernelSocket, places_with, processes_of_kernel, store_args, stored_launch_key, wait_until_busy,
)


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


def _run(*argv: str) -> str:
    return subprocess.run(argv, capture_output=True, text=True, check=True).stdout


async def test_launch_key_is_in_nothing_slurm_shows(gateway_factory, kernel_jobs, tmp_path):
    """The job's environment names the key file only: ``scontrol show job -dd``, ``squeue``, the
    batch script and the environment slurmctld keeps for the job (what ``sacct --env-vars``
    shows where job_env is stored) never hold the key, nor do the job's processes; the 0600
    key file in the output directory is gone once the kernel is up."""
    gw = gateway_factory(*store_args(tmp_path / "store"))
    async with gw.client() as http:
        r = await http.post("/api/kernels", json={"name": "python_slurm_test"})
        assert r.status_code == 201, r.text
        kid = r.json()["id"]
        key = stored_launch_key(tmp_path / "store", kid)
        job_id = kernel_jobs(kid)[0].split()[0]
        state_dir = next(line.split("=", 1)[1].strip() for line in _run("scontrol", "show", "config").splitlines()
                         if line.startswith("StateSaveLocation"))
        [stored_env] = Path(state_dir).glob(f"hash.*/job.{job_id}/environment")
        assert b"EG_LAUNCH_KEY_FILE=" in stored_env.read_bytes()
        pids = [line.split()[0] for line in (await processes_of_kernel(kid))]
        shown = {
            "scontrol show job -dd": _run("scontrol", "show", "job", "-dd", job_id),
            "squeue": _run("squeue", "-j", job_id, "-o", "%all"),
            "batch script": _run("scontrol", "write", "batch_script", job_id, "-"),
            "stored job environment": stored_env.read_bytes(),
            "ps": _run("ps", "-eo", "args"),
            **{f"environ of {pid}": Path(f"/proc/{pid}/environ").read_bytes() for pid in pids},
        }
        assert pids and places_with(key, **shown) == []
        assert not list(Path(tempfile.gettempdir()).glob(f"eg-key-{kid}-*")), "the key file is gone once the kernel is up"
        assert (await http.delete(f"/api/kernels/{kid}")).status_code == 204
