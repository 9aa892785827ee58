"""The ``culling`` builtin plugin: idle kernels are shut down, busy and connected ones are kept
unless ``cull_busy`` / ``cull_connected``; the reason is logged and sent as a ``culled`` event.

Real gateway processes and real (tiny) kernels; short timeouts (2 s idle, 0.5 s interval).
"""

from __future__ import annotations

import asyncio
import json
import re
import subprocess
import sys
import time

import pytest
import websockets

from eg_core.testing import KernelSocket

TIMEOUT = ["--KernelCuller.cull_idle_timeout=2", "--KernelCuller.cull_interval=0.5"]
EVENT_LINE = re.compile(r"\beg\.events\] (\{.*\})$")
REASON = re.compile(r"idle for \d+ s, timeout 2 s, \d+ connections?")


def events(gw, event: str | None = None) -> list[dict]:
    found = [json.loads(m.group(1)) for line in gw.output().splitlines() if (m := EVENT_LINE.search(line))]
    return [e for e in found if event is None or e["event"] == event]


async def start_tiny(http) -> str:
    r = await http.post("/api/kernels", json={"name": "tiny"})
    assert r.status_code == 201, r.text
    return r.json()["id"]


async def wait_gone(http, kernel_id: str, within: float) -> float:
    """Seconds until GET /api/kernels/{id} answers 404 (fails after ``within``)."""
    start = time.monotonic()
    while time.monotonic() - start < within:
        r = await http.get(f"/api/kernels/{kernel_id}")
        if r.status_code == 404:
            return time.monotonic() - start
        assert r.status_code == 200, r.text
        await asyncio.sleep(0.2)
    raise AssertionError(f"kernel {kernel_id} was not culled within {within} s")


async def assert_kept(http, kernel_id: str) -> dict:
    r = await http.get(f"/api/kernels/{kernel_id}")
    assert r.status_code == 200, f"kernel {kernel_id} was culled: {r.text}"
    return r.json()


async def test_idle_kernel_is_culled_with_reason(gateway_factory):
    """Enterprise Gateway's environment names work; the cull is logged, emitted as a ``culled``
    event (before ``shut_down``) and counted in /metrics."""
    gw = gateway_factory(env={"EG_CULL_IDLE_TIMEOUT": "2", "EG_CULL_INTERVAL": "0.5"})
    async with gw.client() as http:
        kernel_id = await start_tiny(http)
        waited = await wait_gone(http, kernel_id, within=10)
        assert 1.5 <= waited <= 6, waited
        body = (await http.get(f"/api/kernels/{kernel_id}")).json()
        assert body["reason"] == "Not Found"
        metrics = (await http.get("/metrics")).text
    assert 'eg_kernel_culls_total{kernelspec="tiny"} 1.0' in metrics
    culled = events(gw, "culled")
    assert len(culled) == 1 and culled[0]["kernel_id"] == kernel_id
    details = culled[0]["details"]
    assert REASON.fullmatch(details["reason"]), details
    assert details["connections"] == 0 and details["execution_state"] == "idle"
    assert details["idle_seconds"] > 2 and details["cull_idle_timeout"] == 2
    order = [e["event"] for e in events(gw) if e["kernel_id"] == kernel_id and e["event"] != "progress"]
    assert order == ["requested", "launched", "culled", "shut_down"]
    log_line = next(line for line in gw.output().splitlines() if "eg.culling]" in line and kernel_id in line)
    assert "culled (kernelspec tiny" in log_line and details["reason"] in log_line


async def busy_kernel(gw, http) -> str:
    """A kernel running ``sleep 8`` with no websocket left connected."""
    kernel_id = await start_tiny(http)
    ks = await KernelSocket.connect(gw, kernel_id)
    msg_id = await ks.request("execute_request", {"code": "sleep 8", "silent": False})
    while True:
        msg = await ks.recv()
        if msg["parent_header"].get("msg_id") == msg_id and msg["header"]["msg_type"] == "status":
            assert msg["content"]["execution_state"] == "busy"
            break
    await ks.close()
    return kernel_id


