"""Warm pools of Docker kernels: a request gets a waiting container with its user, env and
(unmirrored) working directory bound; a request for another image or uid starts a container."""

from __future__ import annotations

import asyncio
import json
import re
import time
import uuid

import pytest

from eg_core.testing import GatewayProcess, KernelSocket

pytestmark = pytest.mark.timeout(300)


async def pool_size(http) -> float:
    m = re.search(r'^eg_pool_kernels\{kernelspec="python_docker"\} (\S+)$', (await http.get("/metrics")).text, re.M)
    return float(m.group(1)) if m else 0.0


async def wait_pool(http, gw) -> None:
    deadline = time.monotonic() + 120
    while await pool_size(http) != 1:
        assert time.monotonic() < deadline, gw.output()[-3000:]
        await asyncio.sleep(0.3)


async def test_docker_pool_hit_and_miss(tmp_path, kernel_spec_dirs, docker_host, docker):
    gateway_id = f"eg-test-{uuid.uuid4().hex[:8]}"
    gw = GatewayProcess(
        tmp_path, f"--DockerSettings.gateway_id={gateway_id}", "--Gateway.launch_timeout=60",
        env={"DOCKER_HOST": docker_host, "EG_RESPONSE_ADDRESS": "127.0.0.1:0", "EG_KERNEL_POOLS": json.dumps({"python_docker": 1})},
        kernel_spec_dirs=kernel_spec_dirs,
    )
    try:
        async with gw.client() as http:
            await wait_pool(http, gw)
            env = {"KERNEL_USERNAME": "alice", "KERNEL_FOO": "bar", "KERNEL_WORKING_DIR": str(tmp_path)}
            r = await http.post("/api/kernels", json={"name": "python_docker", "env": env})
            assert r.status_code == 201 and r.json()["from_pool"] is True, r.text
            kid = r.json()["id"]
            ws = await KernelSocket.connect(gw, kid)
            out = await ws.execute("import os; print(os.environ['KERNEL_USERNAME'], os.environ['KERNEL_FOO'], os.getuid(), os.getcwd() != %r)" % str(tmp_path))
            await ws.close()
            assert out["stdout"].split() == ["alice", "bar", "1000", "True"], out
            assert len(await docker.containers({"kernel_id": kid})) == 1

            await wait_pool(http, gw)
            r = await http.post("/api/kernels", json={"name": "python_docker", "env": {"KERNEL_IMAGE": "eg/other:1"}})
            assert r.status_code == 403, r.text  # a miss; the cold launch refuses the image as usual
            await http.delete(f"/api/kernels/{kid}")
            assert not await docker.containers({"kernel_id": kid})
        pooled = [c for c in await docker.containers({"eg.gateway": gateway_id})]
        assert len(pooled) == 1  # the refilled waiting container
    finally:
        gw.stop()
    deadline = time.monotonic() + 60
    while await docker.containers({"eg.gateway": gateway_id}):
        assert time.monotonic() < deadline, "the waiting container outlived the gateway"
        await asyncio.sleep(0.3)
    misses = [json.loads(m) for m in re.findall(r"eg\.events\] (\{.*\})$", gw.output(), re.M)]
    assert any(e["event"] == "pool_miss" and "KERNEL_IMAGE" in e["details"]["reason"] for e in misses)
