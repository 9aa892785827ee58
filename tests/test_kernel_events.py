"""``GET /api/kernels/{id}/events``: a kernel's lifecycle events with phase timings and its
backend's log tail, for its owner only; ``?follow=1`` streams a launch as server-sent events.
Real gateways, real ipykernel (and crashing) processes, real HTTP clients."""

from __future__ import annotations

import asyncio
import json
import uuid

import httpx
import pytest

from eg_core.testing import KernelSocket

pytestmark = pytest.mark.timeout(240)

USERS = {"alice": "alice-secret", "bob": "bob-secret"}
LAUNCH_PHASES = ["before_launch", "launch_process", "confirm_startup", "connection_info", "kernel_info"]


@pytest.fixture
def users_gateway(gateway_factory, tmp_path):
    """A gateway whose users (alice, bob) have tokens of their own."""
    (tmp_path / "users.json").write_text(json.dumps(USERS))
    return gateway_factory(f"--Gateway.users_file={tmp_path / 'users.json'}")


async def sse_records(response: httpx.Response):
    """The events of a server-sent event stream, each as it arrives."""
    event = None
    async for line in response.aiter_lines():
        if line.startswith("event: "):
            event = line[len("event: "):]
        elif line.startswith("data: "):
            record = json.loads(line[len("data: "):])
            assert record["event"] == event
            yield record


async def sse(response: httpx.Response) -> list[dict]:
    """The events of a server-sent event stream, read to its end."""
    return [record async for record in sse_records(response)]


def phases_of(records: list[dict]) -> list[str]:
    return [r["details"]["step"] for r in records if r["event"] == "progress"]


async def test_a_kernels_life_with_phase_timings_and_its_output(users_gateway):
    gw = users_gateway
    async with gw.client("alice-secret") as alice:
        r = await alice.post("/api/kernels", json={"name": "python3"})
        assert r.status_code == 201, r.text
        kernel_id = r.json()["id"]
        ks = await KernelSocket.connect(gw, kernel_id, headers={"Authorization": "token alice-secret"})
        assert (await ks.execute("print('hello from the kernel', flush=True)"))["reply"]["status"] == "ok"
        await ks.close()
        assert (await alice.post(f"/api/kernels/{kernel_id}/interrupt")).status_code == 204
        assert (await alice.post(f"/api/kernels/{kernel_id}/restart")).status_code == 200

        r = await alice.get(f"/api/kernels/{kernel_id}/events", params={"lines": "20"})
        assert r.status_code == 200, r.text
        body = r.json()
        assert body["id"] == kernel_id and isinstance(body["backend_log"], list) and len(body["backend_log"]) <= 20
        names = [e["event"] for e in body["events"] if e["event"] != "progress"]
        assert names == ["requested", "launched", "connected", "disconnected", "interrupted", "restarted"]
        events = body["events"]
        assert all((e["kernel_id"], e["user"], e["kernelspec"], e["resource_manager"]) == (kernel_id, "alice", "python3", "local") for e in events)
        launched = next(e for e in events if e["event"] == "launched")
        assert list(launched["details"]["phases"]) == LAUNCH_PHASES
        first_launch = events[: events.index(launched)]
        assert phases_of(first_launch) == LAUNCH_PHASES  # each phase an event as it ended, in order
        assert all(r["details"]["seconds"] >= 0 for r in first_launch if r["event"] == "progress")
        restarted = next(e for e in events if e["event"] == "restarted")
        assert {"launch_process", "kernel_info"} <= set(restarted["details"]["phases"])

        assert (await alice.delete(f"/api/kernels/{kernel_id}")).status_code == 204
        r = await alice.get(f"/api/kernels/{kernel_id}/events")
        assert r.status_code == 200  # kept a while after the kernel ended
        assert r.json()["events"][-1]["event"] == "shut_down" and r.json()["backend_log"] == []
        # a follower of an ended kernel gets its events and the stream ends
        async with alice.stream("GET", f"/api/kernels/{kernel_id}/events", params={"follow": "1"}) as stream:
            assert stream.headers["content-type"].startswith("text/event-stream")
            assert [e["event"] for e in await sse(stream)][-1] == "shut_down"


