"""Warm pools of SSH kernels on the real sshd: a request for the pool's remote user gets the
waiting kernel with its env and working directory bound; with impersonation, a request for
another remote user starts its own kernel (a pool miss), as that user."""

from __future__ import annotations

import asyncio
import json
import re
import time

from eg_ssh.testing import run_code, where

USER, OTHER = "egtest", "egtest2"


async def wait_pool(http, gw) -> None:
    deadline = time.monotonic() + 120
    while True:
        m = re.search(r'^eg_pool_kernels\{kernelspec="python_ssh"\} (\S+)$', (await http.get("/metrics")).text, re.M)
        if m and float(m.group(1)) == 1:
            return
        assert time.monotonic() < deadline, gw.output()[-3000:]
        await asyncio.sleep(0.3)


async def test_ssh_pool_hit_and_impersonation_miss(ssh_gateway):
    gw = ssh_gateway(impersonation_enabled=True, env={"EG_KERNEL_POOLS": json.dumps({"python_ssh": 1})})
    async with gw.client() as http:
        await wait_pool(http, gw)
        r = await http.post("/api/kernels", json={"name": "python_ssh", "env": {"KERNEL_FOO": "bar", "KERNEL_WORKING_DIR": "/tmp"}})
        assert r.status_code == 201 and r.json()["from_pool"] is True, r.text
        hit = r.json()["id"]
        out = await run_code(gw, hit, "import os, getpass; print(getpass.getuser(), os.environ['KERNEL_FOO'], os.getcwd())")
        assert out["stdout"].split() == [USER, "bar", "/tmp"]
        await wait_pool(http, gw)
        r = await http.post("/api/kernels", json={"name": "python_ssh", "env": {"KERNEL_USERNAME": OTHER}})
        assert r.status_code == 201 and "from_pool" not in r.json(), r.text
        cold = r.json()["id"]
        assert (await where(gw, cold))[0] == OTHER
        for kid in (hit, cold):
            await http.delete(f"/api/kernels/{kid}")
    gw.stop()
    misses = [json.loads(m)["details"]["reason"] for m in re.findall(r"eg\.events\] (\{.*\"pool_miss\".*\})$", gw.output(), re.M)]
    assert misses == [f"the kernel would run as remote user {OTHER!r}, the pooled one runs as {USER!r}"]
