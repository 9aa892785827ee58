"""The remote-kernel launcher and the gateway side of its callback protocol, with real processes.

A real ResponseListener on 127.0.0.1:0, the real launch_ipykernel.py run as a subprocess, real
ipykernel children, real TCP for forged and replayed payloads.
"""

from __future__ import annotations

import asyncio
import base64
import json
import logging
import os
import signal
import socket
import sys
import time
import uuid

import psutil
import pytest
from cryptography.hazmat.primitives import padding as symmetric_padding
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import padding as rsa_padding
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes
from jupyter_client.asynchronous import AsyncKernelClient

from eg_core._runtime import launcher_comm
from eg_core import remote
from eg_core.kernelspecs.launcher import launch_ipykernel as launcher
from eg_core._runtime.callback_listener import ResponseListener

LAUNCHER = launcher.__file__
PORT_RANGE = (45000, 46000)


# -- fixtures and helpers ------------------------------------------------------------------------


@pytest.fixture
async def listener():
    listener = ResponseListener(response_address="127.0.0.1:0", log=logging.getLogger("test.response"))
    await listener.start()
    yield listener
    await listener.stop()


class Launched:
    """A launcher subprocess and the file holding its (and its kernel's) output."""

    def __init__(self, proc: asyncio.subprocess.Process, output_path):
        self.proc = proc
        self.output_path = output_path

    @property
    def output(self) -> str:
        return self.output_path.read_text()


@pytest.fixture
async def start_launcher(tmp_path):
    """Start launch_ipykernel.py; at teardown kill the process group of any launcher still running."""
    started: list[Launched] = []

    async def start(kernel_id: str, response_address: str, launch_key: str | None, *args: str,
                    delivery: str = "env", key_file_mode: int = 0o600) -> Launched:
        """``delivery``: how the key reaches the launcher: "env" (EG_LAUNCH_KEY), "file"
        (EG_LAUNCH_KEY_FILE, a file of ``key_file_mode``) or "stdin" (EG_LAUNCH_KEY_STDIN)."""
        env = {k: v for k, v in os.environ.items() if not k.startswith("EG_LAUNCH_KEY")}
        key_file = tmp_path / f"key-{kernel_id}"
        if launch_key and delivery == "env":
            env["EG_LAUNCH_KEY"] = launch_key
        elif launch_key and delivery == "file":
            key_file.write_text(launch_key)
            key_file.chmod(key_file_mode)
            env["EG_LAUNCH_KEY_FILE"] = str(key_file)
        elif launch_key and delivery == "stdin":
            env["EG_LAUNCH_KEY_STDIN"] = "1"
        output_path = tmp_path / f"launcher-{kernel_id}.log"
        with open(output_path, "wb") as output:
            proc = await asyncio.create_subprocess_exec(
                sys.executable, LAUNCHER, "--kernel-id", kernel_id,
                "--response-address", response_address, "--public-key", "unused", *args, env=env,
                stdin=asyncio.subprocess.PIPE if delivery == "stdin" else asyncio.subprocess.DEVNULL,
                stdout=output, stderr=output,
            )
        if delivery == "stdin":
            proc.stdin.write(remote.key_line(launch_key))
            await proc.stdin.drain()
            proc.stdin.close()
        launched = Launched(proc, output_path)
        launched.key_file = key_file
        started.append(launched)
        return launched

    yield start
    for launched in started:
        if launched.proc.returncode is None:
            try:
                os.killpg(launched.proc.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
            await launched.proc.wait()


def group_members(pgid: int) -> list[int]:
    """Pids of live (non-zombie) processes in process group ``pgid``."""
    members = []
    for proc in psutil.process_iter(["status"]):
        try:
            if os.getpgid(proc.pid) == pgid and proc.info["status"] != psutil.STATUS_ZOMBIE:
                members.append(proc.pid)
        except (ProcessLookupError, psutil.Error):
            pass
    return members


async def wait_until(predicate, timeout: float = 5.0) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"condition not met within {timeout}s")
        await asyncio.sleep(0.05)


