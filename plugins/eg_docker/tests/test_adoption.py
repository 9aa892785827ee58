"""A kernel container outlives the process that launched it: re-attach from saved state
(``eg_load_process_info``), and find or remove the containers nobody knows (orphans)."""

from __future__ import annotations

import asyncio
import json
import os
import shutil
import signal
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
from jupyter_client.manager import AsyncKernelManager
from jupyter_client.provisioning import KernelProvisionerFactory

from eg_core.testing import kernelspec_dir, wait_until_gone

pytestmark = pytest.mark.timeout(240)

LAUNCH_AND_SAVE = textwrap.dedent(
    """
    import asyncio, json, sys
    from jupyter_client.manager import AsyncKernelManager

    async def main(out):
        km = AsyncKernelManager(kernel_name="python_docker")
        await km.start_kernel()
        kc = km.client()
        kc.start_channels()
        await kc.wait_for_ready(timeout=60)
        await kc.execute_interactive("adopted = 'state kept across the gateway restart'", timeout=30)
        info = await km.provisioner.get_provisioner_info()
        conn = km.get_connection_info()
        conn["key"] = conn["key"].decode()
        with open(out, "w") as f:
            json.dump({"kernel_id": km.kernel_id, "provisioner_info": info, "connection_info": conn}, f)
        print("SAVED", flush=True)
        await asyncio.Event().wait()   # run until killed

    asyncio.run(main(sys.argv[1]))
    """
)


@pytest.fixture
def jupyter_path(tmp_path, monkeypatch, docker_host):
    """A JUPYTER_PATH holding the python_docker kernelspec, for plain jupyter_client use."""
    kernels = tmp_path / "jupyter" / "kernels"
    kernels.mkdir(parents=True)
    shutil.copytree(kernelspec_dir("python_docker"), kernels / "python_docker")
    monkeypatch.setenv("JUPYTER_PATH", str(tmp_path / "jupyter"))
    monkeypatch.setenv("DOCKER_HOST", docker_host)
    monkeypatch.setenv("EG_RESPONSE_ADDRESS", "127.0.0.1:0")
    return str(tmp_path / "jupyter")


async def test_adopt_after_sigkill_from_saved_state(tmp_path, jupyter_path, docker):
    saved = tmp_path / "saved.json"
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-c", LAUNCH_AND_SAVE, str(saved), stdout=subprocess.PIPE, stderr=subprocess.STDOUT
    )
    try:
        line = await asyncio.wait_for(proc.stdout.readline(), 90)
        assert line.strip() == b"SAVED", line + await proc.stdout.read(4000)
    finally:
        proc.send_signal(signal.SIGKILL)  # the launching process dies without any cleanup
        await proc.wait()
    data = json.loads(saved.read_text())
    kid = data["kernel_id"]
    [container] = await docker.containers({"kernel_id": kid})
    assert container["State"] == "running"

    # A new process re-attaches from the saved state, the way a restarted gateway would.
    km = AsyncKernelManager(kernel_name="python_docker")
    km.kernel_id = kid
    km.provisioner = KernelProvisionerFactory.instance().create_provisioner_instance(kid, km.kernel_spec, parent=km)
    await km.provisioner.load_provisioner_info(data["provisioner_info"])
    km.load_connection_info(data["connection_info"])
    assert km.has_kernel and await km.is_alive()
    kc = km.client()
    kc.start_channels()
    try:
        await kc.wait_for_ready(timeout=30)
        outputs = []
        reply = await kc.execute_interactive("print(adopted)", timeout=30, output_hook=outputs.append)
        assert reply["content"]["status"] == "ok"
        text = "".join(m["content"].get("text", "") for m in outputs if m["msg_type"] == "stream")
        assert text.strip() == "state kept across the gateway restart"
    finally:
        kc.stop_channels()
    await km.shutdown_kernel()
    assert await docker.containers({"kernel_id": kid}) == []


