"""The plugin's hooks driven in-process (no gateway): a kernel outlives its SSH connection and is
adopted from its persisted state alone, then watched, signalled and killed through its comm port."""

from __future__ import annotations

import asyncio
import json
import signal
import uuid

import pytest
from jupyter_client.asynchronous import AsyncKernelClient
from traitlets.config import Config

from eg_core import KernelContext, remote
from eg_ssh import SSHResourceManager
from eg_ssh import _lifecycle as lifecycle
from eg_ssh._ssh import pool
from eg_ssh.testing import KERNEL_PYTHON, user_processes, wait_no_processes

USER = "egtest"


@pytest.fixture
async def listener(monkeypatch):
    monkeypatch.setenv("EG_RESPONSE_PORT", "0")
    yield await remote.start_listener()
    await remote.stop_listener()
    remote._starting = None


@pytest.fixture
def settings(sshd):
    SSHResourceManager.clear_instance()
    c = Config()
    c.SSHResourceManager.update(
        remote_hosts=["127.0.0.1"], ssh_port=sshd.port, remote_user=USER, client_keys=[str(sshd.client_key)],
        known_hosts=str(sshd.known_hosts), remote_python=KERNEL_PYTHON,
    )
    yield SSHResourceManager.instance(config=c)
    SSHResourceManager.clear_instance()


async def kernel_info(info: dict) -> dict:
    kc = AsyncKernelClient()
    kc.load_connection_info(info)
    kc.start_channels()
    try:
        return await kc.kernel_info(reply=True, timeout=20)
    finally:
        kc.stop_channels()


async def test_survives_connection_loss_and_is_adopted(sshd, listener, settings):
    kid = str(uuid.uuid4())
    kernel = KernelContext(kernel_id=kid, kernel_name="python_ssh", resource_manager="ssh", env={"KERNEL_ID": kid})
    cmd = ["python", "{launcher}", "--kernel-id", kid, "--response-address", listener.address]
    await lifecycle.launch_process(kernel, cmd)
    await lifecycle.confirm_startup(kernel)
    assert (await kernel_info(kernel.connection_info))["content"]["status"] == "ok"
    waiter = asyncio.ensure_future(lifecycle.wait(kernel))

    # the SSH connection goes away: the launcher and kernel live on, and wait() keeps waiting
    await pool.close_all()
    await asyncio.sleep(1.0)
    assert not waiter.done()
    assert await lifecycle.poll(kernel) is None
    assert user_processes(USER, kid)

    # another gateway process adopts the kernel from its persisted state alone
    saved = json.loads(json.dumps(kernel.to_json()))
    assert "ssh_process" not in json.dumps(saved)
    adopted = KernelContext.from_json(saved)
    await lifecycle.load_process_info(adopted, saved["state"])
    assert await lifecycle.poll(adopted) is None
    await lifecycle.send_signal(adopted, signal.SIGINT)  # an interrupt does not end it
    assert (await kernel_info(adopted.connection_info))["content"]["status"] == "ok"

    await lifecycle.kill(adopted)
    assert await asyncio.wait_for(waiter, 20) == 0
    assert await lifecycle.poll(adopted) == 0
    lifecycle.cleanup(adopted)
    lifecycle.cleanup(kernel)
    assert await wait_no_processes(USER, kid) == []
    await pool.close_all()


async def test_kill_over_ssh_when_the_comm_port_is_unknown(sshd, listener, settings):
    """Before the callback there is no comm port: kill signals the launcher's group over SSH."""
    kid = str(uuid.uuid4())
    kernel = KernelContext(kernel_id=kid, kernel_name="x", resource_manager="ssh", env={"KERNEL_ID": kid})
    await lifecycle.launch_process(kernel, ["python", "-c", "import time; time.sleep(300)", kid])
    assert user_processes(USER, kid)
    assert await lifecycle.poll(kernel) is None
    await lifecycle.kill(kernel)
    assert await lifecycle.poll(kernel) is not None
    lifecycle.cleanup(kernel)
    assert await wait_no_processes(USER, kid) == []
    await pool.close_all()


