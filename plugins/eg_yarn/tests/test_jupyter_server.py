"""A real Jupyter Server (``--gateway-url``) as the client of YARN kernels: the kernelspecs it
lists come from eg-yarn, and a Spark (YARN cluster mode) kernel starts, runs, interrupts and shuts
down through Jupyter Server's own REST API and websocket."""

from __future__ import annotations

import asyncio
import sys
from pathlib import Path

import pytest

from eg_core.testing import KernelSocket, wait_until_busy

sys.path.append(str(Path(__file__).parents[3] / "tests"))
from e2e_servers import JupyterProcess, failure_context  # noqa: E402

pytestmark = pytest.mark.timeout(300)


@pytest.fixture(scope="module")
def js(tmp_path_factory, gateway):
    server = JupyterProcess(tmp_path_factory.mktemp("js"), gateway)
    yield server
    server.stop()


async def test_yarn_kernel_through_jupyter_server(gateway, js, rm, reset):
    cluster = reset
    async with js.client() as http:
        specs = (await http.get("/api/kernelspecs")).json()["kernelspecs"]
        assert {"spark_python_yarn_cluster", "python_yarn_rest"} <= set(specs)
        r = await http.post("/api/kernels", json={"name": "spark_python_yarn_cluster"})
        assert r.status_code == 201, f"{r.text}\n{failure_context(gateway, js)}"
        kid = r.json()["id"]
        [app] = rm.call(lambda: [a for a in cluster.apps.values() if a.name == kid])
        ks = await KernelSocket.connect(js, kid)
        try:
            assert (await ks.execute("import os; print(os.environ['CONTAINER_ID'])"))["stdout"] == app.container_id + "\n"
            running = asyncio.ensure_future(ks.execute("import time; time.sleep(60)", timeout=90))
            async with gateway.client() as eg_http:
                await wait_until_busy(eg_http, kid)
            assert (await http.post(f"/api/kernels/{kid}/interrupt")).status_code == 204
            assert (await asyncio.wait_for(running, 60))["errors"] == ["KeyboardInterrupt"]
        finally:
            await ks.close()
        assert (await http.delete(f"/api/kernels/{kid}")).status_code == 204
    assert app.state in ("FINISHED", "KILLED")
