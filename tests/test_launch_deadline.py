"""The launch deadline a resource manager may pause (eg-k8s, while an image is pulled): paused
time does not count, a phase that outlives the time left is cancelled."""

from __future__ import annotations

import asyncio

import pytest

from eg_core import KernelContext
from eg_core._runtime.deadline import Deadline
from eg_core._runtime.launch import run_phase
from eg_core._runtime.errors import LaunchFailed


async def test_a_paused_deadline_lets_a_phase_wait_past_it_and_keeps_the_time_left():
    deadline = Deadline(0.01)
    kernel = KernelContext(kernel_id="k", kernel_name="t", resource_manager="local", deadline=deadline)
    kernel.pause_launch_deadline()
    released = asyncio.Event()
    asyncio.get_running_loop().call_later(0.1, released.set)
    assert await run_phase("confirm_startup", deadline, released.wait(), {}) is True
    assert deadline.left() > 0
    kernel.resume_launch_deadline()
    with pytest.raises(LaunchFailed, match="no answer within the launch timeout"):
        await run_phase("confirm_startup", deadline, asyncio.Event().wait(), {})


async def test_a_phase_that_runs_out_of_time_is_cancelled():
    cancelled = asyncio.Event()

    async def phase():
        try:
            await asyncio.Event().wait()
        finally:
            cancelled.set()

    with pytest.raises(LaunchFailed):
        await run_phase("launch_process", Deadline(0.01), phase(), {})
    assert cancelled.is_set()