async def send_raw(address: str, data: bytes) -> None:
    """Send bytes to the listener like a launcher does: connect, send, close."""
    host, port = launcher.parse_address(address)
    _, writer = await asyncio.open_connection(host, port)
    writer.write(data)
    await writer.drain()
    writer.close()
    await writer.wait_closed()


async def comm_exchange(port: int, body: bytes) -> dict:
    """One raw comm-port exchange: send, half-close, read the launcher's answer."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    writer.write(body)
    writer.write_eof()
    answer = await reader.read()
    writer.close()
    return json.loads(answer)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def fake_info(kernel_id: str) -> dict:
    return {"ip": "127.0.0.1", "shell_port": 1, "key": "k", "kernel_id": kernel_id, "comm_port": 2}


async def run_cell(client: AsyncKernelClient, code: str, timeout: float = 20.0, on_started=None):
    """Execute ``code``; returns (execute_reply content, iopub messages of that execution)."""
    msg_id = client.execute(code)
    messages = []
    deadline = time.monotonic() + timeout
    while True:
        msg = await client.get_iopub_msg(timeout=deadline - time.monotonic())
        if msg["parent_header"].get("msg_id") != msg_id:
            continue
        messages.append(msg)
        if msg["msg_type"] == "execute_input" and on_started is not None:
            await on_started()
        if msg["msg_type"] == "status" and msg["content"]["execution_state"] == "idle":
            break
    reply = await client.get_shell_msg(timeout=deadline - time.monotonic())
    return reply["content"], messages


async def launch_kernel(listener, start_launcher, *args: str, **how):
    kernel_id = str(uuid.uuid4())
    key = listener.new_launch_key()
    future = listener.expect(kernel_id, key)
    launched = await start_launcher(kernel_id, listener.address, key, *args, **how)
    try:
        info = await asyncio.wait_for(future, 30)
    except asyncio.TimeoutError:
        pytest.fail(f"{listener.diagnose(kernel_id)}\n{launched.output}")
    return kernel_id, key, info, launched


# -- a real kernel end to end ----------------------------------------------------------------------


async def test_kernel_runs_interrupts_and_shuts_down_through_the_launcher(listener, start_launcher):
    kernel_id, key, info, launched = await launch_kernel(listener, start_launcher)
    assert info["kernel_id"] == kernel_id
    assert info["pgid"] == launched.proc.pid  # the launcher leads its own process group
    assert info["pid"] in group_members(info["pgid"])
    assert "arrived" in listener.diagnose(kernel_id)

    client = AsyncKernelClient()
    client.load_connection_info(info)
    client.start_channels()
    try:
        try:  # the kernel imports ipykernel first: on a loaded machine that takes a while
            reply = await client.kernel_info(reply=True, timeout=90)
        except TimeoutError:
            pytest.fail(f"no kernel_info reply; the launcher's output:\n{launched.output}")
        assert reply["content"]["status"] == "ok"
        await client.wait_for_ready(timeout=30)  # until iopub delivers too

        reply, messages = await run_cell(client, "1+1")
        results = [m["content"]["data"]["text/plain"] for m in messages if m["msg_type"] == "execute_result"]
        assert reply["status"] == "ok" and results == ["2"]

        async def interrupt():
            await asyncio.sleep(0.3)
            assert await launcher_comm.signal("127.0.0.1", info["comm_port"], signal.SIGINT, key) is True

        started = time.monotonic()
        reply, _ = await run_cell(client, "import time; time.sleep(30)", on_started=interrupt)
        assert reply["status"] == "error" and reply["ename"] == "KeyboardInterrupt"
        assert time.monotonic() - started < 10
        assert launched.proc.returncode is None  # the launcher ignored the SIGINT sent to its group
        assert await launcher_comm.is_alive("127.0.0.1", info["comm_port"], key) is True
    finally:
        client.stop_channels()

    assert await launcher_comm.shutdown("127.0.0.1", info["comm_port"], key) is True
    assert await asyncio.wait_for(launched.proc.wait(), 10) == 0
    await wait_until(lambda: not group_members(info["pgid"]))
    assert not psutil.pid_exists(info["pid"]) or psutil.Process(info["pid"]).status() == psutil.STATUS_ZOMBIE
    assert await launcher_comm.is_alive("127.0.0.1", info["comm_port"], key) is False


async def test_all_ports_lie_in_the_port_range(listener, start_launcher):
    lo, hi = PORT_RANGE
    _, key, info, launched = await launch_kernel(listener, start_launcher, "--port-range", f"{lo}..{hi}")
    ports = [info[name] for name in launcher.KERNEL_PORT_NAMES] + [info["comm_port"]]
    assert len(set(ports)) == 6
    assert all(lo <= port <= hi for port in ports), ports
    await launcher_comm.shutdown("127.0.0.1", info["comm_port"], key)
    assert await asyncio.wait_for(launched.proc.wait(), 10) == 0


async def test_lease_closed_without_shutdown_stops_the_kernel(listener, start_launcher):
    """A launcher started with --lease ends its kernel when the gateway's lease connection closes."""
    _, key, info, launched = await launch_kernel(listener, start_launcher, "--lease")
    lease = await launcher_comm.hold_lease("127.0.0.1", info["comm_port"], key)
    assert await launcher_comm.is_alive("127.0.0.1", info["comm_port"], key)  # other requests still served
    assert psutil.pid_exists(info["pid"])
    lease.close()  # as when the gateway process dies: the OS closes its sockets
    assert await asyncio.wait_for(launched.proc.wait(), 30) != 0
    await wait_until(lambda: not group_members(info["pgid"]), 10)
    assert "the gateway that held the lease is gone" in launched.output


