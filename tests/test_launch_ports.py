"""A kernel whose port was taken between the gateway's choice and its own bind is launched (or
restarted) again with new ports, instead of failing the request."""

from __future__ import annotations

import pytest

from eg_core.testing import KernelSocket

pytestmark = pytest.mark.timeout(180)


async def test_a_kernel_that_finds_its_port_taken_is_launched_again(gateway_factory):
    gw = gateway_factory()
    async with gw.client() as http:
        r = await http.post("/api/kernels", json={"name": "port_taken"})
        assert r.status_code == 201, r.text
        kid = r.json()["id"]
        ws = await KernelSocket.connect(gw, kid)
        assert (await ws.execute("print('up')"))["stdout"] == "up\n"
        await ws.close()
        assert (await http.delete(f"/api/kernels/{kid}")).status_code == 204
    out = gw.output()
    assert "Address already in use" in out and "launching again with new ports" in out
    assert out.count(f"[kernel {kid}] launched port_taken") == 1


async def test_a_restart_that_finds_a_port_taken_restarts_again_with_new_ports(gateway_factory):
    gw = gateway_factory()
    async with gw.client() as http:
        r = await http.post("/api/kernels", json={"name": "port_taken_at_restart"})
        assert r.status_code == 201, r.text
        kid = r.json()["id"]
        ws = await KernelSocket.connect(gw, kid)
        assert (await ws.execute("x = 1"))["stdout"] == ""
        r = await http.post(f"/api/kernels/{kid}/restart")
        assert r.status_code == 200, r.text
        assert (await ws.execute("print('x' in dir())"))["stdout"] == "False\n"
        await ws.close()
        assert (await http.delete(f"/api/kernels/{kid}")).status_code == 204
    out = gw.output()
    assert "Address already in use" in out and "restarting again with new ports" in out