async def test_launch_abandoned_mid_start_leaves_nothing(sshd, listener, settings, monkeypatch):
    """The launch is cancelled (e.g. by the launch timeout) after the bootstrap started the
    launcher but before the gateway acknowledged its pid: once the channel closes, the bootstrap
    kills what it started."""
    from eg_ssh import _remote

    line = _remote._line

    def cancelled_at_ack(value):
        if value == "go":
            raise asyncio.CancelledError()
        return line(value)

    monkeypatch.setattr(_remote, "_line", cancelled_at_ack)
    kid = str(uuid.uuid4())
    kernel = KernelContext(kernel_id=kid, kernel_name="x", resource_manager="ssh", env={"KERNEL_ID": kid})
    with pytest.raises(asyncio.CancelledError):
        await lifecycle.launch_process(kernel, ["python", "-c", "import time; time.sleep(300)", kid])
    assert user_processes(USER, kid)  # started, never acknowledged
    await lifecycle.kill(kernel)
    lifecycle.cleanup(kernel)
    assert await wait_no_processes(USER, kid) == []
    await pool.close_all()


async def test_gateway_restart_adopts_ssh_kernels(ssh_gateway, tmp_path):
    """HA through the API: SIGKILL the gateway; a new one on the same session store adopts the
    remote kernel (same id, same state) and can interrupt and shut it down."""
    from eg_core.testing import KernelSocket, wait_until_busy

    store = tmp_path / "store"
    args = ("--Gateway.availability_mode=standalone", f"--FileSessionStore.persistence_root={store}")
    first = ssh_gateway(*args)
    async with first.client() as http:
        r = await http.post("/api/kernels", json={"name": "python_ssh"})
        assert r.status_code == 201, r.text
        kid = r.json()["id"]
    ws = await KernelSocket.connect(first, kid)
    await ws.execute("survivor = 'kept'")
    await ws.close()
    first.proc.send_signal(signal.SIGKILL)
    first.proc.wait()

    second = ssh_gateway(*args)
    ws = await KernelSocket.connect(second, kid)
    assert (await ws.execute("print(survivor)"))["stdout"] == "kept\n"
    run = asyncio.ensure_future(ws.execute("import time; time.sleep(60)"))
    async with second.client() as http:
        await wait_until_busy(http, kid)
        assert (await http.post(f"/api/kernels/{kid}/interrupt", json={})).status_code == 204
        assert (await asyncio.wait_for(run, 20))["errors"] == ["KeyboardInterrupt"]
        await ws.close()
        assert (await http.delete(f"/api/kernels/{kid}")).status_code == 204
    assert await wait_no_processes(USER) == []


async def test_a_crash_during_concurrent_ssh_starts_leaves_nothing_running(ssh_gateway, tmp_path):
    """Default settings: SIGKILL the gateway while three SSH launches wait for their callback;
    the next gateway removes the remote processes from the launching records."""
    store = tmp_path / "sessions"  # the test harness's default session store
    first = ssh_gateway()
    async with first.client() as http:
        starts = [asyncio.ensure_future(http.post("/api/kernels", json={"name": "ssh_sleep"})) for _ in range(3)]
        for _ in range(1200):
            records = [json.loads(p.read_text()) for p in store.glob("*.json")]
            if len(records) == 3 and all(r["provisioner"]["eg"]["process_info"].get("pgid") for r in records):
                break
            await asyncio.sleep(0.05)
        in_flight = [r["kernel_id"] for r in records]
        assert len(in_flight) == 3 and all(r["status"] == "launching" for r in records), records
        first.proc.send_signal(signal.SIGKILL)
        first.proc.wait()
        await asyncio.gather(*starts, return_exceptions=True)
    assert all(user_processes(USER, kid) for kid in in_flight)  # left running, unknown

    second = ssh_gateway()
    for kid in in_flight:
        assert await wait_no_processes(USER, kid, timeout=30) == []
        assert f"[kernel {kid}] removed" in second.output()
    assert list(store.glob("*.json")) == []
