"""Surviving gateway restarts: kernels adopted from the session store; replicated gateways."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import time

import psutil
import pytest

from eg_core.testing import KernelSocket, on_host


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


def stored(store) -> dict[str, dict]:
    """The session store's records by kernel id (the builtin file store's JSON files)."""
    records = {}
    for path in store.glob("*.json"):
        try:
            records[path.stem] = json.loads(path.read_text())
        except ValueError:  # being replaced right now
            continue
    return records


def kernel_processes(kernel_ids) -> list[psutil.Process]:
    """The local kernel processes of these ids (found by the KERNEL_ID in their environment)."""
    from eg_core import procinfo

    return [psutil.Process(pid) for kid in kernel_ids for pid in procinfo.with_env("KERNEL_ID", kid) if psutil.pid_exists(pid)]


async def test_a_crash_during_concurrent_starts_leaves_nothing_unknown(gateway_factory, tmp_path):
    """Default settings: kernels that had launched are adopted by the next gateway; those whose
    launch was under way when the gateway was SIGKILLed are removed, even one whose pid the
    crashed gateway never recorded."""
    store = tmp_path / "sessions"  # the default store of the test harness's gateways
    first = gateway_factory()
    async with first.client() as http:
        launched = []
        for _ in range(2):
            r = await http.post("/api/kernels", json={"name": "tiny"})
            assert r.status_code == 201, r.text
            launched.append(r.json()["id"])
        starts = [asyncio.ensure_future(http.post("/api/kernels", json={"name": "slow_start"})) for _ in range(5)]
        for _ in range(600):
            in_flight = {k: r for k, r in stored(store).items() if r.get("status") == "launching"}
            if len(in_flight) == 5 and all(r["provisioner"]["eg"]["process_info"].get("pid") for r in in_flight.values()):
                break
            await asyncio.sleep(0.05)
        assert len(in_flight) == 5, stored(store)
        assert len(kernel_processes(in_flight)) == 5
        first.proc.send_signal(signal.SIGKILL)
        first.proc.wait()
        await asyncio.gather(*starts, return_exceptions=True)
    assert len(kernel_processes(in_flight)) == 5  # a crash alone leaves them running, unknown
    # As if the gateway had died between starting a process and recording its pid:
    forgotten = next(iter(in_flight))
    record = json.loads((store / f"{forgotten}.json").read_text())
    for name in ("pid", "pgid", "started"):
        record["provisioner"]["eg"]["process_info"].pop(name)
    (store / f"{forgotten}.json").write_text(json.dumps(record))

    second = gateway_factory()
    gone, alive = psutil.wait_procs(kernel_processes(in_flight), timeout=30)
    assert not alive, [p.cmdline() for p in alive]
    assert sorted(stored(store)) == sorted(launched)
    async with second.client() as http:
        assert sorted(k["id"] for k in (await http.get("/api/kernels")).json()) == sorted(launched)
    assert f"[kernel {forgotten}] removed" in second.output()
    for kid in launched:
        ks = await KernelSocket.connect(second, kid)
        try:
            assert (await ks.execute("1"))["reply"]["status"] == "ok"
        finally:
            await ks.close()


async def test_without_persistence_kernels_end_with_a_killed_gateway(gateway_factory, tmp_path):
    gw = gateway_factory("--Gateway.kernel_session_persistence=False")
    async with gw.client() as http:
        r = await http.post("/api/kernels", json={"name": "tiny"})
        assert r.status_code == 201, r.text
        kid = r.json()["id"]
    [kernel] = kernel_processes([kid])
    gw.proc.send_signal(signal.SIGKILL)
    gw.proc.wait()
    gone, alive = psutil.wait_procs([kernel], timeout=30)
    assert not alive
    assert not (tmp_path / "sessions").exists()


async def test_connection_files_live_as_long_as_their_kernels(gateway_factory, tmp_path):
    """A graceful stop that leaves a kernel running keeps its connection file; the gateway that
    adopts the kernel removes the file when the kernel is shut down."""
    store = tmp_path / "store"
    first = gateway_factory(*ha_args(store))
    kid = await start_kernel(first)
    connection_file = tmp_path / "runtime" / f"eg-kernel-{kid}.json"
    assert connection_file.exists()
    first.stop()
    assert connection_file.exists()
    second = gateway_factory(*ha_args(store))
    assert await run(second, kid, "print('adopted')") == "adopted\n"
    async with second.client() as http:
        assert (await http.delete(f"/api/kernels/{kid}")).status_code == 204
    assert not connection_file.exists()


async def until(condition, within: float = 60.0):
    """``condition()``'s first true value, checked every 0.1 s (the store's files give no signal)."""
    deadline = time.monotonic() + within
    while not (value := condition()):
        assert time.monotonic() < deadline, "the session store did not reach the expected state"
        await asyncio.sleep(0.1)
    return value


def backdate(store, kernel_id: str, seconds: float) -> None:
    """Make the kernel's stored record look saved ``seconds`` earlier (time passing, without waiting)."""
    path = store / f"{kernel_id}.json"
    record = json.loads(path.read_text())
    record["saved_at"] -= seconds
    path.with_suffix(".tmp").write_text(json.dumps(record))
    os.replace(path.with_suffix(".tmp"), path)


