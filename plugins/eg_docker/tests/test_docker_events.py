"""A Docker kernel's events through ``GET /api/kernels/{id}/events``: the backend log is the
container's log (a real engine)."""

from __future__ import annotations

import uuid

import pytest

pytestmark = pytest.mark.timeout(240)


async def test_a_crashed_containers_launch_failed_event_carries_its_log(http, docker):
    kid = str(uuid.uuid4())
    r = await http.post("/api/kernels", json={"name": "docker_crash_at_start", "env": {"KERNEL_ID": kid}})
    assert r.status_code == 502, r.text
    events = (await http.get(f"/api/kernels/{kid}/events")).json()["events"]
    failed = events[-1]
    assert failed["event"] == "launch_failed" and failed["details"]["phase"] == "confirm_startup"
    assert "boom: this kernel cannot start" in failed["details"]["backend_log"]
    assert await docker.containers({"kernel_id": kid}) == []


async def test_a_running_containers_backend_log(http, docker):
    r = await http.post("/api/kernels", json={"name": "python_docker"})
    assert r.status_code == 201, r.text
    kid = r.json()["id"]
    body = (await http.get(f"/api/kernels/{kid}/events")).json()
    assert [e["event"] for e in body["events"] if e["event"] != "progress"] == ["requested", "launched"]
    assert body["backend_log"], body  # the launcher's lines in the container's log
    assert (await http.delete(f"/api/kernels/{kid}")).status_code == 204
