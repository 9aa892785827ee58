"""Warm pools of pod kernels on the real cluster: a hit runs code in a waiting pod that then
carries its claimant's metadata and session, the pool refills, a request for other pod settings
is a miss, a claimed kernel is adopted after a gateway SIGKILL while the dead gateway's waiting
pod is removed (as an unfinished launch with a session store, by the orphan sweep without), and
a stopped gateway leaves no pod."""

from __future__ import annotations

import asyncio
import json
import re
import signal
import time
import uuid

import pytest

from eg_core.testing import GatewayProcess

from k8s_helpers import gateway_args, left_behind, pod_of, run

pytestmark = pytest.mark.timeout(300)
SPEC = "python_kubernetes"
POOL = "eg.jupyter.org/pool"
HOLDER = "eg.jupyter.org/pool-holder"


def pool_gateway(tmp, cluster, namespace, gateway_id, kernel_spec_dirs, size, *extra):
    return GatewayProcess(
        tmp, *gateway_args(cluster, namespace, gateway_id, "--KernelPools.refill_delay=0", *extra),
        env={"EG_KERNEL_POOLS": json.dumps({SPEC: size})}, kernel_spec_dirs=kernel_spec_dirs,
    )


async def wait_pool(http, gw, size: int = 1) -> None:
    deadline = time.monotonic() + 120
    while True:
        m = re.search(rf'^eg_pool_kernels{{kernelspec="{SPEC}"}} (\S+)$', (await http.get("/metrics")).text, re.M)
        if m and float(m.group(1)) == size:
            return
        assert time.monotonic() < deadline, gw.output()[-3000:]
        await asyncio.sleep(0.2)


async def pods_of_gateway(core, namespace, gateway_id):
    listing = await asyncio.to_thread(core.list_namespaced_pod, namespace, label_selector=f"eg.jupyter.org/gateway={gateway_id}")
    return [p for p in listing.items if not p.metadata.deletion_timestamp]


async def until(check, what: str, timeout: float = 60):
    """``await check()`` until it answers something true (the API's view catches up)."""
    deadline = time.monotonic() + timeout
    while not (result := await check()):
        assert time.monotonic() < deadline, what
        await asyncio.sleep(0.2)
    return result


async def test_a_pool_hit_runs_in_a_waiting_pod_bound_to_its_claimant(tmp_path, cluster, core, namespace, kernel_spec_dirs):
    gateway_id = f"eg-pool-{uuid.uuid4().hex[:6]}"
    gw = pool_gateway(tmp_path, cluster, namespace, gateway_id, kernel_spec_dirs, 1)
    try:
        async with gw.client() as http:
            await wait_pool(http, gw)
            [waiting] = await pods_of_gateway(core, namespace, gateway_id)
            assert waiting.metadata.labels[POOL] == SPEC and waiting.metadata.labels[HOLDER], waiting.metadata.labels
            secret = await asyncio.to_thread(core.read_namespaced_secret, f"{waiting.metadata.name}-eg", namespace)
            assert secret.metadata.labels[POOL] == SPEC

            r = await http.post("/api/kernels", json={"name": SPEC, "env": {"KERNEL_USERNAME": "alice", "KERNEL_FOO": "bar"}})
            assert r.status_code == 201 and r.json()["from_pool"] is True, r.text
            kid = r.json()["id"]
            assert kid == waiting.metadata.labels["kernel_id"]
            out = await run(gw, kid, "import os; print(os.environ['KERNEL_USERNAME'], os.environ['KERNEL_FOO'])")
            assert out.split() == ["alice", "bar"]

            async def claimed():
                pod = await pod_of(core, namespace, kid)
                return pod if POOL not in pod.metadata.labels and pod.metadata.annotations.get("eg.jupyter.org/user") == "alice" else None

            pod = await until(claimed, "the claimed pod kept its warm-pool metadata")
            assert pod.metadata.uid == waiting.metadata.uid and HOLDER not in pod.metadata.labels
            assert HOLDER not in pod.metadata.annotations and "eg.jupyter.org/session" in pod.metadata.annotations
            secret = await asyncio.to_thread(core.read_namespaced_secret, f"{pod.metadata.name}-eg", namespace)
            assert POOL not in secret.metadata.labels and "connection-key" in secret.data
            assert secret.metadata.owner_references[0].uid == pod.metadata.uid

            await wait_pool(http, gw)  # refilled
            refill = [p for p in await pods_of_gateway(core, namespace, gateway_id) if p.metadata.labels.get(POOL)]
            assert [p.metadata.labels["kernel_id"] for p in refill] != [kid] and len(refill) == 1

            r = await http.post("/api/kernels", json={"name": SPEC, "env": {"KERNEL_CPUS": "0.1"}})
            assert r.status_code == 201 and not r.json().get("from_pool"), r.text  # other pod resources: a miss
            cold = r.json()["id"]
            events = (await http.get(f"/api/kernels/{cold}/events")).json()["events"]
            miss = [e for e in events if e["event"] == "pool_miss"]
            assert miss and "KERNEL_CPUS" in miss[0]["details"]["reason"], events

            for k in (kid, cold):
                assert (await http.delete(f"/api/kernels/{k}")).status_code == 204
                assert await left_behind(core, namespace, k) == {}
    finally:
        gw.stop()
    assert await pods_of_gateway(core, namespace, gateway_id) == [], gw.output()[-3000:]
    secrets = await asyncio.to_thread(core.list_namespaced_secret, namespace, label_selector=f"eg.jupyter.org/gateway={gateway_id}")
    assert [s.metadata.name for s in secrets.items if not s.metadata.deletion_timestamp] == []


