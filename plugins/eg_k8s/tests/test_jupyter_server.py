"""A real Jupyter Server (``--gateway-url``) as the client of pod kernels: it opens a notebook
(sending KERNEL_WORKING_DIR, its own directory, which is dropped as Enterprise Gateway does),
runs code, interrupts, restarts (same kernel id, a new pod) and shuts down; nothing is left."""

from __future__ import annotations

import asyncio
import sys
import time
from pathlib import Path

import pytest

from eg_core.testing import KernelSocket

from k8s_helpers import left_behind, pod_of

sys.path.append(str(Path(__file__).parents[3] / "tests"))
from e2e_servers import JupyterProcess, failure_context  # noqa: E402

pytestmark = pytest.mark.timeout(300)


async def reply_to(ks: KernelSocket, msg_id: str, timeout: float = 60) -> dict:
    deadline = time.monotonic() + timeout
    while True:
        msg = await ks.recv(timeout=max(deadline - time.monotonic(), 0.1))
        if msg["parent_header"].get("msg_id") == msg_id and msg["header"]["msg_type"] == "execute_reply":
            return msg


async def test_jupyter_server_runs_interrupts_restarts_and_shuts_down_a_pod_kernel(tmp_path, gateway, core, namespace):
    js = JupyterProcess(tmp_path, gateway)
    logs = lambda: failure_context(gateway, js)  # noqa: E731
    try:
        (js.root_dir / "work").mkdir()
        async with js.client() as http:
            body = {"path": "work/analysis.ipynb", "type": "notebook", "name": "analysis.ipynb", "kernel": {"name": "python_kubernetes"}}
            r = await http.post("/api/sessions", json=body)
            assert r.status_code == 201, f"{r.text}\n{logs()}"
            session, kid = r.json()["id"], r.json()["kernel"]["id"]
            first_pod = await pod_of(core, namespace, kid)
            assert first_pod.status.phase == "Running"
            ks = await KernelSocket.connect(js, kid)
            try:
                assert (await ks.execute("x = 6 * 7; print(x)"))["stdout"] == "42\n"
                msg_id = await ks.request("execute_request", {"code": "import time; print('sleeping', flush=True); time.sleep(60)", "silent": False})
                while True:  # the cell runs
                    msg = await ks.recv(timeout=60)
                    if msg["parent_header"].get("msg_id") == msg_id and msg["header"]["msg_type"] == "stream":
                        break
                r = await http.post(f"/api/kernels/{kid}/interrupt")
                assert r.status_code == 204, f"{r.text}\n{logs()}"
                assert (await reply_to(ks, msg_id, 30))["content"]["ename"] == "KeyboardInterrupt"

                r = await http.post(f"/api/kernels/{kid}/restart")
                assert r.status_code == 200 and r.json()["id"] == kid, f"{r.text}\n{logs()}"
                out = await ks.execute("print('x' in globals())")
                assert out["stdout"] == "False\n", f"{out}\n{logs()}"
            finally:
                await ks.close()
            second_pod = await pod_of(core, namespace, kid)
            assert second_pod.metadata.uid != first_pod.metadata.uid, "a restart makes a new pod"
            assert (await http.delete(f"/api/sessions/{session}")).status_code == 204
            deadline = time.monotonic() + 60
            while (left := await left_behind(core, namespace, kid)) != {}:
                assert time.monotonic() < deadline, f"left behind: {left}\n{logs()}"
                await asyncio.sleep(0.2)
    finally:
        js.stop()
