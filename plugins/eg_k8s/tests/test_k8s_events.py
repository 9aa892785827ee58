"""A pod kernel's events through ``GET /api/kernels/{id}/events``: the pod's own launch steps
among the phases, and the backend log is the pod's events and its container's log (a real
cluster)."""

from __future__ import annotations

import uuid

import pytest

pytestmark = pytest.mark.timeout(300)


async def test_a_pods_events_and_log(gateway, http):
    r = await http.post("/api/kernels", json={"name": "python_kubernetes"})
    assert r.status_code == 201, r.text
    kid = r.json()["id"]
    body = (await http.get(f"/api/kernels/{kid}/events", params={"lines": "200"})).json()
    steps = [e["details"]["step"] for e in body["events"] if e["event"] == "progress"]
    assert "scheduled" in steps and "started" in steps and steps[-1] == "kernel_info", steps
    assert any(line.startswith("pod event: Normal Scheduled") for line in body["backend_log"]), body["backend_log"]
    assert (await http.delete(f"/api/kernels/{kid}")).status_code == 204


async def test_an_image_that_cannot_be_had_shows_in_the_failed_launchs_pod_events(gateway, http):
    kid = str(uuid.uuid4())
    r = await http.post("/api/kernels", json={"name": "k8s_never_pull", "env": {"KERNEL_ID": kid}})
    assert r.status_code == 502, r.text
    failed = (await http.get(f"/api/kernels/{kid}/events")).json()["events"][-1]
    assert failed["event"] == "launch_failed" and failed["details"]["phase"] == "image_pull", failed
    assert any("ErrImageNeverPull" in line for line in failed["details"]["backend_log"]), failed