def pooled_ids(store) -> list[str]:
    return [kid for kid, record in stored(store).items() if record.get("status") == "pooled"]


async def test_a_replica_on_another_host_leaves_a_live_pool_and_removes_an_ended_ones(gateway_factory, tmp_path):
    """Replicas on two hosts (each gateway under a host name of its own) share a store. A warm
    pool's waiting kernel is recorded ``pooled`` and refreshed while its gateway lives, so a
    replica starting on another host long after the kernel's launch leaves it, and it serves a
    claim; once its gateway is gone and its record stale, the next replica removes it, while
    the claimed kernel (now ``running``) stays reachable through that replica."""
    store = tmp_path / "store"
    pool_env = {"EG_KERNEL_POOLS": json.dumps({"python3": 1}), "EG_POOLED_RECORD_REFRESH": "0.5"}
    a = gateway_factory(*ha_args(store, "replication"), env=pool_env, prefix=on_host("eg-host-a"))
    waiting = (await until(lambda: pooled_ids(store)))[0]
    backdate(store, waiting, 3600)  # as if launched an hour ago: the live pool's refresh makes it fresh again
    await until(lambda: stored(store)[waiting]["saved_at"] > time.time() - 30)

    b = gateway_factory(*ha_args(store, "replication"), prefix=on_host("eg-host-b"))
    assert "removed 0 unfinished launch(es)" in await b.wait_for_output("Session store:")
    async with a.client() as http:
        r = await http.post("/api/kernels", json={"name": "python3", "env": {"KERNEL_USERNAME": "alice"}})
        assert r.status_code == 201, r.text
        assert r.json()["id"] == waiting and r.json()["from_pool"] is True
    assert await run(a, waiting, "x = 6 * 7; print(x)") == "42\n"
    assert stored(store)[waiting]["status"] == "running"

    refill = (await until(lambda: [k for k in pooled_ids(store) if k != waiting]))[0]
    refill_pids = kernel_processes([refill])
    assert refill_pids
    a.proc.send_signal(signal.SIGKILL)
    a.proc.wait()
    backdate(store, refill, 120)  # its gateway has not refreshed it for two minutes
    c = gateway_factory(*ha_args(store, "replication"), prefix=on_host("eg-host-b"))
    output = await c.wait_for_output("Session store:")
    assert f"[kernel {refill}] removed: it waited in the warm pool of a gateway that ended" in output
    assert "removed 1 unfinished launch(es)" in output
    assert refill not in stored(store)
    psutil.wait_procs(refill_pids, timeout=10)
    assert not any(p.is_running() for p in refill_pids)
    assert await run(c, waiting, "print(x)") == "42\n"