async def test_lease_then_shutdown_exits_cleanly(listener, start_launcher):
    _, key, info, launched = await launch_kernel(listener, start_launcher, "--lease")
    lease = await launcher_comm.hold_lease("127.0.0.1", info["comm_port"], key)
    assert await launcher_comm.shutdown("127.0.0.1", info["comm_port"], key)
    assert await asyncio.wait_for(launched.proc.wait(), 30) == 0  # a requested shutdown, not a lost lease
    lease.close()
    assert "lease is gone" not in launched.output


async def test_lease_needs_the_option_and_a_signature(listener, start_launcher):
    _, key, info, launched = await launch_kernel(listener, start_launcher)
    with pytest.raises(launcher_comm.LauncherRequestRejected, match="not started with --lease"):
        await launcher_comm.hold_lease("127.0.0.1", info["comm_port"], key)
    assert await launcher_comm.is_alive("127.0.0.1", info["comm_port"], key)
    _, key2, info2, launched2 = await launch_kernel(listener, start_launcher, "--lease")
    with pytest.raises(launcher_comm.LauncherRequestRejected):
        await launcher_comm.hold_lease("127.0.0.1", info2["comm_port"], launcher.new_launch_key())
    assert (await comm_exchange(info2["comm_port"], b'{"lease": 1}'))["ok"] is False
    assert await launcher_comm.is_alive("127.0.0.1", info2["comm_port"], key2)
    for k, i, proc in ((key, info, launched), (key2, info2, launched2)):
        await launcher_comm.shutdown("127.0.0.1", i["comm_port"], k)
        assert await asyncio.wait_for(proc.proc.wait(), 30) == 0


async def test_lease_not_taken_in_time_stops_the_kernel(listener, start_launcher, monkeypatch):
    monkeypatch.setenv("EG_LAUNCHER_LEASE", "1")
    monkeypatch.setenv("EG_LAUNCHER_LEASE_WAIT", "1")
    _, key, info, launched = await launch_kernel(listener, start_launcher)
    assert await asyncio.wait_for(launched.proc.wait(), 30) != 0
    assert "no gateway took the lease within 1s" in launched.output