async def test_busy_kernel_is_kept_unless_cull_busy(gateway_factory):
    keep = gateway_factory(*TIMEOUT)
    cull = gateway_factory(*TIMEOUT, "--RemoteMappingKernelManager.cull_busy=True")  # EG's spelling
    async with keep.client() as keep_http, cull.client() as cull_http:
        kept, culled = await asyncio.gather(busy_kernel(keep, keep_http), busy_kernel(cull, cull_http))
        await asyncio.sleep(4.5)  # silent for > 2x the timeout
        assert (await assert_kept(keep_http, kept))["execution_state"] == "busy"
        await wait_gone(cull_http, culled, within=15)
        # once its cell ends (idle status), the kept kernel is culled as any idle one
        await wait_gone(keep_http, kept, within=15)
    busy_cull = events(cull, "culled")[0]["details"]
    assert busy_cull["execution_state"] == "busy" and busy_cull["reason"].endswith(", busy")
    assert events(keep, "culled")[0]["details"]["execution_state"] == "idle"


async def test_connected_kernel_is_kept_unless_cull_connected(gateway_factory):
    keep = gateway_factory(*TIMEOUT)
    cull = gateway_factory(*TIMEOUT, "--KernelCuller.cull_connected=True")
    async with keep.client() as keep_http, cull.client() as cull_http:
        kept, culled = await asyncio.gather(start_tiny(keep_http), start_tiny(cull_http))
        keep_ws = await KernelSocket.connect(keep, kept)
        cull_ws = await KernelSocket.connect(cull, culled)
        await asyncio.sleep(4.5)
        assert (await assert_kept(keep_http, kept))["connections"] == 1
        await wait_gone(cull_http, culled, within=10)
        with pytest.raises(websockets.ConnectionClosed):  # the gateway closed the culled kernel's socket
            while True:
                await cull_ws.recv(timeout=5)
        reply = await keep_ws.execute("still here")
        assert reply["results"] == [{"text/plain": "still here"}]
        await keep_ws.close()
        await keep_http.delete(f"/api/kernels/{kept}")
    assert events(keep, "culled") == []
    reason = events(cull, "culled")[0]["details"]["reason"]
    assert REASON.fullmatch(reason) and reason.endswith("1 connection"), reason


async def test_settings_are_reread_at_runtime(tmp_path, monkeypatch, kernel_spec_dirs):
    """A config reload (``update_config``) applies on the next cycle: culling off, then on.
    In-process, with the gateway's real registry and a real kernel."""
    from traitlets.config import Config

    from eg_core._server.app import Gateway
    from eg_core._builtin import culling
    from eg_core._builtin._culler import KernelCuller

    monkeypatch.setenv("JUPYTER_RUNTIME_DIR", str(tmp_path / "runtime"))
    KernelCuller.clear_instance()
    gw = Gateway()
    gw.initialize([*(a for d in kernel_spec_dirs for a in ("--Gateway.kernel_spec_dirs", d)), "--Gateway.auth_token=t"])
    try:
        managed = await gw.kernels.start("tiny")
        culling.eg_startup(gw.api)
        culler = KernelCuller.instance()
        assert culler.cull_idle_timeout == 0 and culler.cull_interval == 300
        culler.update_config(Config({"KernelCuller": {"cull_idle_timeout": 1, "cull_interval": 0.3}}))
        assert managed.kernel_id in gw.kernels.kernels  # woken, but not idle long enough yet
        for _ in range(50):
            if managed.kernel_id not in gw.kernels.kernels:
                break
            await asyncio.sleep(0.1)
        assert managed.kernel_id not in gw.kernels.kernels
        # off again: a new idle kernel stays
        culler.update_config(Config({"KernelCuller": {"cull_idle_timeout": 0}}))
        second = await gw.kernels.start("tiny")
        await asyncio.sleep(1.5)
        assert second.kernel_id in gw.kernels.kernels
        await culling.eg_shutdown(gw.api)
    finally:
        await gw.kernels.shutdown_all()
        gw.kernels.close()
        KernelCuller.clear_instance()


def test_help_lists_culling_settings():
    out = subprocess.run([sys.executable, "-m", "eg_core", "--help-all"], capture_output=True, text=True, timeout=60).stdout
    for name, env in [
        ("cull_idle_timeout", "EG_CULL_IDLE_TIMEOUT"),
        ("cull_interval", "EG_CULL_INTERVAL"),
        ("cull_connected", "EG_CULL_CONNECTED"),
        ("cull_busy", "EG_CULL_BUSY"),
    ]:
        assert f"--KernelCuller.{name}" in out
        assert env in out


def kernelspec_copy(root, name: str, source: str = "tiny", **metadata) -> list[str]:
    """A copy of a test kernelspec under ``root/name``, with ``metadata`` added; returns the
    kernelspec directories to use (the copy's and the tests' own)."""
    import shutil
    from pathlib import Path

    src = Path(__file__).parent / "kernelspecs" / source
    dst = root / name
    shutil.copytree(src, dst)
    spec = json.loads((dst / "kernel.json").read_text())
    spec["metadata"].update(metadata)
    (dst / "kernel.json").write_text(json.dumps(spec))
    return [str(root), str(src.parent)]


