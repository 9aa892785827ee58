"""Kernels in Docker containers through the gateway's REST and websocket API, on a real engine."""

from __future__ import annotations

import asyncio
import uuid

import pytest

from eg_core.testing import KernelSocket, places_with, store_args, stored_launch_key, wait_until_busy

pytestmark = pytest.mark.timeout(240)


async def start(http, name: str = "python_docker", env: dict | None = None, expect: int = 201):
    r = await http.post("/api/kernels", json={"name": name, "env": env or {}})
    assert r.status_code == expect, r.text
    return r.json()


async def test_kernelspec_listed(http):
    r = await http.get("/api/kernelspecs")
    specs = r.json()["kernelspecs"]
    assert "python_docker" in specs
    assert specs["python_docker"]["spec"]["metadata"]["kernel_provisioner"]["provisioner_name"] == "eg-docker"
    assert "eg_docker_proxy" in specs and "eg_swarm_proxy" in specs  # EG's process-proxy kernelspecs map to docker


async def test_execute_in_labelled_container(gateway, http, docker, gateway_id):
    model = await start(http, env={"KERNEL_USERNAME": "alice", "KERNEL_FOO": "bar"})
    kid = model["id"]
    try:
        containers = await docker.containers({"kernel_id": kid})
        assert len(containers) == 1, containers
        labels = containers[0]["Labels"]
        assert labels["kernel_id"] == kid
        assert labels["app"] == "enterprise-gateway" and labels["component"] == "kernel"
        assert labels["eg.gateway"] == gateway_id and labels["eg.user"] == "alice"
        assert containers[0]["Names"] == [f"/alice-{kid}"]
        assert containers[0]["State"] == "running"
        info = await docker.container_inspect(containers[0]["Id"])
        assert info["HostConfig"]["NetworkMode"] == "host"
        assert info["Config"]["User"] == "1000:100"  # Enterprise Gateway's default uid/gid, never root

        ws = await KernelSocket.connect(gateway, kid)
        out = await ws.execute(
            "import os, socket; print(os.getuid(), os.getgid(), os.environ['KERNEL_ID'], os.environ.get('KERNEL_FOO'), "
            "'EG_LAUNCH_KEY' in os.environ, os.environ.get('KERNEL_USERNAME'))"
        )
        assert out["reply"]["status"] == "ok", out
        assert out["stdout"].split() == ["1000", "100", kid, "bar", "False", "alice"]
        out = await ws.execute("1 + 41")
        assert out["results"][0]["text/plain"] == "42"
        await ws.close()
    finally:
        await http.delete(f"/api/kernels/{kid}")


@pytest.mark.parametrize("name", ["python_docker", "docker_swarm"])
async def test_launch_key_is_in_nothing_the_engine_shows(gateway_factory, docker, docker_host, tmp_path, name):
    """``docker inspect`` (container, service, task) and the logs never hold the launch key: a
    container gets it as a file copied in before it starts, removed by the launcher; a service
    as a Docker secret, removed with the service."""
    gw = gateway_factory(*store_args(tmp_path / "store"), "--Gateway.launch_timeout=60",
                         env={"DOCKER_HOST": docker_host, "EG_RESPONSE_ADDRESS": "127.0.0.1:0"})
    async with gw.client() as http:
        kid = (await start(http, name))["id"]
        try:
            key = stored_launch_key(tmp_path / "store", kid)
            shown: dict = {}
            if name == "docker_swarm":
                [service] = await docker.services({"kernel_id": kid})
                tasks = await docker.service_tasks(service["ID"])
                [secret] = await docker.secrets({"kernel_id": kid})
                container_id = tasks[0]["Status"]["ContainerStatus"]["ContainerID"]
                shown.update(service=service, tasks=tasks, secret=secret)
                key_path = "/run/secrets/eg-launch-key"
            else:
                [container] = await docker.containers({"kernel_id": kid})
                container_id = container["Id"]
                shown.update(listing=container)
                key_path = "/tmp/eg-launch.key"
            info = await docker.container_inspect(container_id)
            env = dict(e.split("=", 1) for e in info["Config"]["Env"])
            assert env["EG_LAUNCH_KEY_FILE"] == key_path and "EG_LAUNCH_KEY" not in env
            shown.update(inspect=info, logs=await docker.container_logs(container_id, 1000))
            assert places_with(key, **shown) == []
            ws = await KernelSocket.connect(gw, kid)
            out = await ws.execute("import os; print(os.path.exists('/tmp/eg-launch.key'), [k for k in os.environ if k.startswith('EG_LAUNCH')])")
            assert out["stdout"].split() == ["False", "[]"], out  # the launcher removed the file
            await ws.close()
        finally:
            await http.delete(f"/api/kernels/{kid}")
    assert await docker.secrets({"kernel_id": kid}) == []