async def test_comm_port_refuses_unsigned_forged_and_replayed_requests(listener, start_launcher):
    _, key, info, launched = await launch_kernel(listener, start_launcher)
    port = info["comm_port"]

    unsigned = await launcher_comm.send_request("127.0.0.1", port, {"signum": 0}, None)
    assert unsigned["ok"] is False and "not signed" in unsigned["error"]

    with pytest.raises(launcher_comm.LauncherRequestRejected, match="bad MAC"):
        await launcher_comm.signal("127.0.0.1", port, 0, launcher.new_launch_key())

    signed = json.dumps(launcher.sign_request(launcher.derive_keys(key), {"signum": 0})).encode()
    assert await comm_exchange(port, signed) == {"ok": True, "alive": True}
    replayed = await comm_exchange(port, signed)
    assert replayed["ok"] is False and "replayed" in replayed["error"]

    stale = launcher.sign_request(launcher.derive_keys(key), {"shutdown": 1}, ts=int(time.time()) - 600)
    answer = await comm_exchange(port, json.dumps(stale).encode())
    assert answer["ok"] is False and "timestamp" in answer["error"]

    assert launched.proc.returncode is None  # nothing above reached the kernel
    assert await launcher_comm.shutdown("127.0.0.1", port, key) is True
    assert await asyncio.wait_for(launched.proc.wait(), 10) == 0


# -- launcher failures -----------------------------------------------------------------------------


async def test_unreachable_response_address_fails_clearly_and_leaves_no_kernel(start_launcher):
    address = f"127.0.0.1:{free_port()}"
    launched = await start_launcher("k-unreachable", address, launcher.new_launch_key(), "--response-timeout", "2")
    assert await asyncio.wait_for(launched.proc.wait(), 15) == 1
    assert f"cannot reach the gateway's response address {address}" in launched.output
    assert not group_members(launched.proc.pid)


async def test_kernel_that_dies_before_the_callback_fails_the_launch(start_launcher):
    address = f"127.0.0.1:{free_port()}"  # unreachable, so the launcher is still retrying
    launched = await start_launcher(
        "k-dies", address, launcher.new_launch_key(), "--kernel-class-name", "no_such_module.Kernel"
    )
    assert await asyncio.wait_for(launched.proc.wait(), 9) == 1
    assert "the kernel exited with code 1 before its connection info was sent" in launched.output
    assert not group_members(launched.proc.pid)


async def test_launcher_without_a_launch_key_refuses_to_send(start_launcher):
    launched = await start_launcher("k-nokey", f"127.0.0.1:{free_port()}", None)
    assert await asyncio.wait_for(launched.proc.wait(), 10) == 1
    assert "EG_LAUNCH_KEY is not set" in launched.output


@pytest.mark.parametrize("delivery", ["file", "stdin"])
async def test_launch_key_from_a_private_file_or_stdin_is_used_and_left_nowhere(listener, start_launcher, delivery):
    kernel_id, key, info, launched = await launch_kernel(listener, start_launcher, delivery=delivery)
    assert not launched.key_file.exists(), "the launcher removes the key file once read"
    kernel = psutil.Process(info["pid"])
    for proc in (psutil.Process(launched.proc.pid), kernel):
        assert key not in " ".join(proc.cmdline())
    assert not [k for k in kernel.environ() if k.startswith("EG_LAUNCH_KEY")]
    assert key.encode() not in open(f"/proc/{info['pid']}/environ", "rb").read()
    assert os.readlink(f"/proc/{info['pid']}/fd/0") == os.devnull  # stdin: nothing of the key's pipe
    await launcher_comm.shutdown("127.0.0.1", info["comm_port"], key)
    assert await asyncio.wait_for(launched.proc.wait(), 30) == 0


async def test_launch_key_file_that_others_may_read_is_refused_and_removed(start_launcher):
    launched = await start_launcher("k-open", f"127.0.0.1:{free_port()}", launcher.new_launch_key(),
                                    delivery="file", key_file_mode=0o644)
    assert await asyncio.wait_for(launched.proc.wait(), 10) == 1
    assert "may be read by other users (mode 644)" in launched.output and "owner only" in launched.output
    assert not launched.key_file.exists()


