"""A Slurm kernel's events through ``GET /api/kernels/{id}/events``: the backend log is the job's
output file (a real one-node Slurm cluster)."""

from __future__ import annotations

import uuid


async def test_a_jobs_events_carry_its_output_tail(gateway_factory, kernel_jobs):
    gw = gateway_factory()
    failed_id = str(uuid.uuid4())
    async with gw.client() as http:
        r = await http.post("/api/kernels", json={"name": "slurm_crash", "env": {"KERNEL_ID": failed_id}})
        assert r.status_code == 502, r.text
        failed = (await http.get(f"/api/kernels/{failed_id}/events")).json()["events"][-1]
        assert failed["event"] == "launch_failed" and failed["details"]["phase"] in ("confirm_startup", "kernel_info")
        assert any("NoSuchKernel" in line for line in failed["details"]["backend_log"]), failed

        running = await http.post("/api/kernels", json={"name": "python_slurm_test"})
        assert running.status_code == 201, running.text
        body = (await http.get(f"/api/kernels/{running.json()['id']}/events", params={"lines": "200"})).json()
        assert [e["event"] for e in body["events"] if e["event"] != "progress"] == ["requested", "launched"]
        assert body["backend_log"], body  # the launcher writes to the job's output from its start
