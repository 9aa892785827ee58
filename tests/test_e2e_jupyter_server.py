"""End to end: a real Jupyter Server (``--gateway-url``) as eg's client.

Everything goes through Jupyter Server's own REST API and its ``/api/kernels/{id}/channels``
websocket, as a browser would use them; eg's own REST API only checks what Jupyter Server did
there (and, once, shuts a kernel down behind Jupyter Server's back).
"""

from __future__ import annotations

import asyncio
import sys
import time
from pathlib import Path

import pytest

from eg_core.testing import GatewayProcess, KernelSocket

sys.path.append(str(Path(__file__).parent))
from e2e_servers import JupyterProcess, failure_context, stop_gateway  # noqa: E402

pytestmark = pytest.mark.timeout(240)

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


@pytest.fixture(scope="module")
def eg(tmp_path_factory):
    gw = GatewayProcess(tmp_path_factory.mktemp("eg"))
    yield gw
    leaked = stop_gateway(gw)
    assert not leaked, f"kernel processes outlived the gateway: {leaked}\n{gw.output()[-4000:]}"


@pytest.fixture(scope="module")
def js(tmp_path_factory, eg):
    server = JupyterProcess(tmp_path_factory.mktemp("js"), eg)
    yield server
    server.stop()


@pytest.fixture
def logs(eg, js):
    """Call to get both processes' logs for an assertion message."""
    return lambda: failure_context(eg, js)


async def eg_kernel_ids(eg) -> list[str]:
    async with eg.client() as http:
        r = await http.get("/api/kernels")
        assert r.status_code == 200, r.text
        return [k["id"] for k in r.json()]


@pytest.fixture
async def js_kernel(eg, js, logs):
    """A python3 kernel started through Jupyter Server (and shut down through it afterwards)."""
    async with js.client() as http:
        r = await http.post("/api/kernels", json={"name": "python3"})
        assert r.status_code == 201, f"{r.status_code} {r.text}\n{logs()}"
        model = r.json()
        yield model
        await http.delete(f"/api/kernels/{model['id']}")


async def wait_for(ks: KernelSocket, predicate, timeout: float = 60) -> dict:
    deadline = time.monotonic() + timeout
    while True:
        msg = await ks.recv(timeout=max(deadline - time.monotonic(), 0.1))
        if predicate(msg):
            return msg


async def test_kernelspecs_come_from_eg(js, logs):
    async with js.client() as http:
        r = await http.get("/api/kernelspecs")
        assert r.status_code == 200, r.text
        specs = r.json()
        assert specs["default"] == "python3", specs
        python3 = specs["kernelspecs"]["python3"]
        assert python3["spec"]["display_name"] == "Python 3 (local)", f"not eg's kernelspec: {python3}\n{logs()}"
        assert python3["spec"]["language"] == "python"
        # Jupyter Server rewrites eg's resource URLs to its own /kernelspecs/ proxy.
        assert python3["resources"]["logo-64x64"].endswith("/kernelspecs/python3/logo-64x64.png"), python3["resources"]

        r = await http.get("/api/kernelspecs/python3")
        assert r.status_code == 200, r.text
        assert r.json()["spec"]["display_name"] == "Python 3 (local)"


async def test_kernelspec_logo_is_proxied(js, logs):
    async with js.client() as http:
        logo_url = (await http.get("/api/kernelspecs")).json()["kernelspecs"]["python3"]["resources"]["logo-64x64"]
        r = await http.get(logo_url)
        assert r.status_code == 200, f"{r.status_code} {r.text[:200]}\n{logs()}"
        assert r.content.startswith(PNG_MAGIC), r.content[:20]
        assert r.headers["content-type"].startswith("image/png"), r.headers
        packaged = Path(__file__).parents[1] / "kernelspecs" / "python3" / "logo-64x64.png"
        assert r.content == packaged.read_bytes(), "the logo is not eg's python3 logo"


async def test_kernel_started_through_js_is_an_eg_kernel(eg, js, js_kernel, logs):
    assert js_kernel["name"] == "python3"
    assert js_kernel["id"] in await eg_kernel_ids(eg), logs()
    async with js.client() as http:
        listed = (await http.get("/api/kernels")).json()
        assert js_kernel["id"] in [k["id"] for k in listed], listed
        r = await http.get(f"/api/kernels/{js_kernel['id']}")
        assert r.status_code == 200, r.text
        assert r.json()["name"] == "python3"


async def test_execute_over_js_websocket(js, js_kernel, logs):
    ks = await KernelSocket.connect(js, js_kernel["id"])
    try:
        out = await ks.execute("print(6*7)")
        assert out["stdout"] == "42\n", f"{out}\n{logs()}"
        assert out["reply"]["status"] == "ok"
        out = await ks.execute("1/0")
        assert out["errors"] == ["ZeroDivisionError"], out
        out = await ks.execute("{'a': 1}")
        assert out["results"] == [{"text/plain": "{'a': 1}"}], out
    finally:
        await ks.close()


async def test_interrupt_through_js(js, js_kernel, logs):
    ks = await KernelSocket.connect(js, js_kernel["id"])
    try:
        msg_id = await ks.request("execute_request", {"code": "import time\nprint('sleeping', flush=True)\ntime.sleep(60)", "silent": False})
        await wait_for(ks, lambda m: m["parent_header"].get("msg_id") == msg_id and m["header"]["msg_type"] == "stream")
        started = time.monotonic()
        async with js.client() as http:
            r = await http.post(f"/api/kernels/{js_kernel['id']}/interrupt")
            assert r.status_code == 204, f"{r.status_code} {r.text}\n{logs()}"
        reply = await wait_for(ks, lambda m: m["parent_header"].get("msg_id") == msg_id and m["header"]["msg_type"] == "execute_reply", timeout=30)
        assert reply["content"]["status"] == "error"
        assert reply["content"]["ename"] == "KeyboardInterrupt", reply["content"]
        assert time.monotonic() - started < 30
        # The kernel is still usable.
        assert (await ks.execute("print('after')"))["stdout"] == "after\n"
    finally:
        await ks.close()