# -- the listener rejects bad payloads and keeps serving ---------------------------------------


def _tampered(message: bytes) -> bytes:
    parsed = json.loads(message)
    ct = bytearray(base64.b64decode(parsed["ct"]))
    ct[0] ^= 1
    parsed["ct"] = base64.b64encode(bytes(ct)).decode()
    return json.dumps(parsed).encode()


BAD_PAYLOADS = {
    # name: (build(kernel_id, keys) -> bytes, expected reason, attributed to the kernel?)
    "wrong key": (
        lambda kid, keys: launcher.seal_connection_info(
            launcher.derive_keys(launcher.new_launch_key()), kid, fake_info(kid)
        ),
        "authentication failed", True,
    ),
    "tampered ciphertext": (
        lambda kid, keys: _tampered(launcher.seal_connection_info(keys, kid, fake_info(kid))),
        "authentication failed", True,
    ),
    "kernel id swapped": (
        lambda kid, keys: json.dumps(
            {**json.loads(launcher.seal_connection_info(keys, "other", fake_info("other"))), "kernel_id": kid}
        ).encode(),
        "authentication failed", True,
    ),
    "stale timestamp": (
        lambda kid, keys: launcher.seal_connection_info(keys, kid, fake_info(kid), ts=int(time.time()) - 600),
        "timestamp", True,
    ),
    "unknown kernel id": (
        lambda kid, keys: launcher.seal_connection_info(keys, "no-such-kernel", fake_info("no-such-kernel")),
        "unknown kernel id", False,
    ),
    "oversized": (lambda kid, keys: b"{" + b" " * (70 * 1024) + b"}", "larger than", False),
    "garbage": (lambda kid, keys: b"\x00\x01 not a payload", "not a payload", False),
    "version 0": (lambda kid, keys: base64.b64encode(b'{"version": 0}'), "version 0", False),
}


@pytest.mark.parametrize("case", list(BAD_PAYLOADS))
async def test_bad_payload_is_rejected_and_the_listener_keeps_serving(listener, caplog, case):
    build, reason, attributed = BAD_PAYLOADS[case]
    kernel_id = str(uuid.uuid4())
    key = listener.new_launch_key()
    keys = launcher.derive_keys(key)
    future = listener.expect(kernel_id, key)

    with caplog.at_level(logging.WARNING, logger="test.response"):
        await send_raw(listener.address, build(kernel_id, keys))
        await wait_until(lambda: "rejected" in caplog.text)
    assert reason in caplog.text
    assert not future.done()
    diagnosis = listener.diagnose(kernel_id)
    if attributed:
        assert "rejected them" in diagnosis and reason in diagnosis
    else:
        assert "received nothing for kernel" in diagnosis and "matching no waiting kernel" in diagnosis
    assert key not in caplog.text

    await send_raw(listener.address, launcher.seal_connection_info(keys, kernel_id, fake_info(kernel_id)))
    assert await asyncio.wait_for(future, 5) == fake_info(kernel_id)


async def test_replayed_and_duplicate_payloads_are_rejected(listener, caplog):
    kernel_id = str(uuid.uuid4())
    key = listener.new_launch_key()
    keys = launcher.derive_keys(key)
    message = launcher.seal_connection_info(keys, kernel_id, fake_info(kernel_id))
    future = listener.expect(kernel_id, key)
    await send_raw(listener.address, message)
    assert await asyncio.wait_for(future, 5) == fake_info(kernel_id)

    with caplog.at_level(logging.WARNING, logger="test.response"):
        # A second payload for a kernel that is already connected.
        await send_raw(listener.address, launcher.seal_connection_info(keys, kernel_id, fake_info(kernel_id)))
        await wait_until(lambda: "already connected" in caplog.text)

        # The same message again, while a new launch of the same kernel (same key) waits.
        future = listener.expect(kernel_id, key)
        await send_raw(listener.address, message)
        await wait_until(lambda: "replayed" in caplog.text)
    assert not future.done()
    assert "replayed payload" in listener.diagnose(kernel_id)

    await send_raw(listener.address, launcher.seal_connection_info(keys, kernel_id, fake_info(kernel_id)))
    assert await asyncio.wait_for(future, 5) == fake_info(kernel_id)