@pytest.mark.parametrize("name,kinds", [("python_docker", ["container"]), ("docker_swarm", ["service", "secret"])])
async def test_orphans_after_gateway_sigkill(gateway_factory, docker, docker_host, tmp_path, name, kinds):
    gateway_id = f"eg-orphans-{os.getpid()}-{tmp_path.name[-6:]}"
    env = {"DOCKER_HOST": docker_host, "EG_RESPONSE_ADDRESS": "127.0.0.1:0"}
    # The first gateway records the kernel (without a store its kernels would end with it); the
    # next one reads another, empty store, so the container is an orphan to it.
    first = gateway_factory(f"--DockerSettings.gateway_id={gateway_id}", f"--FileSessionStore.persistence_root={tmp_path / 'store'}", env=env)
    async with first.client() as http:
        r = await http.post("/api/kernels", json={"name": name})
        assert r.status_code == 201, r.text
        kid = r.json()["id"]
    first.proc.kill()  # SIGKILL: no kernel shutdown
    first.proc.wait()
    [container] = await docker.containers({"kernel_id": kid})
    assert container["State"] == "running"
    service_names = [s["Spec"]["Name"] for s in await docker.services({"kernel_id": kid})]

    cli = shutil.which("eg-docker-orphans", path=os.path.dirname(sys.executable))
    listed = subprocess.run(
        [cli, "--gateway-id", gateway_id, "--json"], capture_output=True, text=True, env={**os.environ, "DOCKER_HOST": docker_host}, timeout=60
    )
    assert listed.returncode == 0, listed.stderr
    assert [(o["kind"], o["kernel_id"]) for o in json.loads(listed.stdout)] == [(kind, kid) for kind in kinds]

    second = gateway_factory(
        f"--DockerSettings.gateway_id={gateway_id}", "--DockerSettings.orphans_at_startup=remove",
        f"--FileSessionStore.persistence_root={tmp_path / 'empty-store'}", env=env,
    )
    removed = f"container {container['Names'][0].lstrip('/')}" if kinds == ["container"] else f"service {service_names[0]}"
    await second.wait_for_output(f"docker: removed {removed}")  # the sweep runs once it serves
    assert await docker.services({"kernel_id": kid}) == [] and await docker.secrets({"kernel_id": kid}) == []
    assert await wait_until_gone(lambda k: docker.containers({"kernel_id": k}), kid) == []  # a service's task ends after it


async def test_gateway_restart_adopts_kernel_containers(gateway_factory, docker, docker_host, tmp_path):
    """HA through the API: SIGKILL the gateway, start it again on the same session store: the
    container is adopted (same id, same state), not treated as an orphan."""
    from eg_core.testing import KernelSocket

    gateway_id = f"eg-ha-{os.getpid()}-{tmp_path.name[-6:]}"
    env = {"DOCKER_HOST": docker_host, "EG_RESPONSE_ADDRESS": "127.0.0.1:0"}
    args = (
        f"--DockerSettings.gateway_id={gateway_id}", "--DockerSettings.orphans_at_startup=remove",
        "--Gateway.availability_mode=standalone", f"--FileSessionStore.persistence_root={tmp_path / 'store'}",
    )
    first = gateway_factory(*args, env=env)
    async with first.client() as http:
        r = await http.post("/api/kernels", json={"name": "python_docker"})
        assert r.status_code == 201, r.text
        kid = r.json()["id"]
    ks = await KernelSocket.connect(first, kid)
    await ks.execute("survivor = 'kept'")
    await ks.close()
    first.proc.kill()
    first.proc.wait()

    second = gateway_factory(*args, env=env)
    assert [c["State"] for c in await docker.containers({"kernel_id": kid})] == ["running"]
    ks = await KernelSocket.connect(second, kid)
    assert (await ks.execute("print(survivor)"))["stdout"] == "kept\n"
    await ks.close()
    async with second.client() as http:
        assert (await http.post(f"/api/kernels/{kid}/interrupt", json={})).status_code == 204
        assert (await http.delete(f"/api/kernels/{kid}")).status_code == 204
    assert await docker.containers({"kernel_id": kid}) == []


async def test_a_crash_during_concurrent_starts_leaves_no_container(gateway_factory, docker, docker_host, tmp_path):
    """Default settings (orphans only logged): SIGKILL the gateway while three containers wait
    for their launcher's callback; the next gateway removes them from the launching records,
    also one whose container id the crashed gateway never recorded (found by its name)."""
    store = tmp_path / "sessions"  # the test harness's default session store
    env = {"DOCKER_HOST": docker_host, "EG_RESPONSE_ADDRESS": "127.0.0.1:0"}
    args = (f"--DockerSettings.gateway_id=eg-crash-{os.getpid()}-{tmp_path.name[-6:]}",)
    first = gateway_factory(*args, env=env)
    async with first.client() as http:
        starts = [asyncio.ensure_future(http.post("/api/kernels", json={"name": "docker_never_calls_back"})) for _ in range(3)]
        for _ in range(2400):
            records = [json.loads(p.read_text()) for p in store.glob("*.json")]
            if len(records) == 3 and all(r["provisioner"]["eg"]["process_info"].get("container_id") for r in records):
                break
            await asyncio.sleep(0.05)
        in_flight = [r["kernel_id"] for r in records]
        assert len(in_flight) == 3 and all(r["status"] == "launching" for r in records), records
        first.proc.kill()
        first.proc.wait()
        await asyncio.gather(*starts, return_exceptions=True)
    for kid in in_flight:
        assert len(await docker.containers({"kernel_id": kid})) == 1
    path = store / f"{in_flight[0]}.json"
    record = json.loads(path.read_text())
    del record["provisioner"]["eg"]["process_info"]["container_id"]  # as if killed right after creating it
    path.write_text(json.dumps(record))

    second = gateway_factory(*args, env=env)
    for kid in in_flight:
        assert await docker.containers({"kernel_id": kid}) == []
        assert f"[kernel {kid}] removed" in second.output()
    assert list(store.glob("*.json")) == []
