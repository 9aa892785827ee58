"""A Slurm kernel's events through ``GET /api/kernels/{id}/events``: the backend log is the job's
output file (a real one-node Slurm cluster)."""

from __future__ import annotations

import uuid


async def test_a_failed_jobs_events_carry_its_output_tail(gateway_factory, kernel_jobs):
    gw = gateway_factory()
    kernel_id = str(uuid.uuid4())
    async with gw.client() as http:
        r = await http.post("/api/kernels", json={"name": "slurm_crash", "env": {"KERNEL_ID": kernel_id}})
        assert r.status_code == 502, r.text
        events = (await http.get(f"/api/kernels/{kernel_id}/events")).json()["events"]
    failed = events[-1]
    assert failed["event"] == "launch_failed" and failed["details"]["phase"] in ("confirm_startup", "kernel_info")
    assert any("NoSuchKernel" in line for line in failed["details"]["backend_log"]), failed


async def test_a_running_jobs_backend_log_is_its_output_file(gateway_factory, kernel_jobs):
    gw = gateway_factory()
    async with gw.client() as http:
        r = await http.post("/api/kernels", json={"name": "python_slurm_test"})
        assert r.status_code == 201, r.text
        kernel_id = r.json()["id"]
        body = (await http.get(f"/api/kernels/{kernel_id}/events", params={"lines": "200"})).json()
        assert [e["event"] for e in body["events"] if e["event"] != "progress"] == ["requested", "launched"]
        assert body["backend_log"], body  # the launcher writes to the job's output from its start
        assert (await http.delete(f"/api/kernels/{kernel_id}")).status_code == 204