async def test_slow_sender_is_dropped(listener, caplog):
    listener.read_timeout = 0.3
    host, port = launcher.parse_address(listener.address)
    _, writer = await asyncio.open_connection(host, port)
    writer.write(b'{"version": 2')
    with caplog.at_level(logging.WARNING, logger="test.response"):
        await wait_until(lambda: "not complete within" in caplog.text)
    writer.close()


# -- Enterprise Gateway's version-1 payload -------------------------------------------------------


def eg_v1_payload(connection_info: dict, public_key_b64: str) -> bytes:
    """What Enterprise Gateway's launch_ipykernel.py ``_encrypt`` sends, rebuilt with cryptography."""
    aes_key = os.urandom(16)
    padder = symmetric_padding.PKCS7(128).padder()
    padded = padder.update(json.dumps(connection_info).encode("utf-8")) + padder.finalize()
    encryptor = Cipher(algorithms.AES(aes_key), modes.ECB()).encryptor()
    conn_info = base64.b64encode(encryptor.update(padded) + encryptor.finalize())
    public_key = serialization.load_der_public_key(base64.b64decode(public_key_b64.encode()))
    key = base64.b64encode(public_key.encrypt(aes_key, rsa_padding.PKCS1v15()))
    payload = {"version": 1, "key": key.decode(), "conn_info": conn_info.decode()}
    return base64.b64encode(json.dumps(payload).encode(encoding="utf-8"))


async def test_enterprise_gateway_v1_payload_is_accepted(listener):
    kernel_id = str(uuid.uuid4())
    future = listener.expect(kernel_id, None)
    await send_raw(listener.address, eg_v1_payload(fake_info(kernel_id), listener.public_key))
    assert await asyncio.wait_for(future, 5) == fake_info(kernel_id)


async def test_v1_payload_is_refused_for_a_kernel_with_a_launch_key(listener, caplog):
    kernel_id = str(uuid.uuid4())
    future = listener.expect(kernel_id, listener.new_launch_key())
    with caplog.at_level(logging.WARNING, logger="test.response"):
        await send_raw(listener.address, eg_v1_payload(fake_info(kernel_id), listener.public_key))
        await wait_until(lambda: "no downgrade" in caplog.text)
    assert not future.done()


# -- protocol functions ------------------------------------------------------------------------------


def test_launch_keys_are_validated_and_derive_distinct_keys():
    keys = launcher.derive_keys(launcher.new_launch_key())
    assert len(keys.enc_key) == len(keys.mac_key) == 32 and keys.enc_key != keys.mac_key
    assert repr(keys) == "LaunchKeys()"  # never logged by accident
    for bad in ("", "not base64!", base64.urlsafe_b64encode(b"short").decode()):
        with pytest.raises(launcher.ProtocolError):
            launcher.derive_keys(bad)


def test_seal_and_open_round_trip_for_large_info():
    keys = launcher.derive_keys(launcher.new_launch_key())
    info = {"kernel_id": "k", "blob": "x" * 5000}
    opened = launcher.open_connection_info(keys, json.loads(launcher.seal_connection_info(keys, "k", info)))
    assert opened.info == info and opened.kernel_id == "k"


# -- gateway-side odds and ends ----------------------------------------------------------------------


