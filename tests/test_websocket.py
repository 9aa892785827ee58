"""The websocket bridge: both protocols, buffers, several clients, reconnect and replay, restart."""

from __future__ import annotations

import asyncio
import json
import struct

import pytest
import websockets

from eg_core.testing import KernelSocket, new_msg, wait_until_busy
from eg_core._server.wsproto import V1


@pytest.mark.parametrize("v1", [False, True], ids=["legacy", "v1"])
async def test_execute_in_both_protocols(gateway, kernel, v1):
    ks = await KernelSocket.connect(gateway, kernel["id"], v1=v1)
    assert (ks.ws.subprotocol == V1) is v1
    out = await ks.execute("print(6*7)")
    assert out["stdout"] == "42\n"
    assert out["reply"]["status"] == "ok"
    out = await ks.execute("1/0")
    assert out["errors"] == ["ZeroDivisionError"]
    await ks.close()


@pytest.mark.parametrize("v1", [False, True], ids=["legacy", "v1"])
async def test_binary_buffers_intact(gateway, kernel, v1):
    """A comm message with binary buffers goes to the kernel and back byte for byte."""
    ks = await KernelSocket.connect(gateway, kernel["id"], v1=v1)
    setup = (
        "from ipykernel.comm import Comm\n"
        "def _target(comm, open_msg):\n"
        "    @comm.on_msg\n"
        "    def _echo(msg):\n"
        "        comm.send({'n': len(msg['buffers'])}, buffers=[bytes(b)[::-1] for b in msg['buffers']])\n"
        "get_ipython().kernel.comm_manager.register_target('echo', _target)\n"
    )
    assert (await ks.execute(setup))["reply"]["status"] == "ok"
    await ks.send(new_msg("comm_open", {"comm_id": "c1", "target_name": "echo", "data": {}}, ks.session))
    payload = bytes(range(256)) * 4 + b"\xff\xfe\x00"
    msg = new_msg("comm_msg", {"comm_id": "c1", "data": {"hello": 1}}, ks.session)
    msg["buffers"] = [payload, b"\x00\x01"]
    if v1:
        await ks.send(msg)
    else:
        body = {k: v for k, v in msg.items() if k != "buffers"}
        pieces = [json.dumps(body).encode(), payload, b"\x00\x01"]
        offsets = [4 * (len(pieces) + 1)]
        for p in pieces[:-1]:
            offsets.append(offsets[-1] + len(p))
        await ks.ws.send(struct.pack(f"!{len(pieces) + 1}I", len(pieces), *offsets) + b"".join(pieces))
    while True:
        reply = await ks.recv()
        if reply["header"]["msg_type"] == "comm_msg" and reply["channel"] == "iopub":
            break
    assert reply["content"]["data"] == {"n": 2}
    assert [bytes(b) for b in reply["buffers"]] == [payload[::-1], b"\x01\x00"]
    await ks.close()


async def test_message_without_channel_goes_to_shell(gateway, kernel):
    ks = await KernelSocket.connect(gateway, kernel["id"])
    msg = new_msg("kernel_info_request", {}, ks.session)
    del msg["channel"]
    await ks.send(msg)
    while (reply := await ks.recv())["header"]["msg_type"] != "kernel_info_reply":
        pass
    assert reply["channel"] == "shell"
    assert reply["content"]["status"] == "ok"
    await ks.close()


async def test_stdin_round_trip(gateway, kernel):
    ks = await KernelSocket.connect(gateway, kernel["id"])
    out = await ks.execute("x = input('name? '); print('hi', x)", stdin_reply="eg")
    assert out["stdout"].endswith("hi eg\n")
    await ks.close()


async def test_several_websockets_share_a_kernel(gateway, kernel, http):
    a = await KernelSocket.connect(gateway, kernel["id"])
    b = await KernelSocket.connect(gateway, kernel["id"], v1=True)
    assert (await http.get(f"/api/kernels/{kernel['id']}")).json()["connections"] == 2
    out_a = await a.execute("shared = 5; print(shared)")
    out_b = await b.execute("print(shared * 2)")
    assert (out_a["stdout"], out_b["stdout"]) == ("5\n", "10\n")
    await a.close()
    await b.close()


