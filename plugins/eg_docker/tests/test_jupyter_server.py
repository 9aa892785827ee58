"""A real Jupyter Server (``--gateway-url``) as the client of a Docker kernel, as JupyterLab
uses it: opening a notebook sends KERNEL_WORKING_DIR (the notebook's directory on the Jupyter
Server host), which a container cannot honour without mirroring; the kernel starts anyway."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

from eg_core.testing import KernelSocket

sys.path.append(str(Path(__file__).parents[3] / "tests"))
from e2e_servers import JupyterProcess, failure_context  # noqa: E402

pytestmark = pytest.mark.timeout(300)


async def test_notebook_session_starts_a_docker_kernel(tmp_path, gateway, docker):
    js = JupyterProcess(tmp_path, gateway)
    try:
        (js.root_dir / "work").mkdir()
        async with js.client() as http:
            body = {"path": "work/analysis.ipynb", "type": "notebook", "name": "analysis.ipynb", "kernel": {"name": "python_docker"}}
            r = await http.post("/api/sessions", json=body)
            assert r.status_code == 201, f"{r.text}\n{failure_context(gateway, js)}"
            kid = r.json()["kernel"]["id"]
            [container] = await docker.containers({"kernel_id": kid})
            info = await docker.container_inspect(container["Id"])
            assert not info["Config"]["WorkingDir"].endswith("/work")
            ks = await KernelSocket.connect(js, kid)
            try:
                assert (await ks.execute("print(6 * 7)"))["stdout"] == "42\n"
            finally:
                await ks.close()
            assert (await http.delete(f"/api/sessions/{r.json()['id']}")).status_code == 204
    finally:
        js.stop()