async def test_comm_client_speaks_to_enterprise_gateway_launchers():
    """EG's launchers read plain JSON until EOF, act, and close without answering."""
    received = []

    async def eg_listener(reader, writer):
        received.append(json.loads(await reader.read()))
        writer.close()

    server = await asyncio.start_server(eg_listener, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    assert await launcher_comm.send_request("127.0.0.1", port, {"signum": 2}, None) is None
    assert await launcher_comm.is_alive("127.0.0.1", port, None) is True
    assert await launcher_comm.shutdown("127.0.0.1", port, None) is True
    assert received == [{"signum": 2}, {"signum": 0}, {"shutdown": 1}]
    server.close()
    await server.wait_closed()
    assert await launcher_comm.is_alive("127.0.0.1", port, None) is False
    assert await launcher_comm.shutdown("127.0.0.1", port, None) is False


def test_listener_address_comes_from_enterprise_gateway_env(monkeypatch):
    for name in ("EG_RESPONSE_ADDRESS", "EG_RESPONSE_IP", "EG_RESPONSE_PORT", "EG_RESPONSE_BIND_IP",
                 "EG_RESPONSE_ADDR_ANY"):
        monkeypatch.delenv(name, raising=False)
    assert ResponseListener().response_address == "127.0.0.1:8877"
    monkeypatch.setenv("EG_RESPONSE_IP", "10.1.2.3")
    monkeypatch.setenv("EG_RESPONSE_PORT", "9999")
    listener = ResponseListener()
    assert (listener.response_address, listener.bind_ip) == ("10.1.2.3:9999", "10.1.2.3")
    monkeypatch.setenv("EG_RESPONSE_ADDR_ANY", "true")
    assert ResponseListener().bind_ip == "0.0.0.0"
    monkeypatch.setenv("EG_RESPONSE_ADDRESS", "gw.example:7000")
    monkeypatch.setenv("EG_RESPONSE_BIND_IP", "10.9.9.9")
    listener = ResponseListener()
    assert (listener.response_address, listener.bind_ip) == ("gw.example:7000", "10.9.9.9")


def test_transport_encryption_disabled_is_accepted_and_any_other_value_refused():
    import subprocess

    options = launcher.build_parser().parse_args(["--transport-encryption", "disabled"])
    assert options.transport_encryption == "disabled"
    refused = subprocess.run(
        [sys.executable, launcher.__file__, "--RemoteProcessProxy.transport-encryption", "full", "--kernel-id", "k"],
        capture_output=True, text=True, timeout=60,
    )
    assert refused.returncode == 2
    assert "--transport-encryption full: eg does not encrypt kernel traffic yet" in refused.stderr
    assert "tunnelling" in refused.stderr


def test_the_launcher_starts_irkernel_or_any_kernel_command(monkeypatch):
    """--kernel-language r (or KERNEL_LANGUAGE=R from an R kernelspec) runs IRkernel; --kernel-command
    any kernel, with the connection file put in; a command without {connection_file} is refused."""
    monkeypatch.delenv("KERNEL_LANGUAGE", raising=False)
    def parse(args):
        return launcher.build_parser().parse_args(args)  # the default language is read from the environment here

    assert launcher.kernel_argv(parse([]), "/c.json")[1:3] == ["-m", "ipykernel_launcher"]
    assert launcher.kernel_argv(parse(["--kernel-language", "R"]), "/c.json") == [
        "R", "--slave", "-e", "IRkernel::main()", "--args", "/c.json"]
    monkeypatch.setenv("KERNEL_LANGUAGE", "R")
    assert launcher.kernel_argv(parse([]), "/c.json")[0] == "R"
    monkeypatch.setenv("KERNEL_LANGUAGE", "scala")  # no preset: ipykernel, as before
    assert launcher.kernel_argv(parse([]), "/c.json")[0] == sys.executable
    assert launcher.kernel_argv(parse(["--kernel-command", '["k", "-f", "{connection_file}"]']), "/c.json") == ["k", "-f", "/c.json"]
    assert launcher.kernel_argv(parse(["--kernel-command", "k --cf={connection_file}"]), "/c.json") == ["k", "--cf=/c.json"]
    with pytest.raises(launcher.LaunchError, match="no '{connection_file}'"):
        launcher.kernel_argv(parse(["--kernel-command", "k -f x"]), "/c.json")
    with pytest.raises(launcher.LaunchError, match="does not parse"):
        launcher.kernel_argv(parse(["--kernel-command", "[1,"]), "/c.json")
