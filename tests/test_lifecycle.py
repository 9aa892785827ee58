"""A kernel that dies: reported dead to clients and in its model, auto-restarted like jupyter_client."""

from __future__ import annotations

import asyncio

from eg_core.testing import KernelSocket


async def states_until(ks: KernelSocket, wanted: str, timeout: float = 30) -> list[str]:
    seen = []
    while wanted not in seen:
        msg = await ks.recv(timeout)
        if msg["header"]["msg_type"] == "status":
            seen.append(msg["content"]["execution_state"])
    return seen


async def test_dead_kernel_is_reported_and_restarted(gateway, kernel, http):
    ks = await KernelSocket.connect(gateway, kernel["id"])
    await ks.execute("before = 1")
    await ks.request("execute_request", {"code": "import os; os._exit(1)", "silent": False})
    assert "dead" in await states_until(ks, "restarting")
    for _ in range(100):
        if (await http.get(f"/api/kernels/{kernel['id']}")).json()["execution_state"] == "idle":
            break
        await asyncio.sleep(0.1)
    out = await ks.execute("print('before' in globals())")
    assert out["stdout"] == "False\n"
    await ks.close()
    assert f"[kernel {kernel['id']}] died with status 1" in gateway.output()


async def test_without_autorestart_the_model_says_dead(gateway_factory):
    gw = gateway_factory("--Gateway.autorestart=False")
    async with gw.client() as http:
        kid = (await http.post("/api/kernels", json={})).json()["id"]
        ks = await KernelSocket.connect(gw, kid, v1=True)
        await ks.request("execute_request", {"code": "import os; os._exit(3)", "silent": False})
        await states_until(ks, "dead")
        assert (await http.get(f"/api/kernels/{kid}")).json()["execution_state"] == "dead"
        assert (await http.delete(f"/api/kernels/{kid}")).status_code == 204


async def test_a_culled_kernel_says_so(gateway_factory):
    gw = gateway_factory("--KernelCuller.cull_idle_timeout=1", "--KernelCuller.cull_interval=1", "--KernelCuller.cull_connected=True")
    async with gw.client() as http:
        kid = (await http.post("/api/kernels", json={})).json()["id"]
        ks = await KernelSocket.connect(gw, kid)
        assert "dead" in await states_until(ks, "dead", timeout=20)
        await asyncio.wait_for(ks.ws.wait_closed(), 10)
        assert ks.ws.close_reason.startswith("culled: idle for")
        r = await http.get(f"/api/kernels/{kid}")
        assert r.status_code == 404 and "(culled: idle for" in r.json()["message"]