async def gone_because(http, kernel_id: str, within: float) -> str:
    """The message of the 404 a culled kernel answers, once it is gone."""
    await wait_gone(http, kernel_id, within)
    return (await http.get(f"/api/kernels/{kernel_id}")).json()["message"]


async def warning_of(ks: KernelSocket, timeout: float = 20) -> dict:
    """The first stderr stream message from the gateway (not the kernel) on ``ks``."""
    while True:
        msg = await ks.recv(timeout=timeout)
        if msg["header"]["msg_type"] == "stream" and msg["header"].get("username") == "eg":
            return msg


async def test_culling_per_kernelspec_pattern_leaves_other_kernelspecs_alone(gateway_factory, tmp_path):
    """The operator culls GPU kernelspecs (a pattern) after 1 s idle; culling is off for the rest."""
    specs = kernelspec_copy(tmp_path, "gpu_tiny")
    gw = gateway_factory("--KernelCuller.cull_interval=0.3", '--KernelCuller.per_kernelspec={"gpu_*": {"idle_timeout": 1}}',
                         kernel_spec_dirs=specs)
    async with gw.client() as http:
        cpu = await start_tiny(http)
        r = await http.post("/api/kernels", json={"name": "gpu_tiny"})
        gpu = r.json()["id"]
        assert "culled: idle for" in await gone_because(http, gpu, within=20)
        await assert_kept(http, cpu)
    assert [(e["kernel_id"], e["details"]["rule"]) for e in events(gw, "culled")] == [(gpu, "idle")]


async def test_a_kernelspec_s_maximum_age_warns_its_clients_first(gateway_factory, tmp_path):
    """The kernelspec itself sets a maximum age and a warning: the connected client gets a stderr
    message before the cull, then the close; later 404s say why."""
    specs = kernelspec_copy(tmp_path, "short_lived", culling={"max_age": 3, "warning": 2})
    gw = gateway_factory("--KernelCuller.cull_interval=0.3", kernel_spec_dirs=specs)
    async with gw.client() as http:
        kernel_id = (await http.post("/api/kernels", json={"name": "short_lived"})).json()["id"]
        ks = await KernelSocket.connect(gw, kernel_id)
        warning = await warning_of(ks)
        assert warning["content"]["name"] == "stderr"
        assert "will be shut down in about" in warning["content"]["text"] and "maximum age (3 s)" in warning["content"]["text"]
        assert await assert_kept(http, kernel_id)  # warned before, not at, the cull
        assert "culled: running for" in await gone_because(http, kernel_id, within=20)
        with pytest.raises(websockets.ConnectionClosed):
            while True:
                await ks.recv(timeout=10)
    culled = events(gw, "culled")[0]["details"]
    assert (culled["rule"], culled["max_age"], culled["connections"]) == ("age", 3, 1)


async def test_a_runaway_cell_is_culled_after_the_busy_timeout_with_a_warning_in_that_cell(gateway_factory):
    gw = gateway_factory("--KernelCuller.cull_interval=0.3", "--KernelCuller.cull_busy_timeout=3",
                         "--KernelCuller.cull_warning=2")
    async with gw.client() as http:
        kernel_id = await start_tiny(http)
        ks = await KernelSocket.connect(gw, kernel_id)
        msg_id = await ks.request("execute_request", {"code": "sleep 60", "silent": False})
        warning = await warning_of(ks)
        assert warning["parent_header"]["msg_id"] == msg_id  # shown as the running cell's output
        assert "busy too long (busy timeout 3 s); interrupt it" in warning["content"]["text"]
        assert "culled: busy for" in await gone_because(http, kernel_id, within=20)
    assert events(gw, "culled")[0]["details"]["rule"] == "busy"


def test_a_wrong_per_kernelspec_entry_stops_the_gateway_saying_what_to_fix(tmp_path):
    from eg_core.testing import gateway_exit

    result = gateway_exit(tmp_path, '--KernelCuller.per_kernelspec={"gpu_*": {"idle_timeot": 60}}')
    assert result.returncode != 0
    assert "KernelCuller.per_kernelspec['gpu_*']: unknown key 'idle_timeot'" in result.stderr, result.stderr
    assert "Traceback" not in result.stderr
