"""Bad requests and bad clients are answered and bounded; the gateway and other kernels are not
affected (issue 8: unanswered methods, unauthenticated bodies, slow readers, non-finite numbers,
secrets in the log, deep JSON, invalid websocket messages, sessions, origins)."""

from __future__ import annotations

import asyncio
import time
import json
import logging

import httpx
import pytest
import websockets

from eg_core._server.redact import RedactSecrets
from eg_core.testing import KernelSocket, new_msg


async def raw_request(gw, head: str, body: bytes = b"", timeout: float = 20) -> bytes:
    """Send ``head`` (request line and headers) and ``body`` as they are; return the answer
    (status line and headers) without waiting for the connection to close."""
    reader, writer = await asyncio.open_connection("127.0.0.1", gw.port)
    try:
        writer.write(head.replace("\n", "\r\n").encode() + b"\r\n\r\n" + body)
        await writer.drain()
        return await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), timeout)
    finally:
        writer.close()


async def test_other_methods_on_channels_are_answered(gateway, kernel):
    url = f"/api/kernels/{kernel['id']}/channels"
    async with httpx.AsyncClient(base_url=gateway.url, timeout=10) as client:
        for method in ("TRACE", "POST", "PUT", "DELETE", "PATCH"):
            r = await client.request(method, url, headers=gateway.headers)
            assert r.status_code == 405, (method, r.text)
            assert r.json()["reason"]
        r = await client.post(url)
        assert r.status_code == 401 and "token" in r.json()["message"]


async def test_bodies_are_refused_before_they_are_read(gateway):
    huge = 90 * 1024 * 1024
    # No token: 401 as soon as the headers arrive (the 90 MB body is never sent).
    answer = await raw_request(gateway, f"POST /api/kernels HTTP/1.1\nHost: x\nContent-Length: {huge}")
    assert answer.startswith(b"HTTP/1.1 401 ")
    # A token, but more than max_body_size: 413 from the headers alone.
    token = gateway.headers["Authorization"]
    answer = await raw_request(gateway, f"POST /api/kernels HTTP/1.1\nHost: x\nAuthorization: {token}\nContent-Length: {huge}")
    assert answer.startswith(b"HTTP/1.1 413 ")
    # Chunked, without a length: 413 once too much arrived (read while still sending).
    reader, writer = await asyncio.open_connection("127.0.0.1", gateway.port)
    writer.write(f"POST /api/kernels HTTP/1.1\r\nHost: x\r\nAuthorization: {token}\r\nTransfer-Encoding: chunked\r\n\r\n".encode())

    async def send_chunks():
        chunk = b"x" * (64 * 1024)
        try:
            for _ in range(800):
                writer.write(b"%x\r\n" % len(chunk) + chunk + b"\r\n")
                await writer.drain()
        except (ConnectionError, RuntimeError):
            pass

    refused_before = gateway.output().count("413 POST /api/kernels")
    sending = asyncio.ensure_future(send_chunks())
    try:
        assert (await asyncio.wait_for(reader.readline(), 20)).startswith(b"HTTP/1.1 413 ")
    except ConnectionResetError:
        # The gateway closed while we were still sending: our host may drop its unread 413 on
        # the reset. The access log still shows the answer it gave.
        deadline = time.monotonic() + 20
        while gateway.output().count("413 POST /api/kernels") == refused_before:
            assert time.monotonic() < deadline, "the chunked body was not refused with 413"
            await asyncio.sleep(0.05)
    await sending
    writer.close()
    async with gateway.client() as http:
        assert (await http.get("/api")).status_code == 200


async def test_deep_json_is_a_400(http):
    r = await http.post("/api/kernels", content=b"[" * 100_000 + b"]" * 100_000)
    assert r.status_code == 400 and "nested" in r.json()["message"]
    r = await http.post("/api/sessions", content=b'{"a":' * 5000 + b"1" + b"}" * 5000)
    assert r.status_code == 400


@pytest.mark.parametrize("value", ["nan", "NaN", "inf", "-inf", "1e999"])
async def test_non_finite_launch_timeouts_are_refused(http, value):
    r = await http.post("/api/kernels", json={"name": "python3", "env": {"KERNEL_LAUNCH_TIMEOUT": value}})
    assert r.status_code == 400 and "KERNEL_LAUNCH_TIMEOUT" in r.json()["message"]


def test_non_finite_settings_stop_the_gateway(gateway_factory):
    with pytest.raises(RuntimeError, match="finite"):
        gateway_factory(env={"EG_KERNEL_LAUNCH_TIMEOUT": "nan"})
    with pytest.raises(RuntimeError, match="finite"):
        gateway_factory("--Gateway.ws_ping_interval=inf")


