"""Without a session store, a kernel container ends with the gateway that started it, even a
SIGKILLed one (the launcher's lease connection closes), so nothing is left unowned."""

from __future__ import annotations

import asyncio
import time

import pytest

from eg_core.testing import GatewayProcess, KernelSocket

pytestmark = pytest.mark.timeout(240)


async def test_killed_gateway_without_persistence_takes_its_container_along(tmp_path, kernel_spec_dirs, docker_host, docker, gateway_id):
    gw = GatewayProcess(
        tmp_path, "--Gateway.kernel_session_persistence=False", f"--DockerSettings.gateway_id={gateway_id}",
        "--Gateway.launch_timeout=60", env={"DOCKER_HOST": docker_host, "EG_RESPONSE_ADDRESS": "127.0.0.1:0"}, kernel_spec_dirs=kernel_spec_dirs,
    )
    kid = None
    try:
        async with gw.client() as http:
            r = await http.post("/api/kernels", json={"name": "python_docker"})
            assert r.status_code == 201, r.text
            kid = r.json()["id"]
        ks = await KernelSocket.connect(gw, kid)
        assert (await ks.execute("print(6 * 7)"))["stdout"] == "42\n"
        await ks.close()
        [container] = await docker.containers({"kernel_id": kid})
        assert container["State"] == "running"
        gw.proc.kill()
        gw.proc.wait()
        deadline = time.monotonic() + 90
        while [c for c in await docker.containers({"kernel_id": kid}) if c["State"] == "running"]:
            assert time.monotonic() < deadline, f"the kernel container still runs 90 s after the gateway died:\n{gw.output()[-3000:]}"
            await asyncio.sleep(0.5)
    finally:
        gw.stop()
        if kid:
            for c in await docker.containers({"kernel_id": kid}):
                await docker.container_remove(c["Id"])
