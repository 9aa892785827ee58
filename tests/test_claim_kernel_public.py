"""``eg_claim_kernel`` implemented as a third party would: an installed plugin (its own
distribution and ``eg.plugins`` entry point) that imports only eg's public API, starts a pooled
kernel with ``GatewayAPI.start_pooled`` and hands it to a request with ``GatewayAPI.bind_pooled``.
A real gateway process and a real ipykernel; the builtin ``pools`` plugin is disabled."""

from __future__ import annotations

import os

from eg_core.testing import KernelSocket, wait_for_event

PLUGIN = '''
"""A warm pool of one python3 kernel, on eg's public API only."""

import asyncio

from eg_core import BadRequest, NotFound, hookimpl


class State:
    gateway = None
    filling = None


@hookimpl
def eg_startup(gateway):
    State.gateway = gateway
    State.filling = asyncio.ensure_future(gateway.start_pooled("python3"))


@hookimpl
async def eg_claim_kernel(kernel):
    for pooled in State.gateway.pooled_kernels():
        if pooled.kernel_name != kernel.kernel_name:
            continue
        try:
            await State.gateway.bind_pooled(pooled.kernel_id, kernel)
        except (NotFound, BadRequest) as exc:
            kernel.log.info("onepool: %s", exc.message)
            continue
        return pooled.kernel_id
    return None
'''


def _install(site):
    dist_info = site / "eg_onepool-0.1.dist-info"
    dist_info.mkdir(parents=True)
    (dist_info / "METADATA").write_text("Metadata-Version: 2.1\nName: eg-onepool\nVersion: 0.1\n")
    (dist_info / "entry_points.txt").write_text("[eg.plugins]\nonepool = eg_onepool\n")
    (site / "eg_onepool.py").write_text(PLUGIN)
    return site / "eg_onepool.py"


def test_the_plugin_uses_only_the_public_api(tmp_path):
    from tests.test_public_api import violations

    assert violations(_install(tmp_path / "site")) == []


async def test_a_third_party_pool_serves_a_request(gateway_factory, tmp_path):
    site = tmp_path / "site"
    _install(site)
    workdir = tmp_path / "notebooks"
    workdir.mkdir()
    env = {"PYTHONPATH": os.pathsep.join([str(site), os.environ.get("PYTHONPATH", "")]), "EG_DISABLED_PLUGINS": "pools"}
    gw = gateway_factory(env=env)
    async with gw.client() as http:
        launched = await wait_for_event(gw, "launched", timeout=120)
        pooled_id = launched["kernel_id"]
        assert (await http.get("/api/kernels")).json() == []
        # a value only a launch applies: the plugin's bind_pooled is refused, a kernel is started
        r = await http.post("/api/kernels", json={"name": "python3", "env": {"KERNEL_IMAGE": "other"}})
        assert r.status_code == 201, r.text
        assert r.json()["id"] != pooled_id and not r.json().get("from_pool")
        assert "onepool: pooled kernel" in gw.output() and "KERNEL_IMAGE can only be applied when a kernel starts" in gw.output()
        await http.delete(f"/api/kernels/{r.json()['id']}")

        request_env = {"KERNEL_USERNAME": "alice", "KERNEL_PROJECT": "it's; import os", "KERNEL_WORKING_DIR": str(workdir)}
        r = await http.post("/api/kernels", json={"name": "python3", "env": request_env})
        assert r.status_code == 201, r.text
        model = r.json()
        assert model["id"] == pooled_id and model["from_pool"] is True
        claimed = await wait_for_event(gw, "pool_claimed", pooled_id)
        assert claimed["details"]["request_id"] != pooled_id
        ws = await KernelSocket.connect(gw, pooled_id)
        try:
            out = await ws.execute("import os; print(os.environ['KERNEL_USERNAME'], os.environ['KERNEL_PROJECT'], os.getcwd(), sep='|')")
        finally:
            await ws.close()
        assert out["stdout"].strip() == f"alice|it's; import os|{workdir}" and out["reply"]["execution_count"] == 1
        assert [k["id"] for k in (await http.get("/api/kernels")).json()] == [pooled_id]
        # the pool is empty now: the next request starts a kernel
        r = await http.post("/api/kernels", json={"name": "python3"})
        assert r.status_code == 201 and r.json()["id"] != pooled_id, r.text