async def test_tokens_never_reach_the_log(gateway_factory, kernel_spec_dirs):
    gw = gateway_factory("--log-level=DEBUG")
    token = gw.token
    async with httpx.AsyncClient(base_url=gw.url, timeout=20) as client:
        r = await client.post("/api/kernels", params={"token": token}, json={"name": "python3"})
        kernel_id = r.json()["id"]
        for method in ("TRACE", "POST"):
            await client.request(method, f"/api/kernels/{kernel_id}/channels", params={"token": token})
        await client.get("/api/kernels/nope", params={"token": token})
        await client.get("/api", headers={"Authorization": f"token {token}-wrong"})
    ws = await websockets.connect(f"{gw.ws_url}/api/kernels/{kernel_id}/channels?token={token}")
    await ws.send("not json")
    await ws.close()
    async with gw.client() as http:
        await http.delete(f"/api/kernels/{kernel_id}")
    gw.stop()
    log = gw.log_path.read_text(errors="replace")
    assert token not in log
    assert "Traceback" not in log


def test_the_redaction_filter_covers_tracebacks_and_arguments():
    try:
        raise ValueError("while fetching /x?token=s3cr3t-value&y=1")
    except ValueError:
        import sys

        record = logging.LogRecord("tornado.application", logging.ERROR, __file__, 1, "Uncaught exception %s %s",
                                   ("GET", "/api?token=s3cr3t-value"), sys.exc_info())
    RedactSecrets().filter(record)
    text = logging.Formatter().format(record)
    assert "s3cr3t" not in text and "token=[secret]" in text


async def test_invalid_websocket_messages_are_answered_and_the_socket_kept(gateway, kernel):
    ks = await KernelSocket.connect(gateway, kernel["id"])
    msg = new_msg("kernel_info_request", {}, ks.session)
    msg["channel"] = 5
    await ks.ws.send(json.dumps(msg))
    notice = await ks.recv()
    assert notice["header"]["msg_type"] == "stream" and "'channel' must be a string" in notice["content"]["text"]
    assert (await ks.execute("print('kept')"))["stdout"] == "kept\n"
    await ks.close()
    v1 = await KernelSocket.connect(gateway, kernel["id"], v1=True)
    await v1.ws.send("a text frame")
    notice = await v1.recv()
    assert "binary frames" in notice["content"]["text"]
    assert (await v1.execute("print('kept')"))["stdout"] == "kept\n"
    await v1.close()


async def test_a_missing_working_directory_is_a_400(http):
    r = await http.post("/api/kernels", json={"name": "python3", "env": {"KERNEL_WORKING_DIR": "/no/such/dir"}})
    assert r.status_code == 400 and "/no/such/dir" in r.json()["message"]


async def test_sessions_are_bounded(http, kernel):
    r = await http.post("/api/sessions", json={"path": "p" * 5_000_000, "type": "notebook", "kernel": {"id": kernel["id"]}})
    assert r.status_code == 400
    r = await http.post("/api/sessions", json={"path": "p" * 5000, "type": "notebook", "kernel": {"id": kernel["id"]}})
    assert r.status_code == 400 and "4096" in r.json()["message"]
    created = []
    for i in range(64):
        r = await http.post("/api/sessions", json={"path": f"nb{i}.ipynb", "type": "notebook", "kernel": {"id": kernel["id"]}})
        assert r.status_code == 201, r.text
        created.append(r.json()["id"])
    r = await http.post("/api/sessions", json={"path": "one-more.ipynb", "type": "notebook", "kernel": {"id": kernel["id"]}})
    assert r.status_code == 409 and "64" in r.json()["message"]
    assert (await http.get(f"/api/kernels/{kernel['id']}")).status_code == 200


async def test_same_origin_needs_the_same_scheme_and_one_of_our_names(gateway_factory):
    gw = gateway_factory()
    async with gw.client() as http:
        port = gw.port
        same = await http.get("/api", headers={"Origin": f"http://127.0.0.1:{port}"})
        assert same.status_code == 200
        other_scheme = await http.get("/api", headers={"Origin": f"https://127.0.0.1:{port}"})
        assert other_scheme.status_code == 403
        rebound = await http.get("/api", headers={"Origin": f"http://evil.example:{port}", "Host": f"evil.example:{port}"})
        assert rebound.status_code == 403


async def test_a_client_that_stops_reading_loses_output_not_the_gateway(gateway_factory):
    """A stalled websocket gets its output dropped beyond ws_client_buffer_size and is told so
    when it reads again; another client of the same kernel gets everything."""
    gw = gateway_factory(f"--Gateway.ws_client_buffer_size={16 * 1024 * 1024}")
    async with gw.client() as http:
        r = await http.post("/api/kernels", json={"name": "python3"})
        kernel_id = r.json()["id"]
    stalled = await websockets.connect(
        f"{gw.ws_url}/api/kernels/{kernel_id}/channels?session_id=stalled", additional_headers=gw.headers, max_queue=1, max_size=None
    )
    reader = await KernelSocket.connect(gw, kernel_id)
    # 64 MiB at most ~20 MiB/s: a reading client keeps up; the stalled one takes 16 MiB plus
    # what the socket buffers hold, and loses the rest.
    code = "import sys, time\nfor i in range(64):\n    print('x' * (1024 * 1024 - 1)); sys.stdout.flush(); time.sleep(0.05)"
    out = await reader.execute(code, timeout=180)
    assert out["reply"]["status"] == "ok"
    assert len(out["stdout"]) == 64 * 1024 * 1024
    texts = []
    while not any("were not sent to this client" in t for t in texts):
        msg = json.loads(await asyncio.wait_for(stalled.recv(), 60))
        if msg["header"]["msg_type"] == "stream":
            texts.append(msg["content"]["text"])
    assert sum(len(t) for t in texts) < 48 * 1024 * 1024  # much of the output was dropped for it
    await stalled.send(json.dumps(new_msg("kernel_info_request", {}, "stalled")))  # still open and served
    while (msg := json.loads(await asyncio.wait_for(stalled.recv(), 60)))["header"]["msg_type"] != "kernel_info_reply":
        pass
    await stalled.close()
    await reader.close()