async def test_the_backend_log_tail_is_the_kernels_output_without_its_environment(users_gateway):
    gw = users_gateway
    async with gw.client("alice-secret") as alice:
        secret = "s3cr3t-" + uuid.uuid4().hex
        r = await alice.post("/api/kernels", json={"name": "python3", "env": {"KERNEL_SECRET_TOKEN": secret}})
        kernel_id = r.json()["id"]
        ks = await KernelSocket.connect(gw, kernel_id, headers={"Authorization": "token alice-secret"})
        code = "import os, sys; print('to the process stderr', os.environ['KERNEL_SECRET_TOKEN'], file=sys.__stderr__, flush=True)"
        assert (await ks.execute(code))["reply"]["status"] == "ok"
        await ks.close()
        body = (await alice.get(f"/api/kernels/{kernel_id}/events")).json()
        assert "to the process stderr ***" in body["backend_log"]  # the kernel's environment stays out
        assert secret not in json.dumps(body)
        assert (await alice.get(f"/api/kernels/{kernel_id}/events", params={"lines": "0"})).json()["backend_log"] == []


async def test_another_users_kernel_and_an_unknown_id_are_404_alike(users_gateway):
    gw = users_gateway
    async with gw.client("alice-secret") as alice, gw.client("bob-secret") as bob:
        kernel_id = (await alice.post("/api/kernels", json={"name": "python3"})).json()["id"]
        unknown = str(uuid.uuid4())
        mine, unknown_r = await bob.get(f"/api/kernels/{kernel_id}/events"), await bob.get(f"/api/kernels/{unknown}/events")
        assert mine.status_code == unknown_r.status_code == 404
        assert mine.json() == {k: v.replace(unknown, kernel_id) for k, v in unknown_r.json().items()}
        assert (await alice.delete(f"/api/kernels/{kernel_id}")).status_code == 204
        assert (await bob.get(f"/api/kernels/{kernel_id}/events")).status_code == 404  # nor once it ended
        async with httpx.AsyncClient(base_url=gw.url) as anonymous:
            assert (await anonymous.get(f"/api/kernels/{kernel_id}/events")).status_code == 401


async def test_bad_parameters_are_400(gateway):
    async with gateway.client() as http:
        for params in ({"lines": "-1"}, {"lines": "many"}, {"lines": "100000"}, {"follow": "maybe"}):
            r = await http.get(f"/api/kernels/{uuid.uuid4()}/events", params=params)
            assert r.status_code == 400 and r.json()["reason"] == "Bad Request", params
            assert set(r.json()) == {"reason", "message"}


async def test_a_failed_launch_names_the_phase_with_the_backend_log(gateway):
    async with gateway.client() as http:
        kernel_id = str(uuid.uuid4())
        r = await http.post("/api/kernels", json={"name": "crash_at_start", "env": {"KERNEL_ID": kernel_id}})
        assert r.status_code == 502, r.text
        r = await http.get(f"/api/kernels/{kernel_id}/events")
        assert r.status_code == 200, r.text
        events = r.json()["events"]
        assert [e["event"] for e in events if e["event"] != "progress"] == ["requested", "launch_failed"]
        failed = events[-1]["details"]
        assert failed["phase"] == "kernel_info" and "boom: this kernel cannot start" in failed["error"]
        assert "boom: this kernel cannot start" in failed["backend_log"]


async def test_a_follower_started_before_the_post_sees_the_phases_as_they_happen(users_gateway):
    gw = users_gateway
    kernel_id = str(uuid.uuid4())
    answered = asyncio.Event()  # the POST was answered
    async with gw.client("alice-secret") as alice, gw.client("bob-secret") as bob:
        async def follow(http: httpx.AsyncClient, headers: dict) -> list[tuple[dict, bool]]:
            """Each event with whether it arrived before the POST was answered."""
            received = []
            async with http.stream("GET", f"/api/kernels/{kernel_id}/events", headers=headers) as stream:
                assert stream.status_code == 200
                async for record in sse_records(stream):
                    received.append((record, answered.is_set()))
            return received

        alices = asyncio.ensure_future(follow(alice, {"Accept": "text/event-stream"}))
        bobs = asyncio.ensure_future(bob.get(f"/api/kernels/{kernel_id}/events", params={"follow": "1"}))
        await asyncio.sleep(0)  # both requests are under way before the kernel is asked for
        r = await alice.post("/api/kernels", json={"name": "python3", "env": {"KERNEL_ID": kernel_id}})
        answered.set()
        assert r.status_code == 201, r.text
        received = await alices
        records = [record for record, _ in received]
        assert [e["event"] for e in records if e["event"] != "progress"] == ["requested", "launched"]
        assert phases_of(records) == LAUNCH_PHASES
        assert records[-1]["event"] == "launched"  # the stream ended when the kernel was running
        assert not any(late for _, late in received[:-1])  # the phases came as they happened
        assert (await alice.get(f"/api/kernels/{kernel_id}")).json()["execution_state"] != "starting"
        assert not bobs.done()  # bob waits for a kernel of his with that id (404 after the launch timeout)
        bobs.cancel()
        await asyncio.gather(bobs, return_exceptions=True)
