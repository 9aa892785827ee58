"""The ``events`` and ``metrics`` builtin plugins, against a real gateway and real (tiny) kernels.

One module-scoped gateway runs a scripted activity (a kernel started, connected, used,
interrupted, restarted and shut down; a failed launch; a second kernel left running); the tests
read its log (one JSON line per lifecycle event, no environment) and its ``/metrics``.
"""

from __future__ import annotations

import asyncio
import json
import random
import re
import uuid

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from eg_core.testing import GatewayProcess, KernelSocket

EVENT_LINE = re.compile(r"\beg\.events\] (\{.*\})$")
SECRET_NAME = "KERNEL_SECRET_TOKEN"
SECRET_VALUE = "s3cr3t-" + uuid.uuid4().hex
LAUNCH_PHASES = {"before_launch", "launch_process", "confirm_startup", "connection_info", "kernel_info"}


def events(gw) -> list[dict]:
    return [json.loads(m.group(1)) for line in gw.output().splitlines() if (m := EVENT_LINE.search(line))]


def samples(text: str) -> dict[tuple, float]:
    """{(sample name, sorted label items): value} of a Prometheus text exposition."""
    return {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
    }


def value(metrics: dict, name: str, **labels) -> float:
    return metrics[(name, tuple(sorted(labels.items())))]


async def activity(gw) -> dict:
    """Drive one kernel through its whole lifecycle; return what the tests check against."""
    async with gw.client() as http:
        r = await http.post(
            "/api/kernels",
            json={"name": "tiny", "env": {"KERNEL_USERNAME": "alice", SECRET_NAME: SECRET_VALUE}},
        )
        assert r.status_code == 201, r.text
        kernel_id = r.json()["id"]
        ks = await KernelSocket.connect(gw, kernel_id)
        for code in ("1", "2", "3"):
            assert (await ks.execute(code))["reply"]["status"] == "ok"
        await ks.close()
        assert (await http.post(f"/api/kernels/{kernel_id}/interrupt")).status_code == 204
        assert (await http.post(f"/api/kernels/{kernel_id}/restart")).status_code == 200
        assert (await http.delete(f"/api/kernels/{kernel_id}")).status_code == 204
        failed = await http.post("/api/kernels", json={"name": "crash_at_start", "env": {SECRET_NAME: SECRET_VALUE}})
        assert failed.status_code == 502, failed.text
        r = await http.post("/api/kernels", json={"name": "tiny"})
        assert r.status_code == 201
        # let the websocket's 'disconnected' event land before the tests read the log
        await asyncio.sleep(0.3)
        return {"kernel_id": kernel_id, "running_id": r.json()["id"], "messages_sent": 3}


@pytest.fixture(scope="module")
def used_gateway(tmp_path_factory, kernel_spec_dirs):
    gw = GatewayProcess(tmp_path_factory.mktemp("gw"), kernel_spec_dirs=kernel_spec_dirs)
    try:
        facts = asyncio.run(activity(gw))
        yield gw, facts
    finally:
        gw.stop()


# -- events ----------------------------------------------------------------------------------


def test_one_json_line_per_lifecycle_event(used_gateway):
    gw, facts = used_gateway
    kernel_id = facts["kernel_id"]
    mine = [e for e in events(gw) if e["kernel_id"] == kernel_id and e["event"] != "progress"]
    assert [e["event"] for e in mine] == [
        "requested", "launched", "connected", "disconnected", "interrupted", "restarted", "shut_down",
    ]
    for e in mine:
        assert set(e) == {"time", "event", "kernel_id", "kernelspec", "resource_manager", "user", "details"}
        assert (e["kernelspec"], e["resource_manager"], e["user"]) == ("tiny", "local", "alice")
    by_event = {e["event"]: e["details"] for e in mine}
    launched = by_event["launched"]
    assert set(launched["phases"]) == LAUNCH_PHASES
    assert 0 < launched["duration"] < 30 and all(v >= 0 for v in launched["phases"].values())
    assert set(by_event["restarted"]["phases"]) >= {"launch_process", "kernel_info"}
    phases = [e["details"] for e in events(gw) if e["kernel_id"] == kernel_id and e["event"] == "progress"]
    assert [p["step"] for p in phases][: len(LAUNCH_PHASES)] == list(launched["phases"])  # each phase as it ended
    assert by_event["connected"]["connections"] == 1 and by_event["disconnected"]["connections"] == 0


def test_failed_launch_event_names_phase_and_error(used_gateway):
    gw, _ = used_gateway
    failed = [e for e in events(gw) if e["event"] == "launch_failed"]
    assert len(failed) == 1
    assert failed[0]["kernelspec"] == "crash_at_start"
    assert failed[0]["details"]["phase"] == "kernel_info"
    assert "boom: this kernel cannot start" in failed[0]["details"]["error"]
    assert "[I " in next(line for line in gw.output().splitlines() if '"launch_failed"' in line)  # the ERROR line is the core's


def test_event_lines_hold_no_environment(used_gateway):
    gw, _ = used_gateway
    lines = [line for line in gw.output().splitlines() if "eg.events]" in line]
    assert len(lines) >= 10
    for line in lines:
        assert SECRET_VALUE not in line and SECRET_NAME not in line
    assert SECRET_VALUE not in gw.output()  # nor anywhere else in the gateway's log


# -- metrics ---------------------------------------------------------------------------------


