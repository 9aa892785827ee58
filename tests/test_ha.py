"""Surviving gateway restarts: kernels adopted from the session store; replicated gateways."""

from __future__ import annotations

import asyncio
import json
import os
import signal

import psutil
import pytest

from eg_core.testing import KernelSocket


@pytest.fixture(autouse=True)
def no_kernel_outlives_the_test(tmp_path):
    """These tests leave kernels running on purpose between gateways; whatever a failed test
    left is killed (its kernels' connection files live under the test's tmp dir)."""
    yield
    for proc in psutil.process_iter(["cmdline"]):
        if str(tmp_path) in " ".join(proc.info["cmdline"] or []):
            proc.kill()


def ha_args(store, mode="standalone", *extra):
    return (f"--Gateway.availability_mode={mode}", f"--FileSessionStore.persistence_root={store}", *extra)


async def start_kernel(gw) -> str:
    async with gw.client() as http:
        r = await http.post("/api/kernels", json={"name": "python3", "env": {"KERNEL_USERNAME": "alice"}})
        assert r.status_code == 201, r.text
        return r.json()["id"]


async def run(gw, kernel_id: str, code: str) -> str:
    ks = await KernelSocket.connect(gw, kernel_id)
    try:
        out = await ks.execute(code)
    finally:
        await ks.close()
    return out["stdout"]


async def test_kernels_survive_a_killed_gateway(gateway_factory, tmp_path):
    store = tmp_path / "store"
    first = gateway_factory(*ha_args(store))
    kept = await start_kernel(first)
    doomed = await start_kernel(first)
    assert await run(first, kept, "x = 41; print('set')") == "set\n"
    doomed_pid = int(await run(first, doomed, "import os; print(os.getpid())"))
    assert sorted(p.stem for p in store.glob("*.json")) == sorted([kept, doomed])

    first.proc.send_signal(signal.SIGKILL)
    first.proc.wait()
    os.kill(doomed_pid, signal.SIGKILL)  # this one dies while no gateway watches
    (store / "garbage.json").write_text("{not json")
    (store / "partial.json").write_text(json.dumps({"kernel_id": "partial"}))

    second = gateway_factory(*ha_args(store))
    async with second.client() as http:
        ids = [k["id"] for k in (await http.get("/api/kernels")).json()]
        assert ids == [kept]
        assert (await http.get(f"/api/kernels/{doomed}")).status_code == 404
    assert await run(second, kept, "print(x + 1)") == "42\n"
    assert not (store / f"{doomed}.json").exists()
    log = second.output()
    assert "Skipping kernel session file" in log and "garbage.json" in log and "partial.json" in log
    assert f"[kernel {kept}] adopted" in log

    # interrupt and restart work on an adopted kernel
    async with second.client() as http:
        assert (await http.post(f"/api/kernels/{kept}/interrupt", json={})).status_code == 204
        assert (await http.post(f"/api/kernels/{kept}/restart", json={})).status_code == 200
        assert await run(second, kept, "print('x' in globals())") == "False\n"
        assert (await http.delete(f"/api/kernels/{kept}")).status_code == 204
    assert not (store / f"{kept}.json").exists()


async def test_graceful_stop_keeps_or_stops_kernels_by_setting(gateway_factory, tmp_path):
    store = tmp_path / "store"
    first = gateway_factory(*ha_args(store))
    kid = await start_kernel(first)
    await run(first, kid, "y = 7")
    first.stop()  # SIGTERM: kernels are left running (the default with availability_mode)
    assert "Leaving 1 kernel(s) running" in first.log_path.read_text()
    second = gateway_factory(*ha_args(store, "standalone", "--Gateway.shutdown_kernels_on_exit=True"))
    assert await run(second, kid, "print(y * 6)") == "42\n"
    second.stop()  # this one shuts them down
    assert not (store / f"{kid}.json").exists()


async def test_replicated_gateways_reach_each_others_kernels(gateway_factory, tmp_path):
    store = tmp_path / "store"
    a = gateway_factory(*ha_args(store, "replication"))
    b = gateway_factory(*ha_args(store, "replication"))
    kid = await start_kernel(a)
    await run(a, kid, "z = 'shared'")
    async with b.client() as http:
        r = await http.get(f"/api/kernels/{kid}")
        assert r.status_code == 200 and r.json()["name"] == "python3"
    assert await run(b, kid, "print(z)") == "shared\n"
    async with b.client() as http:
        assert (await http.delete(f"/api/kernels/{kid}")).status_code == 204
    async with a.client() as http:
        for _ in range(50):
            if (await http.get(f"/api/kernels/{kid}")).status_code == 404:
                break
            await asyncio.sleep(0.1)
        assert (await http.get(f"/api/kernels/{kid}")).status_code == 404
    assert "another gateway shut it down" in a.output()