async def test_reconnect_same_session_replays_buffered_output(gateway, kernel):
    ks = await KernelSocket.connect(gateway, kernel["id"])
    session = ks.session
    msg_id = await ks.request("execute_request", {"code": "import time; time.sleep(0.5); print('while you were away')", "silent": False})
    await ks.close()
    await asyncio.sleep(1.5)
    again = await KernelSocket.connect(gateway, kernel["id"], session_id=session)
    seen = {}
    while "execute_reply" not in seen:
        msg = await again.recv(timeout=10)
        if msg["parent_header"].get("msg_id") == msg_id:
            seen[msg["header"]["msg_type"]] = msg
    assert seen["stream"]["content"]["text"] == "while you were away\n"
    await again.close()


async def test_same_session_replaces_a_stale_open_websocket(gateway, kernel):
    """Jupyter Server reconnects with the same session_id while the old socket is still open."""
    old = await KernelSocket.connect(gateway, kernel["id"])
    new = await KernelSocket.connect(gateway, kernel["id"], session_id=old.session)
    with pytest.raises(websockets.ConnectionClosed):
        while True:  # messages already on their way (startup status) may come first
            await asyncio.wait_for(old.ws.recv(), 10)
    assert old.ws.close_reason == "replaced by a newer connection with the same session_id"
    out = await new.execute("print('fresh')")
    assert out["stdout"] == "fresh\n"
    await new.close()


async def test_restart_keeps_id_and_websocket(gateway, kernel, http):
    ks = await KernelSocket.connect(gateway, kernel["id"], v1=True)
    await ks.execute("before_restart = 1")
    r = await http.post(f"/api/kernels/{kernel['id']}/restart", json={})
    assert r.status_code == 200
    assert r.json()["id"] == kernel["id"]
    out = await ks.execute("print('before_restart' in globals())")
    assert out["stdout"] == "False\n"
    await ks.close()


@pytest.mark.parametrize("spec", ["python3", "python_message_interrupt"])
async def test_interrupt_both_modes(gateway, http, spec):
    r = await http.post("/api/kernels", json={"name": spec})
    kid = r.json()["id"]
    ks = await KernelSocket.connect(gateway, kid)
    run = asyncio.ensure_future(ks.execute("import time; time.sleep(60)"))
    await wait_until_busy(http, kid)
    r = await http.post(f"/api/kernels/{kid}/interrupt", json={})
    assert r.status_code == 204
    out = await asyncio.wait_for(run, 20)
    assert out["errors"] == ["KeyboardInterrupt"]
    assert (await ks.execute("print('still alive')"))["stdout"] == "still alive\n"
    await ks.close()
    await http.delete(f"/api/kernels/{kid}")


async def test_websocket_auth_and_unknown_kernel(gateway, kernel):
    with pytest.raises(websockets.InvalidStatus) as info:
        await KernelSocket.connect(gateway, kernel["id"], headers={})
    assert info.value.response.status_code == 401
    with pytest.raises(websockets.InvalidStatus) as info:
        await KernelSocket.connect(gateway, "00000000-0000-0000-0000-000000000000")
    assert info.value.response.status_code == 404
    ks = await KernelSocket.connect(gateway, kernel["id"])  # the kernel is unaffected
    assert (await ks.execute("print(1)"))["stdout"] == "1\n"
    await ks.close()


async def test_invalid_frames_are_dropped_not_fatal(gateway, kernel):
    ks = await KernelSocket.connect(gateway, kernel["id"])
    await ks.ws.send("this is not json")
    await ks.ws.send('{"header": 5}')
    await ks.ws.send('{"header": {"msg_type": "x"}, "channel": "iopub"}')
    assert (await ks.execute("print('ok')"))["stdout"] == "ok\n"
    await ks.close()