async def test_metrics_require_the_token(used_gateway):
    gw, _ = used_gateway
    async with httpx.AsyncClient(base_url=gw.url) as anon:
        r = await anon.get("/metrics")
        assert r.status_code == 401 and r.json()["reason"] == "Unauthorized"
        r = await anon.get("/metrics", headers={"Authorization": "Bearer wrong"})
        assert r.status_code == 401
        r = await anon.get("/metrics", headers={"Authorization": f"Bearer {gw.token}"})  # Prometheus' way
        assert r.status_code == 200
        assert r.headers["content-type"].startswith("text/plain; version=0.0.4")
        r = await anon.get("/metrics", headers={"Authorization": f"Bearer {gw.token}", "Accept": "application/openmetrics-text"})
        assert r.headers["content-type"].startswith("application/openmetrics-text") and r.text.endswith("# EOF\n")


async def test_metrics_after_activity(used_gateway):
    gw, facts = used_gateway
    async with gw.client() as http:
        ks = await KernelSocket.connect(gw, facts["running_id"])
        await asyncio.sleep(0.1)
        m = samples((await http.get("/metrics")).text)
        await ks.close()
    assert value(m, "eg_kernels", kernelspec="tiny", resource_manager="local", execution_state="idle") == 1
    assert value(m, "eg_kernels", kernelspec="tiny", resource_manager="local", execution_state="busy") == 0
    assert value(m, "eg_websocket_connections", kernelspec="tiny") == 1
    assert value(m, "eg_kernels_launching") == 0
    assert value(m, "eg_kernel_launches_total", kernelspec="tiny", resource_manager="local") == 2
    assert value(m, "eg_kernel_launch_failures_total", kernelspec="crash_at_start", resource_manager="local", phase="kernel_info") == 1
    assert value(m, "eg_kernel_launch_duration_seconds_count", kernelspec="tiny", resource_manager="local") == 2
    assert value(m, "eg_kernel_launch_duration_seconds_bucket", kernelspec="tiny", resource_manager="local", le="+Inf") == 2
    assert 0 < value(m, "eg_kernel_launch_duration_seconds_sum", kernelspec="tiny", resource_manager="local") < 60
    for phase in LAUNCH_PHASES:
        assert value(m, "eg_kernel_launch_phase_duration_seconds_count", kernelspec="tiny", phase=phase) == 2
    for event, count in [("requested", 2), ("launched", 2), ("restarted", 1), ("interrupted", 1), ("shut_down", 1), ("connected", 2)]:
        assert value(m, "eg_kernel_events_total", event=event, kernelspec="tiny") == count, event
    assert value(m, "eg_kernel_events_total", event="launch_failed", kernelspec="crash_at_start") == 1
    # three execute_requests went to the kernel; each brought back at least a reply and two statuses
    assert value(m, "eg_messages_relayed_total", direction="to_kernel") == facts["messages_sent"]
    assert value(m, "eg_messages_relayed_total", direction="from_kernel") >= 3 * facts["messages_sent"]
    assert value(m, "process_resident_memory_bytes") > 0
    assert value(m, "process_open_fds") > 0


# -- load ------------------------------------------------------------------------------------


async def test_concurrent_requests_while_kernels_start(gateway_factory):
    """200 concurrent REST requests (kernel list, kernel models, kernelspecs, /metrics) while 8
    kernels start: no 5xx, every kernel accounted for."""
    gw = gateway_factory()
    limits = httpx.Limits(max_connections=200, max_keepalive_connections=50)
    async with httpx.AsyncClient(base_url=gw.url, headers=gw.headers, timeout=90, limits=limits) as http:
        first = (await http.post("/api/kernels", json={"name": "tiny"})).json()["id"]
        new_ids = [str(uuid.uuid4()) for _ in range(8)]
        rng = random.Random(7)
        paths = []
        for i in range(200):
            kind = i % 4
            if kind == 0:
                paths.append("/api/kernels")
            elif kind == 1:
                paths.append(f"/api/kernels/{rng.choice([first, *new_ids])}")
            elif kind == 2:
                paths.append("/api/kernelspecs")
            else:
                paths.append("/metrics")
        rng.shuffle(paths)

        async def start(kernel_id):
            return await http.post("/api/kernels", json={"name": "tiny", "env": {"KERNEL_ID": kernel_id}})

        starts = [asyncio.ensure_future(start(k)) for k in new_ids]
        gets = await asyncio.gather(*(http.get(p) for p in paths))
        started = await asyncio.gather(*starts)
        assert [r.status_code for r in started] == [201] * 8, [r.text for r in started]
        errors = [(r.request.url.path, r.status_code, r.text) for r in gets if r.status_code >= 500]
        assert errors == []
        for r in gets:
            # a kernel still starting is 404 until launched; nothing else may fail
            assert r.status_code == 200 or (r.status_code == 404 and "/api/kernels/" in r.request.url.path), r.text
            if r.request.url.path == "/metrics":
                text_string_to_metric_families(r.text)  # a consistent exposition even mid-launch
        listed = {k["id"] for k in (await http.get("/api/kernels")).json()}
        assert listed == {first, *new_ids}
        m = samples((await http.get("/metrics")).text)
        held = sum(v for (name, labels), v in m.items() if name == "eg_kernels" and ("kernelspec", "tiny") in labels)
        assert held == 9
        assert value(m, "eg_kernel_launches_total", kernelspec="tiny", resource_manager="local") == 9
        deleted = await asyncio.gather(*(http.delete(f"/api/kernels/{k}") for k in listed))
        assert {r.status_code for r in deleted} == {204}
