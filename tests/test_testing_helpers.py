"""The testing kit's own helpers: waiting for kernel events, in-process and in a gateway."""

from __future__ import annotations

import asyncio

from eg_core._runtime.calling import acall
from eg_core.testing import EventRecorder, kernel_context, wait_for_event


async def test_event_recorder_waits_for_an_event(eg_plugin_manager):
    recorder = EventRecorder()
    eg_plugin_manager.register(recorder, name="recorder")
    kernel = kernel_context()
    waiting = asyncio.ensure_future(recorder.wait("culled", kernel_id=kernel.kernel_id))
    await acall(eg_plugin_manager.hook.eg_kernel_event, kernel=kernel, event="launched", details={})
    await asyncio.sleep(0)
    assert not waiting.done()
    await acall(eg_plugin_manager.hook.eg_kernel_event, kernel=kernel, event="culled", details={"reason": "idle"})
    assert await asyncio.wait_for(waiting, 30) == {"reason": "idle"}


async def test_wait_for_event_reads_a_gateways_event_log(gateway, http):
    r = await http.post("/api/kernels", json={"name": "python3"})
    assert r.status_code == 201, r.text
    kid = r.json()["id"]
    launched = await wait_for_event(gateway, "launched", kid)
    assert launched["details"]["phases"]["kernel_info"] >= 0
    await http.delete(f"/api/kernels/{kid}")
    assert (await wait_for_event(gateway, "shut_down", kid))["kernel_id"] == kid
