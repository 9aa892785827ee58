"""Warm pools of YARN kernels: a plain request claims the waiting application; one that needs
another user (impersonation), queue or memory starts its own (a pool miss naming why)."""

from __future__ import annotations

import asyncio
import json
import re
import time

import pytest

from conftest import gateway_env
from eg_core.testing import GatewayProcess, KernelSocket

pytestmark = pytest.mark.timeout(300)


async def wait_pool(http, gw) -> None:
    deadline = time.monotonic() + 120
    while True:
        m = re.search(r'^eg_pool_kernels\{kernelspec="python_yarn_rest"\} (\S+)$', (await http.get("/metrics")).text, re.M)
        if m and float(m.group(1)) == 1:
            return
        assert time.monotonic() < deadline, gw.output()[-3000:]
        await asyncio.sleep(0.3)


async def test_pool_hit_and_misses(tmp_path, kernel_spec_dirs, rm, hadoop_conf, reset):
    cluster = reset
    gw = GatewayProcess(
        tmp_path, f"--YarnSettings.yarn_endpoint={rm.url}", "--YarnSettings.impersonation_enabled=True",
        env={**gateway_env(tmp_path, hadoop_conf), "EG_KERNEL_POOLS": json.dumps({"python_yarn_rest": 1})},
        kernel_spec_dirs=kernel_spec_dirs,
    )
    kids = []
    try:
        async with gw.client() as http:
            await wait_pool(http, gw)
            r = await http.post("/api/kernels", json={"name": "python_yarn_rest", "env": {"KERNEL_FOO": "bar"}})
            assert r.status_code == 201 and r.json()["from_pool"] is True, r.text
            kids.append(r.json()["id"])
            ws = await KernelSocket.connect(gw, kids[0])
            try:
                assert (await ws.execute("import os; print(os.environ['KERNEL_FOO'])"))["stdout"] == "bar\n"
            finally:
                await ws.close()
            for env in ({"KERNEL_USERNAME": "alice"}, {"KERNEL_DRIVER_MEMORY": "2g"}):
                await wait_pool(http, gw)
                r = await http.post("/api/kernels", json={"name": "python_yarn_rest", "env": env})
                assert r.status_code == 201 and "from_pool" not in r.json(), r.text
                kids.append(r.json()["id"])
            users = rm.call(lambda: {a.name: a.user for a in cluster.apps.values()})
            assert users[kids[1]] == "alice"
            for kid in kids:
                await http.delete(f"/api/kernels/{kid}")
    finally:
        gw.stop()
    misses = [json.loads(m)["details"]["reason"] for m in re.findall(r"eg\.events\] (\{.*\"pool_miss\".*\})$", gw.output(), re.M)]
    assert misses == ["the application would need user 'alice'; the pooled one has 'root'",
                      "the application would need driver_memory_mb 2048; the pooled one has 0"], misses