async def test_restart_through_js(eg, js, js_kernel, logs):
    kid = js_kernel["id"]
    ks = await KernelSocket.connect(js, kid)
    try:
        assert (await ks.execute("x = 'set before restart'; print(x)"))["stdout"] == "set before restart\n"
        async with js.client() as http:
            r = await http.post(f"/api/kernels/{kid}/restart")
            assert r.status_code == 200, f"{r.status_code} {r.text}\n{logs()}"
            assert r.json()["id"] == kid
        # The same websocket (Jupyter Server keeps its upstream connection) reaches the new kernel.
        out = await ks.execute("print('x' in globals())")
        assert out["stdout"] == "False\n", f"{out}\n{logs()}"
    finally:
        await ks.close()
    assert kid in await eg_kernel_ids(eg)
    # A fresh connection works as well.
    ks = await KernelSocket.connect(js, kid)
    try:
        assert (await ks.execute("print(6*7)"))["stdout"] == "42\n"
    finally:
        await ks.close()


async def test_shutdown_through_js(eg, js, logs):
    async with js.client() as http:
        r = await http.post("/api/kernels", json={"name": "python3"})
        assert r.status_code == 201, f"{r.status_code} {r.text}\n{logs()}"
        kid = r.json()["id"]
        assert kid in await eg_kernel_ids(eg)
        r = await http.delete(f"/api/kernels/{kid}")
        assert r.status_code == 204, f"{r.status_code} {r.text}\n{logs()}"
        assert kid not in await eg_kernel_ids(eg), logs()
        assert kid not in [k["id"] for k in (await http.get("/api/kernels")).json()]
        r = await http.get(f"/api/kernels/{kid}")
        assert r.status_code == 404, r.text


async def test_session_through_js(eg, js, logs):
    (js.root_dir / "work").mkdir(exist_ok=True)
    async with js.client() as http:
        r = await http.post("/api/sessions", json={"path": "work/nb.ipynb", "name": "nb.ipynb", "type": "notebook", "kernel": {"name": "python3"}})
        assert r.status_code == 201, f"{r.status_code} {r.text}\n{logs()}"
        session = r.json()
        kid = session["kernel"]["id"]
        try:
            assert session["path"] == "work/nb.ipynb"
            assert session["kernel"]["name"] == "python3"
            assert kid in await eg_kernel_ids(eg), logs()
            listed = (await http.get("/api/sessions")).json()
            assert [s["kernel"]["id"] for s in listed if s["id"] == session["id"]] == [kid]

            ks = await KernelSocket.connect(js, kid)
            try:
                out = await ks.execute("print(6*7)")
                assert out["stdout"] == "42\n", f"{out}\n{logs()}"
                # Jupyter Server sends KERNEL_WORKING_DIR (the notebook's directory); eg runs a
                # local kernel there.
                out = await ks.execute("import os; print(os.getcwd())")
                assert out["stdout"] == f"{js.root_dir / 'work'}\n", out
            finally:
                await ks.close()
        finally:
            r = await http.delete(f"/api/sessions/{session['id']}")
        assert r.status_code == 204, r.text
        assert kid not in await eg_kernel_ids(eg), logs()


async def test_two_clients_share_a_kernel_through_js(js, js_kernel, logs):
    """Two browser tabs on one kernel: both see iopub output of either's requests."""
    a = await KernelSocket.connect(js, js_kernel["id"])
    b = await KernelSocket.connect(js, js_kernel["id"])
    try:
        # b's upstream connection (Jupyter Server to eg) is up once b has had an answer: before
        # that, a's output could pass before b listens (a browser tab also asks kernel_info first)
        info_id = await b.request("kernel_info_request", {})
        await wait_for(b, lambda m: m["header"]["msg_type"] == "kernel_info_reply" and m["parent_header"].get("msg_id") == info_id)
        msg_id = await a.request("execute_request", {"code": "print('from a')", "silent": False})
        seen = await wait_for(b, lambda m: m["header"]["msg_type"] == "stream" and m["parent_header"].get("msg_id") == msg_id)
        assert seen["content"]["text"] == "from a\n"
        out = await a.execute("print('a again')")
        assert out["stdout"] == "a again\n", out
    finally:
        await asyncio.gather(a.close(), b.close())


async def test_kernel_gone_from_eg_is_dropped_by_js(eg, js, logs):
    """A kernel shut down on eg behind Jupyter Server's back (culled, say) leaves its list: eg's
    404 on GET /api/kernels/{id} is how Jupyter Server learns it."""
    async with js.client() as http:
        r = await http.post("/api/kernels", json={"name": "python3"})
        assert r.status_code == 201, f"{r.status_code} {r.text}\n{logs()}"
        kid = r.json()["id"]
        async with eg.client() as eg_http:
            assert (await eg_http.delete(f"/api/kernels/{kid}")).status_code == 204
        listed = (await http.get("/api/kernels")).json()
        assert kid not in [k["id"] for k in listed], f"{listed}\n{logs()}"
        assert (await http.get(f"/api/kernels/{kid}")).status_code == 404