async def test_interrupt_through_comm_port(gateway, http):
    model = await start(http)
    kid = model["id"]
    try:
        ws = await KernelSocket.connect(gateway, kid)
        await ws.execute("y = 123")
        running = asyncio.ensure_future(ws.execute("import time; time.sleep(60)", timeout=30))
        await wait_until_busy(http, kid)
        r = await http.post(f"/api/kernels/{kid}/interrupt")
        assert r.status_code == 204, r.text
        out = await running
        assert out["errors"] == ["KeyboardInterrupt"], out
        out = await ws.execute("print(y + 1)")
        assert out["stdout"].strip() == "124"  # the kernel survived the interrupt
        await ws.close()
    finally:
        await http.delete(f"/api/kernels/{kid}")


async def test_restart_replaces_container(gateway, http, docker):
    model = await start(http)
    kid = model["id"]
    try:
        before = await docker.containers({"kernel_id": kid})
        ws = await KernelSocket.connect(gateway, kid)
        await ws.execute("x = 1")
        r = await http.post(f"/api/kernels/{kid}/restart")
        assert r.status_code == 200, r.text
        after = await docker.containers({"kernel_id": kid})
        assert len(after) == 1 and after[0]["Id"] != before[0]["Id"]
        assert await docker.container_inspect(before[0]["Id"]) is None  # the old one is removed
        out = await ws.execute("x")
        assert out["errors"] == ["NameError"], out
        out = await ws.execute("print('after restart')")
        assert out["stdout"].strip() == "after restart"
        await ws.close()
    finally:
        await http.delete(f"/api/kernels/{kid}")


async def test_shutdown_removes_container(http, docker):
    model = await start(http)
    kid = model["id"]
    assert len(await docker.containers({"kernel_id": kid})) == 1
    r = await http.delete(f"/api/kernels/{kid}")
    assert r.status_code == 204, r.text
    assert await docker.containers({"kernel_id": kid}) == []
    r = await http.get(f"/api/kernels/{kid}")
    assert r.status_code == 404


async def test_enterprise_gateway_kernelspec(gateway, http, docker):
    """An EG DockerProcessProxy kernelspec: its argv (launch_docker.py) is replaced by the image's
    own command, which reads the launch parameters from the environment."""
    model = await start(http, "eg_docker_proxy")
    kid = model["id"]
    try:
        [container] = await docker.containers({"kernel_id": kid})
        info = await docker.container_inspect(container["Id"])
        assert info["Config"]["Cmd"] == ["/usr/local/share/eg/bootstrap-kernel.sh"]
        env = dict(e.split("=", 1) for e in info["Config"]["Env"])
        assert env["KERNEL_ID"] == kid and env["RESPONSE_ADDRESS"] and env["KERNEL_LANGUAGE"] == "python"
        ws = await KernelSocket.connect(gateway, kid)
        out = await ws.execute("print('hello from EG image convention')")
        assert out["stdout"].strip() == "hello from EG image convention"
        await ws.close()
    finally:
        await http.delete(f"/api/kernels/{kid}")
    assert await docker.containers({"kernel_id": kid}) == []


# -- failures: quick, clear, nothing left behind ------------------------------------------------


async def test_missing_image_fails_fast(http, docker):
    kid = str(uuid.uuid4())
    loop = asyncio.get_running_loop()
    t0 = loop.time()
    r = await http.post("/api/kernels", json={"name": "docker_missing_image", "env": {"KERNEL_ID": kid}})
    assert r.status_code == 502, r.text
    message = r.json()["message"]
    assert message.startswith("image_pull:"), message
    assert "eg/no-such-image:never-built" in message and "pulling it failed" in message
    assert loop.time() - t0 < 15
    assert await docker.containers({"kernel_id": kid}) == []


async def test_crash_at_start_reports_logs(http, docker):
    kid = str(uuid.uuid4())
    r = await http.post("/api/kernels", json={"name": "docker_crash_at_start", "env": {"KERNEL_ID": kid}})
    assert r.status_code == 502, r.text
    message = r.json()["message"]
    assert message.startswith("confirm_startup:"), message
    assert "exited with status 3" in message
    assert "boom: this kernel cannot start" in message  # the container's last log lines
    assert await docker.containers({"kernel_id": kid}) == []


async def test_launch_timeout(http, docker):
    kid = str(uuid.uuid4())
    r = await http.post(
        "/api/kernels", json={"name": "docker_never_calls_back", "env": {"KERNEL_ID": kid, "KERNEL_LAUNCH_TIMEOUT": "4"}}
    )
    assert r.status_code == 504, r.text
    message = r.json()["message"]
    assert message.startswith("confirm_startup:") and "launch timeout of 4s" in message, message
    assert "is still running" in message and "received nothing" in message
    assert await docker.containers({"kernel_id": kid}) == []


async def test_gpu_request_without_gpu_runtime(http, docker):
    kid = str(uuid.uuid4())
    r = await http.post("/api/kernels", json={"name": "docker_gpu", "env": {"KERNEL_ID": kid}})
    assert r.status_code == 502, r.text
    message = r.json()["message"]
    assert message.startswith("launch_process:") and "could not start container" in message, message
    assert "gpu" in message.lower()
    assert await docker.containers({"kernel_id": kid}) == []
