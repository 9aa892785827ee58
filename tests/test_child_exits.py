"""Local kernels' exits come from SIGCHLD, with the exit status left for their ``Popen``."""

from __future__ import annotations

import asyncio
import signal
import subprocess
import sys

from eg_core._builtin._child_exits import watch_child


async def watched(proc: subprocess.Popen) -> asyncio.Future:
    exited = asyncio.get_running_loop().create_future()
    assert watch_child(proc.pid, lambda: exited.set_result(proc.wait()))
    return exited


async def test_each_childs_exit_is_seen_with_its_status():
    sleepers = [subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"]) for _ in range(3)]
    quick = subprocess.Popen([sys.executable, "-c", "raise SystemExit(7)"])
    exits = [await watched(p) for p in sleepers + [quick]]
    assert await asyncio.wait_for(exits[3], 30) == 7
    assert not any(e.done() for e in exits[:3])
    sleepers[1].send_signal(signal.SIGTERM)
    assert await asyncio.wait_for(exits[1], 30) == -signal.SIGTERM
    assert not exits[0].done() and not exits[2].done()
    for p in (sleepers[0], sleepers[2]):
        p.kill()
    assert await asyncio.wait_for(asyncio.gather(exits[0], exits[2]), 30) == [-signal.SIGKILL] * 2


async def test_a_child_that_ended_before_it_was_watched_is_seen_at_once():
    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    while True:  # wait for the zombie without reaping it
        if open(f"/proc/{proc.pid}/stat").read().split(")")[1].split()[0] == "Z":
            break
        await asyncio.sleep(0.01)
    assert await asyncio.wait_for(await watched(proc), 5) == 0
