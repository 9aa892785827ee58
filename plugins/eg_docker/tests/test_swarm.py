"""Kernels as Docker Swarm services, on the test engine made a one-node swarm by ci/setup.sh
(``docker swarm init --advertise-addr 127.0.0.1``; tasks use host networking)."""

from __future__ import annotations

import asyncio
import uuid

import pytest

from eg_core.testing import KernelSocket, wait_until_busy

pytestmark = pytest.mark.timeout(240)


async def test_swarm_kernel_lifecycle(gateway, http, docker, gateway_id):
    r = await http.post("/api/kernels", json={"name": "docker_swarm", "env": {"KERNEL_USERNAME": "bob"}})
    assert r.status_code == 201, r.text
    kid = r.json()["id"]
    try:
        [service] = await docker.services({"kernel_id": kid})
        spec = service["Spec"]
        assert spec["Name"] == f"bob-{kid}"
        assert spec["Labels"]["component"] == "kernel" and spec["Labels"]["eg.gateway"] == gateway_id
        template = spec["TaskTemplate"]
        assert template["RestartPolicy"]["Condition"] == "none"
        assert template["Resources"]["Limits"]["MemoryBytes"] == 300 * 1024 * 1024
        assert template["ContainerSpec"]["User"] == "1000:100"
        tasks = await docker.service_tasks(service["ID"])
        assert [t["Status"]["State"] for t in tasks] == ["running"]

        ws = await KernelSocket.connect(gateway, kid)
        out = await ws.execute("import os; print(os.environ['EG_DOCKER_MODE'], os.getuid()); z = 7")
        assert out["stdout"].split() == ["swarm", "1000"], out

        running = asyncio.ensure_future(ws.execute("import time; time.sleep(60)", timeout=30))
        await wait_until_busy(http, kid)
        r = await http.post(f"/api/kernels/{kid}/interrupt")
        assert r.status_code == 204
        assert (await running)["errors"] == ["KeyboardInterrupt"]
        assert (await ws.execute("print(z * 6)"))["stdout"].strip() == "42"

        r = await http.post(f"/api/kernels/{kid}/restart")
        assert r.status_code == 200, r.text
        [after] = await docker.services({"kernel_id": kid})
        assert after["ID"] != service["ID"]
        assert (await ws.execute("z"))["errors"] == ["NameError"]
        await ws.close()
    finally:
        r = await http.delete(f"/api/kernels/{kid}")
    assert r.status_code == 204
    assert await docker.services({"kernel_id": kid}) == []


async def test_swarm_r_kernel_irkernel(gateway, http, docker):
    """An R kernel (eg/kernel-r) as a Swarm service: it runs R, an interrupt reaches it through
    the launcher's comm port, and its deletion removes the service."""
    r = await http.post("/api/kernels", json={"name": "R_docker_swarm"})
    assert r.status_code == 201, r.text
    kid = r.json()["id"]
    try:
        [service] = await docker.services({"kernel_id": kid})
        assert service["Spec"]["TaskTemplate"]["ContainerSpec"]["Image"].startswith("eg/kernel-r:local")
        ws = await KernelSocket.connect(gateway, kid)
        out = await ws.execute('cat(Sys.getenv("EG_DOCKER_MODE"), R.version$language, "\\n")')
        assert out["stdout"].split() == ["swarm", "R"], out
        msg_id = await ws.request("execute_request", {"code": 'cat("sleeping\\n")\nSys.sleep(60)', "silent": False})
        while not (await ws.recv(30))["content"].get("text", "").startswith("sleeping"):
            pass
        assert (await http.post(f"/api/kernels/{kid}/interrupt")).status_code == 204
        while (reply := await ws.recv(30))["header"]["msg_type"] != "execute_reply" or reply["parent_header"].get("msg_id") != msg_id:
            pass
        assert reply["content"]["status"] == "abort", reply["content"]
        await ws.close()
    finally:
        r = await http.delete(f"/api/kernels/{kid}")
    assert r.status_code == 204
    assert await docker.services({"kernel_id": kid}) == []


@pytest.mark.parametrize("name, code, output", [
    ("eg_swarm_proxy", "print('swarm via EG kernelspec')", "swarm via EG kernelspec\n"),
    # EG's R_docker (DockerSwarmProcessProxy) with eg's R image: bootstrap-kernel.sh starts IRkernel
    ("eg_R_docker", 'cat(R.version$language, "\\n")', "R \n"),
], ids=["python", "irkernel"])
async def test_enterprise_gateway_swarm_kernelspec(gateway, http, docker, name, code, output):
    r = await http.post("/api/kernels", json={"name": name})
    assert r.status_code == 201, r.text
    kid = r.json()["id"]
    try:
        [service] = await docker.services({"kernel_id": kid})
        assert "Args" not in service["Spec"]["TaskTemplate"]["ContainerSpec"]  # the image's own command
        ws = await KernelSocket.connect(gateway, kid)
        assert (await ws.execute(code))["stdout"] == output
        await ws.close()
    finally:
        await http.delete(f"/api/kernels/{kid}")
    assert await docker.services({"kernel_id": kid}) == []


async def test_swarm_crash_at_start(http, docker):
    kid = str(uuid.uuid4())
    r = await http.post("/api/kernels", json={"name": "docker_swarm_crash", "env": {"KERNEL_ID": kid}})
    assert r.status_code == 502, r.text
    message = r.json()["message"]
    assert message.startswith("confirm_startup:"), message
    assert "with status 4" in message and "swarm boom: cannot start" in message
    assert await docker.services({"kernel_id": kid}) == []


async def test_swarm_refuses_gpus(http, docker):
    kid = str(uuid.uuid4())
    r = await http.post("/api/kernels", json={"name": "docker_swarm", "env": {"KERNEL_ID": kid, "KERNEL_GPUS": "all"}})
    assert r.status_code == 400, r.text
    assert "not supported for Swarm services" in r.json()["message"]
    assert await docker.services({"kernel_id": kid}) == []