async def test_after_a_sigkill_the_claimed_pod_is_adopted_and_the_waiting_one_removed(tmp_path, cluster, core, namespace, kernel_spec_dirs):
    gateway_id = f"eg-pool-{uuid.uuid4().hex[:6]}"
    store = ["--Gateway.availability_mode=standalone", f"--FileSessionStore.persistence_root={tmp_path / 'sessions'}"]
    for name in ("first", "second"):
        (tmp_path / name).mkdir()
    first = pool_gateway(tmp_path / "first", cluster, namespace, gateway_id, kernel_spec_dirs, 1, *store)
    async with first.client() as http:
        await wait_pool(http, first)
        r = await http.post("/api/kernels", json={"name": SPEC, "env": {"KERNEL_USERNAME": "alice"}})
        assert r.status_code == 201 and r.json()["from_pool"] is True, r.text
        kid = r.json()["id"]
        await run(first, kid, "x = 42")
        await wait_pool(http, first)
    [waiting] = [p for p in await pods_of_gateway(core, namespace, gateway_id) if p.metadata.labels.get(POOL)]
    await until(lambda: _session_stored(core, namespace, kid), "the claimed kernel's session is not on its pod")
    first.proc.send_signal(signal.SIGKILL)
    first.proc.wait(30)

    second = GatewayProcess(tmp_path / "second", *gateway_args(cluster, namespace, gateway_id, *store), kernel_spec_dirs=kernel_spec_dirs)
    try:
        # the waiting pod carries its launch's record (never a session): an unfinished launch to the next gateway
        await second.wait_for_output(f"[kernel {waiting.metadata.labels['kernel_id']}] removed")
        assert await left_behind(core, namespace, waiting.metadata.labels["kernel_id"]) == {}
        assert await run(second, kid, "print(x)") == "42\n"
        async with second.client() as http:
            assert [k["id"] for k in (await http.get("/api/kernels")).json()] == [kid]
            assert (await http.delete(f"/api/kernels/{kid}")).status_code == 204
    finally:
        second.stop()
    assert await pods_of_gateway(core, namespace, gateway_id) == []


async def test_without_a_session_store_the_sweep_removes_a_dead_gateways_waiting_pod(tmp_path, cluster, core, namespace, kernel_spec_dirs):
    gateway_id = f"eg-pool-{uuid.uuid4().hex[:6]}"
    for name in ("first", "second"):
        (tmp_path / name).mkdir()
    no_store = "--Gateway.kernel_session_persistence=False"
    first = pool_gateway(tmp_path / "first", cluster, namespace, gateway_id, kernel_spec_dirs, 1, no_store)
    async with first.client() as http:
        await wait_pool(http, first)
    [waiting] = await pods_of_gateway(core, namespace, gateway_id)
    first.proc.send_signal(signal.SIGKILL)
    first.proc.wait(30)
    second = GatewayProcess(tmp_path / "second", *gateway_args(cluster, namespace, gateway_id, no_store), kernel_spec_dirs=kernel_spec_dirs)
    try:
        output = await second.wait_for_output(f"Removed kernel pod {namespace}/{waiting.metadata.name}")
        assert "waiting in a warm pool; its gateway: dead" in output  # under orphans_at_startup=log: it held nobody's work
        assert await left_behind(core, namespace, waiting.metadata.labels["kernel_id"]) == {}
    finally:
        second.stop()


async def _session_stored(core, namespace, kid):
    pod = await pod_of(core, namespace, kid)
    return pod is not None and "eg.jupyter.org/session" in (pod.metadata.annotations or {}) and POOL not in pod.metadata.labels