async def wait_state(http, kernel_id: str, wanted: str, timeout: float = 60) -> None:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while (state := (await http.get(f"/api/kernels/{kernel_id}")).json()["execution_state"]) != wanted:
        assert loop.time() < deadline, f"execution_state stayed {state!r}, not {wanted!r}"
        await asyncio.sleep(0.1)


@pytest.mark.parametrize("kernel_name", ["python3", "tiny"])  # an echoing ROUTER heartbeat, a REP one
async def test_a_stopped_kernel_is_reported_unresponsive(gateway_factory, kernel_name):
    import os
    import signal

    from eg_core import procinfo

    gw = gateway_factory("--Gateway.heartbeat_interval=0.5")
    async with gw.client() as http:
        kernel_id = (await http.post("/api/kernels", json={"name": kernel_name})).json()["id"]
        [pid] = [p for p in procinfo.with_env("KERNEL_ID", kernel_id) if os.getsid(p) == p]
        await wait_state(http, kernel_id, "idle")
        os.kill(pid, signal.SIGSTOP)
        try:
            await wait_state(http, kernel_id, "unresponsive")
            metrics = (await http.get("/metrics")).text
            assert 'execution_state="unresponsive"' in metrics
        finally:
            os.kill(pid, signal.SIGCONT)
        await wait_state(http, kernel_id, "idle")
        os.kill(pid, signal.SIGSTOP)
        await wait_state(http, kernel_id, "unresponsive")
        assert (await http.delete(f"/api/kernels/{kernel_id}")).status_code == 204  # bounded: killed
    assert not procinfo.alive(pid, None)


async def test_the_token_from_a_file_is_on_no_command_line_and_in_no_environment(gateway_factory, tmp_path):
    token_file = tmp_path / "token"
    token_file.write_text("file-token-0123456789\n")
    gw = gateway_factory(f"--Gateway.auth_token_file={token_file}", token="")
    gw.token = "file-token-0123456789"
    async with gw.client() as http:
        assert (await http.get("/api/kernels")).status_code == 200
        kernel_id = (await http.post("/api/kernels", json={"name": "python3"})).json()["id"]
    async with httpx.AsyncClient(base_url=gw.url) as anonymous:
        assert (await anonymous.get("/api/kernels")).status_code == 401
    with open(f"/proc/{gw.proc.pid}/cmdline", "rb") as f:
        assert b"file-token" not in f.read()
    ks = await KernelSocket.connect(gw, kernel_id)
    try:
        out = await ks.execute("import os; print(any('file-token' in v for v in os.environ.values()))")
    finally:
        await ks.close()
    assert out["stdout"] == "False\n"
    with pytest.raises(RuntimeError, match="both set"):
        gateway_factory(f"--Gateway.auth_token_file={token_file}")


def test_a_non_dumpable_process_hides_its_environment_from_its_user():
    """What the gateway does at startup (procinfo.make_undumpable), shown between two processes
    of one unprivileged user: the other can read the environment only of a dumpable one."""
    import os
    import subprocess

    def as_nobody():
        os.setgid(65534)
        os.setuid(65534)

    from eg_core import procinfo

    python = "/usr/bin/python3"  # the test's own interpreter may not be readable by nobody
    load = (
        "import importlib.util, time\n"
        f"spec = importlib.util.spec_from_file_location('procinfo', {procinfo.__file__!r})\n"
        "procinfo = importlib.util.module_from_spec(spec); spec.loader.exec_module(procinfo)\n"
    )
    secrets = {}
    for dumpable in (True, False):
        code = load + ("" if dumpable else "assert procinfo.make_undumpable()\n") + "print('ready', flush=True); time.sleep(60)"
        target = subprocess.Popen([python, "-c", code], env={"PATH": "/usr/bin:/bin", "SECRET_TOKEN": "t0ken"},
                                  stdout=subprocess.PIPE, preexec_fn=as_nobody, text=True, cwd="/")
        try:
            assert target.stdout.readline() == "ready\n"
            reader = subprocess.run([python, "-c", f"print(open('/proc/{target.pid}/environ').read())"],
                                    capture_output=True, text=True, preexec_fn=as_nobody, cwd="/")
            secrets[dumpable] = "t0ken" in reader.stdout
        finally:
            target.kill()
            target.wait()
    assert secrets == {True: True, False: False}
