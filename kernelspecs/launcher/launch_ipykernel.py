"""Start an IPython kernel beside this launcher and call the gateway back with its connection info.

Run on the kernel's host (a remote machine, a container, a YARN container)::

    python launch_ipykernel.py --kernel-id ID --port-range 0..0 --response-address HOST:PORT \\
        --public-key KEY [--ip 0.0.0.0] [--advertise-ip IP] [--kernel-class-name CLASS] [--lease]

with the per-kernel secret delivered where no other user can read it: a file named by
``EG_LAUNCH_KEY_FILE`` (readable by its owner only; refused otherwise, and removed once read), or
the first line of stdin with ``EG_LAUNCH_KEY_STDIN=1`` (stdin is then /dev/null). The variable
``EG_LAUNCH_KEY`` (the key itself) is still accepted, for backends whose environment only the
kernel's user sees (a Kubernetes Secret referenced by the pod, a local child process). The launcher

1. picks 5 kernel ports and 1 comm port in the port range and writes a connection file;
2. starts the kernel as a child process in the launcher's own process group (it calls
   ``os.setsid()`` first), so the gateway can signal or kill the whole group by its pgid;
3. sends the connection info, plus ``pid`` (the kernel's), ``pgid``, ``comm_port`` and
   ``kernel_id``, to the response address as a version-2 payload (below);
4. serves the comm port (signal, liveness and shutdown requests from the gateway) until the
   kernel exits, then exits with the kernel's exit code (0 after a requested shutdown).

With ``--lease`` (or ``EG_LAUNCHER_LEASE=1`` in the environment, which is how a gateway that
keeps no session store starts it) the kernel lives only as long as its gateway: the gateway holds
one comm port connection open (a lease request), and when that connection closes without a
shutdown request (the gateway was killed: its host's kernel closes its sockets), or when no
gateway took the lease within ``LEASE_WAIT`` seconds (``EG_LAUNCHER_LEASE_WAIT``) of the call
back, the launcher terminates the kernel and exits.

The kernel is ipykernel, or with ``--kernel-language r`` (the default when the gateway passes
``KERNEL_LANGUAGE=r``, an R kernelspec's language) IRkernel, or any kernel with
``--kernel-command`` (its argv with ``{connection_file}``): the launcher's part, the callback,
the comm port and the lease, is the same for every language.

It needs only the standard library and ipykernel (in the kernel's Python), so it can be copied to
any host or image. Enterprise Gateway's arguments, including the deprecated
``--RemoteProcessProxy.*`` forms, are accepted. POSIX only; Python 3.8 or later.

The gateway imports this module as ``eg_core.kernelspecs.launcher.launch_ipykernel`` for the
protocol functions below, so the key derivation, encryption and MACs live in one place. Importing
it has no side effects.

Version-2 payload (launcher -> gateway, one TCP connection, EOF ends the message)::

    {"version": 2, "kernel_id": ID, "nonce": b64, "ts": unix seconds, "ct": b64, "tag": b64}

    enc_key, mac_key = HKDF-SHA256(secret, info=b"eg-launch-v2"), 32 bytes each
    ct  = json(info) XOR HMAC-SHA256(enc_key, nonce || counter64)-blocks
    tag = HMAC-SHA256(mac_key, frame(b"v2") || frame(kernel_id) || frame(nonce) || frame(ts) || frame(ct))

where ``frame(x)`` is a 4-byte big-endian length followed by ``x``, so no two field lists give the
same MAC input. The gateway checks the tag, the timestamp and the nonce (against replays).

Comm port requests (gateway -> launcher; the request ends with a newline or where the sender
half-closes; the launcher answers one JSON line ``{"ok": true, "alive": bool}`` or ``{"ok":
false, "error": reason}``, then closes)::

    {"signum": n}          forward signal n to the kernel's process group (n=0: liveness check)
    {"shutdown": 1}        terminate the kernel, then exit
    {"lease": 1}           (``--lease`` only) the answer comes, the connection stays open: the
                           kernel is terminated when the gateway closes it without a shutdown

With a launch key every request must come wrapped as
``{"request": {...}, "ts": unix time, "nonce": b64, "mac": b64}`` (see :func:`sign_request`);
bad MACs, timestamps more than 60 s off and reused nonces are refused.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import binascii
import errno
import hashlib
import hmac
import json
import logging
import os
import random
import secrets
import shlex
import signal
import socket
import sys
import tempfile
import time
import uuid
from dataclasses import dataclass, field
from typing import Any, NamedTuple

LAUNCHER_VERSION = 2
PAYLOAD_VERSION = 2
DEFAULT_KERNEL_CLASS_NAME = "ipykernel.ipkernel.IPythonKernel"
LAUNCH_KEY_ENV = "EG_LAUNCH_KEY"
LAUNCH_KEY_FILE_ENV = "EG_LAUNCH_KEY_FILE"
LAUNCH_KEY_STDIN_ENV = "EG_LAUNCH_KEY_STDIN"
LAUNCH_KEY_BYTES = 32
NONCE_BYTES = 16
MAX_MESSAGE_BYTES = 64 * 1024
COMM_READ_TIMEOUT = 10.0
COMM_REQUEST_MAX_SKEW = 60.0
LEASE_WAIT = 60.0
LEASE_ENV = "EG_LAUNCHER_LEASE"
LEASE_WAIT_ENV = "EG_LAUNCHER_LEASE_WAIT"  # seconds, to override LEASE_WAIT
KERNEL_TERMINATE_GRACE = 5.0
KERNEL_PORT_NAMES = ("shell_port", "iopub_port", "stdin_port", "control_port", "hb_port")

_HKDF_INFO = b"eg-launch-v2"
_PAYLOAD_MAC_LABEL = b"v2"
_COMM_MAC_LABEL = b"eg-comm-v2\x00"
# Signals that would stop the launcher along with the kernel; they go to the kernel only.
_STOP_SIGNALS = frozenset({signal.SIGSTOP, signal.SIGTSTP, signal.SIGTTIN, signal.SIGTTOU})
# Signals whose default action is to do nothing; the launcher needs no handler for them.
_HARMLESS_SIGNALS = frozenset({signal.SIGCHLD, signal.SIGURG, signal.SIGWINCH})

log = logging.getLogger("eg.launcher")


# =============================================================================================
# Protocol: keys, the version-2 payload, comm request MACs, replay protection.
# Shared with the gateway (eg_core._runtime.callback_listener, eg_core._runtime.launcher_comm).
# =============================================================================================


class ProtocolError(ValueError):
    """A message that is malformed or fails authentication; the text says why, without secrets."""


@dataclass(frozen=True)
class LaunchKeys:
    """The two keys derived from one kernel's launch key (see :func:`derive_keys`)."""

    enc_key: bytes = field(repr=False)
    mac_key: bytes = field(repr=False)


class OpenedPayload(NamedTuple):
    """A version-2 payload whose tag checked out: what :func:`open_connection_info` returns."""

    kernel_id: str
    info: dict
    nonce: bytes
    ts: int


def new_launch_key() -> str:
    """A fresh per-kernel secret: urlsafe base64 of 32 random bytes (the ``EG_LAUNCH_KEY`` value)."""
    return base64.urlsafe_b64encode(secrets.token_bytes(LAUNCH_KEY_BYTES)).decode("ascii")


def derive_keys(launch_key: str) -> LaunchKeys:
    """Derive the encryption and MAC keys from a launch key.

    HKDF-SHA256 (RFC 5869, zero salt) with info ``b"eg-launch-v2"``, 64 bytes of output split in
    two. Raises :class:`ProtocolError` when ``launch_key`` is not urlsafe base64 of 32 bytes.
    """
    text = launch_key.strip()
    try:
        secret = base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))
    except (binascii.Error, ValueError):
        raise ProtocolError("the launch key is not urlsafe base64") from None
    if len(secret) != LAUNCH_KEY_BYTES:
        raise ProtocolError(f"the launch key must encode {LAUNCH_KEY_BYTES} bytes, not {len(secret)}")
    okm = _hkdf_sha256(secret, _HKDF_INFO, 64)
    return LaunchKeys(enc_key=okm[:32], mac_key=okm[32:])


def _hkdf_sha256(ikm: bytes, info: bytes, length: int) -> bytes:
    prk = hmac.new(bytes(32), ikm, hashlib.sha256).digest()
    okm, block, counter = b"", b"", 1
    while len(okm) < length:
        block = hmac.new(prk, block + info + bytes([counter]), hashlib.sha256).digest()
        okm += block
        counter += 1
    return okm[:length]


def keystream_xor(enc_key: bytes, nonce: bytes, data: bytes) -> bytes:
    """Encrypt or decrypt ``data``: XOR with HMAC-SHA256(enc_key, nonce || 64-bit counter) blocks."""
    if not data:
        return b""
    blocks = (len(data) + 31) // 32
    stream = b"".join(
        hmac.new(enc_key, nonce + i.to_bytes(8, "big"), hashlib.sha256).digest() for i in range(blocks)
    )
    mixed = int.from_bytes(data, "big") ^ int.from_bytes(stream[: len(data)], "big")
    return mixed.to_bytes(len(data), "big")


def _frame(part: bytes) -> bytes:
    return len(part).to_bytes(4, "big") + part


def payload_tag(mac_key: bytes, kernel_id: str, nonce: bytes, ts: int, ct: bytes) -> bytes:
    """The version-2 payload's tag, binding the ciphertext to the kernel id, nonce and timestamp."""
    parts = (_PAYLOAD_MAC_LABEL, kernel_id.encode("utf-8"), nonce, str(int(ts)).encode("ascii"), ct)
    return hmac.new(mac_key, b"".join(_frame(p) for p in parts), hashlib.sha256).digest()


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


def _unb64(value: Any, name: str) -> bytes:
    if not isinstance(value, str):
        raise ProtocolError(f"field {name!r} is missing or not a string")
    try:
        return base64.b64decode(value.encode("ascii"), validate=True)
    except (binascii.Error, ValueError):
        raise ProtocolError(f"field {name!r} is not valid base64") from None


def seal_connection_info(
    keys: LaunchKeys, kernel_id: str, info: dict, *, ts: int | None = None, nonce: bytes | None = None
) -> bytes:
    """Build the version-2 wire message carrying ``info`` for ``kernel_id``.

    Called by the launcher once the kernel runs; ``ts`` and ``nonce`` are for tests only.
    Returns the bytes to send to the response address (then close the connection).
    """
    nonce = secrets.token_bytes(NONCE_BYTES) if nonce is None else nonce
    ts = int(time.time()) if ts is None else int(ts)
    ct = keystream_xor(keys.enc_key, nonce, json.dumps(info).encode("utf-8"))
    message = {
        "version": PAYLOAD_VERSION,
        "kernel_id": kernel_id,
        "nonce": _b64(nonce),
        "ts": ts,
        "ct": _b64(ct),
        "tag": _b64(payload_tag(keys.mac_key, kernel_id, nonce, ts, ct)),
    }
    return json.dumps(message).encode("utf-8")


def open_connection_info(keys: LaunchKeys, message: dict) -> OpenedPayload:
    """Check a parsed version-2 message's tag and decrypt it.

    Called by the gateway with the keys of the kernel named in ``message["kernel_id"]``.
    Freshness (``ts``) and replays (``nonce``) are the caller's to check. Raises
    :class:`ProtocolError` on a malformed message, a bad tag, or a kernel id inside the
    connection info that differs from the authenticated one.
    """
    kernel_id = message.get("kernel_id")
    ts = message.get("ts")
    if not isinstance(kernel_id, str) or not kernel_id:
        raise ProtocolError("field 'kernel_id' is missing")
    if not isinstance(ts, int) or isinstance(ts, bool):
        raise ProtocolError("field 'ts' is missing or not an integer")
    nonce = _unb64(message.get("nonce"), "nonce")
    ct = _unb64(message.get("ct"), "ct")
    tag = _unb64(message.get("tag"), "tag")
    if not hmac.compare_digest(tag, payload_tag(keys.mac_key, kernel_id, nonce, ts, ct)):
        raise ProtocolError("authentication failed (bad tag: wrong launch key, or tampered)")
    try:
        info = json.loads(keystream_xor(keys.enc_key, nonce, ct))
    except ValueError:
        raise ProtocolError("the decrypted connection info is not JSON") from None
    if not isinstance(info, dict):
        raise ProtocolError("the decrypted connection info is not a JSON object")
    if info.get("kernel_id", kernel_id) != kernel_id:
        raise ProtocolError("the connection info names another kernel id than the payload")
    return OpenedPayload(kernel_id, info, nonce, ts)


def request_mac(mac_key: bytes, request: dict, ts: float, nonce: str) -> bytes:
    """MAC of a comm port request: HMAC-SHA256 over the canonical JSON of request, ts and nonce."""
    canonical = json.dumps(
        {"request": request, "ts": ts, "nonce": nonce}, sort_keys=True, separators=(",", ":")
    )
    return hmac.new(mac_key, _COMM_MAC_LABEL + canonical.encode("utf-8"), hashlib.sha256).digest()


def sign_request(keys: LaunchKeys, request: dict, *, ts: int | None = None, nonce: bytes | None = None) -> dict:
    """Wrap a comm port request for a launcher that has a launch key.

    Called by the gateway (:mod:`eg_core._runtime.launcher_comm`) for every request. Returns the envelope
    ``{"request", "ts", "nonce", "mac"}`` to send as JSON.
    """
    ts = int(time.time()) if ts is None else ts
    nonce_b64 = _b64(secrets.token_bytes(NONCE_BYTES) if nonce is None else nonce)
    mac = request_mac(keys.mac_key, request, ts, nonce_b64)
    return {"request": request, "ts": ts, "nonce": nonce_b64, "mac": _b64(mac)}


def verify_request(
    keys: LaunchKeys, envelope: Any, nonces: "NonceCache", *, max_skew: float = COMM_REQUEST_MAX_SKEW
) -> dict:
    """Check a signed comm request; returns the inner request.

    Called by the launcher for each request when it has a launch key. Raises
    :class:`ProtocolError` for an unsigned or malformed envelope, a bad MAC, a timestamp more than
    ``max_skew`` seconds off, or a nonce seen before (recorded in ``nonces`` once the MAC checks).
    """
    if not isinstance(envelope, dict) or not isinstance(envelope.get("request"), dict):
        raise ProtocolError("the request is not signed (this launcher requires authenticated requests)")
    request, ts, nonce = envelope["request"], envelope.get("ts"), envelope.get("nonce")
    if not isinstance(ts, (int, float)) or isinstance(ts, bool) or not isinstance(nonce, str):
        raise ProtocolError("the signed request lacks 'ts' or 'nonce'")
    mac = _unb64(envelope.get("mac"), "mac")
    if not hmac.compare_digest(mac, request_mac(keys.mac_key, request, ts, nonce)):
        raise ProtocolError("authentication failed (bad MAC)")
    skew = time.time() - ts
    if abs(skew) > max_skew:
        raise ProtocolError(f"the request's timestamp is {skew:+.0f}s off this host's clock (limit {max_skew:g}s)")
    if not nonces.add(nonce, ts):
        raise ProtocolError("replayed request (nonce already used)")
    return request


class NonceCache:
    """Nonces seen recently, to refuse replays.

    A message is only accepted within ``window`` seconds of its timestamp, so a nonce is kept until
    then and forgotten after. Only authenticated messages are recorded, so its size stays small.
    """

    def __init__(self, window: float):
        self.window = window
        self._expiry: dict[Any, float] = {}

    def add(self, nonce: Any, ts: float) -> bool:
        """Record ``nonce``; returns False if it was already recorded (a replay)."""
        now = time.time()
        for old in [n for n, expiry in self._expiry.items() if expiry < now]:
            del self._expiry[old]
        if nonce in self._expiry:
            return False
        self._expiry[nonce] = max(now, ts) + self.window
        return True


def parse_address(address: str) -> tuple[str, int]:
    """Split ``"host:port"`` (or ``"[v6]:port"``); raises ValueError saying what is wrong."""
    host, sep, port = address.strip().rpartition(":")
    host = host.strip("[]")
    if not sep or not host or not port.isdigit() or not 0 < int(port) < 65536:
        raise ValueError(f"address {address!r} must look like 'host:port'")
    return host, int(port)


# =============================================================================================
# The launcher.
# =============================================================================================


class LaunchError(RuntimeError):
    """The launch cannot go on; the message is printed to stderr and the launcher exits 1."""


def parse_port_range(text: str | None) -> tuple[int, int]:
    """``"lower..upper"`` to ``(lower, upper)``; missing or ``"0..0"`` gives ``(0, 0)`` (any port)."""
    if not text or text.strip() in ("0", "0..0"):
        return 0, 0
    lower, sep, upper = text.strip().partition("..")
    if not sep or not lower.isdigit() or not upper.isdigit():
        raise LaunchError(f"port range {text!r} must look like 'lower..upper'")
    lo, hi = int(lower), int(upper)
    if not 0 < lo <= hi < 65536:
        raise LaunchError(f"port range {text!r} must satisfy 0 < lower <= upper < 65536")
    min_size = int(os.environ.get("MIN_PORT_RANGE_SIZE") or os.environ.get("EG_MIN_PORT_RANGE_SIZE") or 0)
    if hi - lo + 1 < max(min_size, len(KERNEL_PORT_NAMES) + 1):
        raise LaunchError(
            f"port range {text!r} holds {hi - lo + 1} ports; at least {max(min_size, 6)} are required"
        )
    return lo, hi


def bind_ports(ip: str, count: int, lo: int, hi: int) -> list[socket.socket]:
    """Bind ``count`` distinct ports on ``ip`` in ``lo..hi`` (any free port when ``lo == 0``).

    Returns the bound sockets; the caller closes those whose ports it hands to the kernel.
    """
    family = socket.AF_INET6 if ":" in ip else socket.AF_INET
    candidates = iter(random.sample(range(lo, hi + 1), min(hi - lo + 1, 500)) if lo else [])
    bound: list[socket.socket] = []
    try:
        while len(bound) < count:
            port = next(candidates, None) if lo else 0
            if port is None:
                raise LaunchError(f"no {count} free ports found on {ip} in port range {lo}..{hi}")
            sock = socket.socket(family, socket.SOCK_STREAM)
            try:
                sock.bind((ip, port))
            except OSError:
                sock.close()
                continue
            bound.append(sock)
    except BaseException:
        for sock in bound:
            sock.close()
        raise
    return bound


def default_advertise_ip(bind_ip: str, response_address: str | None) -> str:
    """The ip to put into the connection info when ``--advertise-ip`` is not given.

    A specific ``--ip`` is used as is. For a wildcard it is the address of the interface that
    routes to the gateway's response address (found with an unsent UDP "connect"), else
    ``127.0.0.1``. Gateway plugins usually replace it with the host address they know.
    """
    if bind_ip not in ("0.0.0.0", "::", ""):
        return bind_ip
    if response_address:
        try:
            host, port = parse_address(response_address)
            with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as probe:
                probe.connect((host, port))
                ip = probe.getsockname()[0]
            if ip and ip != "0.0.0.0":
                return ip
        except (OSError, ValueError):
            pass
    return "127.0.0.1"


def write_connection_file(path: str, ip: str, ports: dict[str, int], key: str) -> dict:
    """Write a Jupyter connection file (mode 0600) and return its content."""
    info = {
        **ports,
        "ip": ip,
        "key": key,
        "transport": "tcp",
        "signature_scheme": "hmac-sha256",
        "kernel_name": "",
    }
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as fp:
        json.dump(info, fp, indent=1)
    return info


def read_launch_key() -> str | None:
    """The launch key: the first line of stdin with ``EG_LAUNCH_KEY_STDIN=1``, else the file
    named by ``EG_LAUNCH_KEY_FILE``, else ``EG_LAUNCH_KEY``.

    Called once at startup, before anything else reads stdin. The variables are removed from this
    process's environment, so the kernel never sees them. A key file is removed once read (also
    when it is refused); one that its group or other users may read is refused: raises
    :class:`LaunchError` saying so.
    """
    key = os.environ.pop(LAUNCH_KEY_ENV, None)
    key_file = os.environ.pop(LAUNCH_KEY_FILE_ENV, None)
    from_stdin = os.environ.pop(LAUNCH_KEY_STDIN_ENV, "") == "1"
    if from_stdin:
        key = _read_key_from_stdin() or key
    elif key_file:
        key = _read_key_file(key_file) or key
    return key or None


def _read_key_from_stdin() -> str:
    """The first line of stdin; stdin becomes /dev/null (the kernel inherits nothing of it)."""
    line = b""
    while not line.endswith(b"\n") and len(line) < 4096:
        chunk = os.read(0, 1)
        if not chunk:
            break
        line += chunk
    devnull = os.open(os.devnull, os.O_RDONLY)
    os.dup2(devnull, 0)
    os.close(devnull)
    return line.decode("ascii", "replace").strip()


def _read_key_file(path: str) -> str:
    """Read and remove the key file at ``path``; refuse one that others may read."""
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError as err:
        raise LaunchError(f"cannot read the launch key file {path!r}: {err.strerror}") from None
    try:
        with os.fdopen(fd) as fp:
            mode = os.fstat(fp.fileno()).st_mode
            key = fp.read().strip()
    finally:
        try:
            os.unlink(path)
        except OSError as err:  # a read-only secret mount (Docker, Kubernetes) is removed with its container
            level = logging.DEBUG if err.errno in (errno.EROFS, errno.EBUSY) else logging.WARNING
            log.log(level, "cannot remove the launch key file %r: %s", path, err.strerror)
    if mode & 0o077:
        raise LaunchError(
            f"the launch key file {path!r} may be read by other users (mode {mode & 0o777:o}); "
            "it must be readable by its owner only (mode 600 or 400). It was removed; the kernel was not started."
        )
    return key


async def send_connection_info(address: str, message: bytes, timeout: float) -> None:
    """Deliver ``message`` to the gateway's response address, retrying for up to ``timeout`` s.

    Raises :class:`LaunchError` naming the address when it cannot be reached.
    """
    host, port = parse_address(address)
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    delay, attempts, last_error = 0.2, 0, "timed out"
    while True:
        attempts += 1
        remaining = deadline - loop.time()
        try:
            _, writer = await asyncio.wait_for(asyncio.open_connection(host, port), max(remaining, 0.1))
            try:
                writer.write(message)
                await writer.drain()
            finally:
                writer.close()
                await writer.wait_closed()
            return
        except asyncio.TimeoutError:
            last_error = "timed out"
        except OSError as err:
            last_error = os.strerror(err.errno) if err.errno else str(err)
        remaining = deadline - loop.time()
        if remaining <= 0:
            raise LaunchError(
                f"cannot reach the gateway's response address {address} "
                f"({attempts} attempts over {timeout:g}s; last error: {last_error}). "
                "Check that the gateway runs and that this host can connect to that address."
            )
        await asyncio.sleep(min(delay, remaining))
        delay = min(delay * 2, 2.0)


async def read_message(reader: asyncio.StreamReader, limit: int = MAX_MESSAGE_BYTES) -> bytes:
    """Read until EOF; raises :class:`ProtocolError` once more than ``limit`` bytes arrive."""
    chunks, size = [], 0
    while True:
        chunk = await reader.read(65536)
        if not chunk:
            return b"".join(chunks)
        size += len(chunk)
        if size > limit:
            raise ProtocolError(f"message larger than {limit} bytes")
        chunks.append(chunk)


async def read_request(reader: asyncio.StreamReader, limit: int = MAX_MESSAGE_BYTES) -> bytes:
    """Read one comm request: up to a newline or EOF, whichever comes first; raises
    :class:`ProtocolError` once more than ``limit`` bytes arrive."""
    data = b""
    while b"\n" not in data:
        chunk = await reader.read(65536)
        if not chunk:
            return data
        data += chunk
        if len(data) > limit:
            raise ProtocolError(f"message larger than {limit} bytes")
    return data.split(b"\n", 1)[0]


def _keep_alive(sock: socket.socket | None) -> None:
    # So a lease whose gateway host vanished (no FIN ever comes) ends within about two minutes.
    if sock is None:
        return
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_KEEPALIVE, 1)
    for name, value in (("TCP_KEEPIDLE", 60), ("TCP_KEEPINTVL", 10), ("TCP_KEEPCNT", 6)):
        if hasattr(socket, name):
            sock.setsockopt(socket.IPPROTO_TCP, getattr(socket, name), value)


class KernelSupervisor:
    """Runs beside the kernel child: serves the comm port and stops the kernel on request.

    Created once the kernel child exists; :meth:`handle_comm_connection` is the comm server's
    connection callback.
    """

    def __init__(self, kernel: asyncio.subprocess.Process, keys: LaunchKeys | None, lease: bool = False):
        self.kernel = kernel
        self.keys = keys
        self.lease = lease
        self.leases = 0  # lease connections open now
        self.lease_taken = asyncio.Event()
        self.pgid = os.getpgrp()
        self.nonces = NonceCache(COMM_REQUEST_MAX_SKEW)
        self.shutdown_requested = False
        self.exited = asyncio.ensure_future(kernel.wait())
        self._stopping: asyncio.Task | None = None
        self._ignored_signals: set[int] = set()

    @property
    def alive(self) -> bool:
        return self.kernel.returncode is None

    def install_signal_handlers(self) -> None:
        """SIGTERM/SIGHUP stop the kernel and the launcher; SIGINT is the kernel's alone."""
        loop = asyncio.get_running_loop()
        for signum in (signal.SIGTERM, signal.SIGHUP):
            loop.add_signal_handler(signum, self.stop, f"received {signal.Signals(signum).name}")
        self._ignore_in_launcher(signal.SIGINT)

    def _ignore_in_launcher(self, signum: int) -> None:
        # A handled (not ignored) signal is reset to its default in the exec'd kernel.
        if signum not in self._ignored_signals:
            asyncio.get_running_loop().add_signal_handler(signum, lambda: None)
            self._ignored_signals.add(signum)

    def stop(self, reason: str) -> asyncio.Task:
        """Terminate the kernel (SIGTERM, then SIGKILL after a grace period); idempotent."""
        if self._stopping is None:
            if self.alive:
                log.info("Stopping the kernel: %s", reason)
            self._stopping = asyncio.ensure_future(self._terminate_kernel())
        return self._stopping

    async def _terminate_kernel(self) -> None:
        if self.alive:
            self._kill_kernel(signal.SIGTERM)
            try:
                await asyncio.wait_for(asyncio.shield(self.exited), KERNEL_TERMINATE_GRACE)
            except asyncio.TimeoutError:
                log.warning("The kernel ignored SIGTERM for %gs; killing it", KERNEL_TERMINATE_GRACE)
                self._kill_kernel(signal.SIGKILL)
                await self.exited

    def _kill_kernel(self, signum: int) -> None:
        try:
            os.kill(self.kernel.pid, signum)
        except ProcessLookupError:
            pass

    def sweep_process_group(self) -> None:
        """SIGTERM whatever the kernel left behind in the process group (the launcher ignores it)."""
        if self.pgid != os.getpid():
            return  # setsid failed and we are not the group leader: the group is not ours
        loop = asyncio.get_running_loop()
        loop.add_signal_handler(signal.SIGTERM, lambda: None)
        try:
            os.killpg(self.pgid, signal.SIGTERM)
        except OSError:
            pass

    async def handle_comm_connection(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        """Read one request, act on it, answer one JSON line, close (a lease: hold it open)."""
        peer = writer.get_extra_info("peername")
        reply, after_reply = await self._answer(reader)
        if not reply["ok"]:
            log.warning("Refused a comm port request from %s: %s", peer, reply["error"])
        try:
            writer.write(json.dumps(reply).encode("utf-8") + b"\n")
            await writer.drain()
            if after_reply == self.hold_lease:
                await self.hold_lease(reader, writer)
        except OSError as err:
            log.debug("Could not answer the comm request from %s: %s", peer, err)
        finally:
            writer.close()
        if after_reply is not None and after_reply != self.hold_lease:
            after_reply()

    async def hold_lease(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        """Keep a lease connection until the gateway closes it; then, unless the gateway asked
        for a shutdown or holds another lease, stop the kernel."""
        self.leases += 1
        self.lease_taken.set()
        _keep_alive(writer.get_extra_info("socket"))
        log.info("Comm port: the gateway holds the lease")
        try:
            while await reader.read(65536):
                pass  # a lease carries nothing after its request
        except OSError:
            pass
        finally:
            self.leases -= 1
        if not self.leases and not self.shutdown_requested:
            self.stop("the gateway that held the lease is gone")

    def watch_lease(self, timeout: float) -> None:
        """Stop the kernel when no gateway takes the lease within ``timeout`` seconds."""
        self._lease_watch = asyncio.ensure_future(self._expect_lease(timeout))

    async def _expect_lease(self, timeout: float) -> None:
        try:
            await asyncio.wait_for(self.lease_taken.wait(), timeout)
        except asyncio.TimeoutError:
            self.stop(f"no gateway took the lease within {timeout:g}s")

    async def _answer(self, reader: asyncio.StreamReader):
        try:
            data = await asyncio.wait_for(read_request(reader), COMM_READ_TIMEOUT)
            request = self._authenticate(json.loads(data or b"null"))
            return self._execute(request)
        except asyncio.TimeoutError:
            error = f"request not complete within {COMM_READ_TIMEOUT:g}s"
        except (ValueError, TypeError) as err:  # ProtocolError, bad JSON, bad signal numbers
            error = str(err)
        except OSError as err:
            error = f"{type(err).__name__}: {err.strerror or err}"
        return {"ok": False, "error": error}, None

    def _authenticate(self, message: Any) -> dict:
        if self.keys is not None:
            return verify_request(self.keys, message, self.nonces)
        if not isinstance(message, dict):
            raise ProtocolError("the request is not a JSON object")
        return message

    def _execute(self, request: dict):
        """Act on a request; returns the reply and an action to run once the reply is sent."""
        after_reply = None
        if request.get("lease"):
            if not self.lease:
                raise ProtocolError("this launcher was not started with --lease: it takes no lease")
            return {"ok": True, "alive": self.alive}, self.hold_lease
        if "signum" not in request and "shutdown" not in request:
            raise ProtocolError("unknown request (expected 'signum', 'shutdown' or 'lease')")
        if request.get("signum") is not None:
            signum = request["signum"]
            if not isinstance(signum, int) or isinstance(signum, bool):
                raise ProtocolError(f"'signum' must be an integer, not {signum!r}")
            if signum != 0:
                log.info("Comm port: signal %s for the kernel", signum)
            after_reply = self._send_signal(signum)
        if request.get("shutdown"):
            log.info("Comm port: shutdown requested")
            self.shutdown_requested = True
            after_reply = lambda: self.stop("shutdown requested by the gateway")  # noqa: E731
        return {"ok": True, "alive": self.alive}, after_reply

    def _send_signal(self, signum: int):
        """Deliver ``signum`` now, or return the action that delivers it after the reply."""
        if signum == 0 or not self.alive:
            return None
        if signum not in signal.valid_signals():
            raise ProtocolError(f"invalid signal number {signum}")
        if signum == signal.SIGKILL:
            return lambda: os.killpg(self.pgid, signal.SIGKILL)  # takes the launcher along
        if signum in _STOP_SIGNALS or signum == signal.SIGCONT:
            self._kill_kernel(signum)
            return None
        if signum not in (signal.SIGTERM, signal.SIGHUP) and signum not in _HARMLESS_SIGNALS:
            self._ignore_in_launcher(signum)
        os.killpg(self.pgid, signum)
        return None


def build_parser() -> argparse.ArgumentParser:
    """The launcher's arguments: Enterprise Gateway's (with their deprecated aliases) plus ours."""
    parser = argparse.ArgumentParser(
        prog="launch_ipykernel.py",
        description="Start an IPython kernel and send its connection info to a Jupyter gateway.",
    )
    alias = "--RemoteProcessProxy."
    parser.add_argument("--kernel-id", alias + "kernel-id", dest="kernel_id", help="the kernel's id")
    parser.add_argument(
        "--port-range", alias + "port-range", dest="port_range", default="0..0",
        help="'lower..upper' ports for the kernel and comm ports; 0..0 (default) = any",
    )
    parser.add_argument(
        "--response-address", alias + "response-address", dest="response_address",
        help="'host:port' of the gateway's response listener; without it no callback is sent",
    )
    parser.add_argument(
        "--public-key", alias + "public-key", dest="public_key",
        help="the gateway's RSA key (Enterprise Gateway's version-1 payload); accepted, not used",
    )
    parser.add_argument(
        "--spark-context-initialization-mode", alias + "spark-context-initialization-mode",
        dest="spark_init_mode", default="none", choices=("none", "lazy", "eager"),
        help="lazy: the kernel binds spark and sc, made on first use; eager: made before the kernel is "
        "ready; none (default): neither (needs pyspark in the kernel's Python and eg_spark_context.py "
        "beside this launcher)",
    )
    parser.add_argument(
        "--cluster-type", alias + "cluster-type", dest="cluster_type", default="none",
        choices=("spark", "dask", "none"), help="accepted for compatibility; ignored",
    )
    parser.add_argument(
        "--kernel-class-name", alias + "kernel-class-name", dest="kernel_class_name",
        default=DEFAULT_KERNEL_CLASS_NAME, help="the kernel class ipykernel runs",
    )
    parser.add_argument(
        "--transport-encryption", alias + "transport-encryption", dest="transport_encryption", default="disabled",
        help="gateway_provisioners' option: only 'disabled' is accepted (this launcher does not encrypt kernel traffic)",
    )
    parser.add_argument(
        "--kernel-language", dest="kernel_language", type=str.lower, choices=KERNEL_LANGUAGES,
        default=_language_from_env(),
        help="the kernel to start: python (ipykernel) or r (IRkernel); default: $KERNEL_LANGUAGE (the "
        "kernelspec's language, set by the gateway) when it names one of them, else python",
    )
    parser.add_argument(
        "--kernel-command", dest="kernel_command",
        help="any kernel's argv instead (a JSON list, or shell words) with '{connection_file}' where the "
        "connection file goes, e.g. '[\"R\", \"--slave\", \"-e\", \"IRkernel::main()\", \"--args\", \"{connection_file}\"]'",
    )
    parser.add_argument("--ip", default="0.0.0.0", help="address the kernel binds (default 0.0.0.0)")
    parser.add_argument(
        "--advertise-ip", dest="advertise_ip",
        help="ip put into the connection info (default: --ip if specific, else the address of the "
        "interface that routes to the response address, else 127.0.0.1)",
    )
    parser.add_argument(
        "--response-timeout", dest="response_timeout", type=float, default=10.0,
        help="seconds to keep retrying the response address (default 10)",
    )
    parser.add_argument(
        "--lease", action="store_true", default=os.environ.get(LEASE_ENV, "").lower() in ("1", "true", "yes"),
        help=f"stop the kernel when the gateway's lease connection closes without a shutdown request, or when "
        f"no gateway takes a lease within {LEASE_WAIT:g}s of the call back (default: on when {LEASE_ENV}=1)",
    )
    parser.add_argument("connection_file", nargs="?", help="deprecated: where to write the connection file")
    return parser


def prepare_connection_file(options: argparse.Namespace) -> tuple[str, dict, socket.socket]:
    """Pick the ports and write the connection file.

    Returns the file's path, its content, and the bound comm socket (the kernel ports are
    released for the kernel to bind).
    """
    lo, hi = parse_port_range(options.port_range)
    sockets = bind_ports(options.ip, len(KERNEL_PORT_NAMES) + 1, lo, hi)
    comm_socket = sockets.pop()
    ports = dict(zip(KERNEL_PORT_NAMES, (s.getsockname()[1] for s in sockets)))
    for sock in sockets:
        sock.close()
    conn_file = options.connection_file
    if not conn_file or not os.path.isdir(os.path.dirname(os.path.abspath(conn_file))):
        fd, conn_file = tempfile.mkstemp(prefix=f"kernel-{options.kernel_id or 'eg'}_", suffix=".json")
        os.close(fd)
    info = write_connection_file(conn_file, options.ip, ports, uuid.uuid4().hex)
    log.info("Kernel %s: ports %s, comm port %s", options.kernel_id, ports, comm_socket.getsockname()[1])
    return conn_file, info, comm_socket


# The kernels the launcher starts besides ipykernel (``--kernel-language``): their argv, with
# ``{connection_file}`` where the connection file's path goes (as in a kernelspec's argv).
KERNEL_COMMANDS = {
    "r": ("R", "--slave", "-e", "IRkernel::main()", "--args", "{connection_file}"),
}
KERNEL_LANGUAGES = ("python", *KERNEL_COMMANDS)


def kernel_argv(options: argparse.Namespace, conn_file: str) -> list[str]:
    """The kernel's command: ``--kernel-command`` (JSON list or shell words), else the
    ``--kernel-language`` preset, else ipykernel in this launcher's Python.

    Raises :class:`LaunchError` for a command without ``{connection_file}`` or one that does not parse.
    """
    command = getattr(options, "kernel_command", None)
    language = (getattr(options, "kernel_language", None) or "python").lower()
    if command:
        try:
            words = json.loads(command) if command.lstrip().startswith("[") else shlex.split(command)
        except ValueError as err:
            raise LaunchError(f"--kernel-command {command!r} does not parse: {err}") from None
        if not words or not all(isinstance(w, str) for w in words):
            raise LaunchError(f"--kernel-command {command!r} must be a non-empty list of strings")
    elif language in KERNEL_COMMANDS:
        words = list(KERNEL_COMMANDS[language])
    else:
        return [
            sys.executable, "-m", "ipykernel_launcher", "-f", conn_file,
            f"--IPKernelApp.kernel_class={options.kernel_class_name}",
            *spark_context_args(getattr(options, "spark_init_mode", "none")),
            # The kernel exits by itself if the launcher dies (ipykernel polls its parent pid).
            f"--IPKernelApp.parent_handle={os.getpid()}",
        ]
    if not any("{connection_file}" in w for w in words):
        raise LaunchError(f"the kernel command {words} has no '{{connection_file}}' argument")
    return [w.replace("{connection_file}", conn_file) for w in words]


def _language_from_env() -> str:
    language = os.environ.get("KERNEL_LANGUAGE", "").strip().lower()
    return language if language in KERNEL_LANGUAGES else "python"


async def start_kernel(argv: list[str]) -> asyncio.subprocess.Process:
    """Start the kernel (``argv``, see :func:`kernel_argv`) as a child process in this
    launcher's process group."""
    try:
        return await asyncio.create_subprocess_exec(*argv, stdin=asyncio.subprocess.DEVNULL)
    except OSError as err:
        raise LaunchError(f"cannot start the kernel with {argv[0]}: {err}") from None


def spark_context_args(mode: str) -> tuple[str, ...]:
    """ipykernel arguments (and, in this process's environment, the kernel's) that load
    ``eg_spark_context`` into the kernel for a ``lazy`` or ``eager`` Spark context: from this
    launcher's directory, else from the Python path (``spark-submit --py-files`` puts it there);
    none for ``none``, or when the module is in neither place (logged)."""
    if mode == "none":
        return ()
    here = os.path.dirname(os.path.abspath(__file__))
    if os.path.isfile(os.path.join(here, "eg_spark_context.py")):
        os.environ["PYTHONPATH"] = os.pathsep.join(filter(None, (here, os.environ.get("PYTHONPATH"))))
    else:
        import importlib.util

        if importlib.util.find_spec("eg_spark_context") is None:
            log.warning("No Spark context (mode %s): eg_spark_context.py is neither beside %s nor on the "
                        "Python path", mode, __file__)
            return ()
    os.environ["EG_SPARK_CONTEXT_INIT_MODE"] = mode
    return ("--IPKernelApp.extensions=['eg_spark_context']",)


async def call_back(options: argparse.Namespace, message: bytes, supervisor: KernelSupervisor) -> None:
    """Send the connection info unless the kernel dies first; raises :class:`LaunchError` if not sent."""
    callback = asyncio.ensure_future(
        send_connection_info(options.response_address, message, options.response_timeout)
    )
    await asyncio.wait({callback, supervisor.exited}, return_when=asyncio.FIRST_COMPLETED)
    if not callback.done():
        callback.cancel()
        raise LaunchError(
            f"the kernel exited with code {supervisor.kernel.returncode} before its connection info "
            f"was sent to {options.response_address}; see the kernel's output above"
        )
    callback.result()  # raises LaunchError when the gateway could not be reached
    log.info("Kernel %s: connection info sent to %s", options.kernel_id, options.response_address)


async def run_launcher(options: argparse.Namespace, launch_key: str | None) -> int:
    """Start the kernel, call the gateway back, serve the comm port; returns the exit code."""
    keys = derive_keys(launch_key) if launch_key else None
    if options.response_address and keys is None:
        raise LaunchError(
            f"{LAUNCH_KEY_ENV} is not set (nor a key through {LAUNCH_KEY_FILE_ENV} or {LAUNCH_KEY_STDIN_ENV}): "
            "this launcher sends only authenticated (version 2) connection info, keyed by the per-kernel "
            "secret the gateway gives it"
        )
    advertise_ip = options.advertise_ip or default_advertise_ip(options.ip, options.response_address)
    conn_file, info, comm_socket = prepare_connection_file(options)
    supervisor = server = None
    try:
        supervisor = KernelSupervisor(await start_kernel(kernel_argv(options, conn_file)), keys, options.lease)
        supervisor.install_signal_handlers()
        server = await asyncio.start_server(supervisor.handle_comm_connection, sock=comm_socket)
        if options.response_address:
            info.update(
                ip=advertise_ip, pid=supervisor.kernel.pid, pgid=supervisor.pgid,
                comm_port=comm_socket.getsockname()[1], kernel_id=options.kernel_id,
            )
            await call_back(options, seal_connection_info(keys, options.kernel_id, info), supervisor)
            if options.lease:
                supervisor.watch_lease(float(os.environ.get(LEASE_WAIT_ENV) or LEASE_WAIT))
        else:
            log.info("No response address: the connection info is in %s", conn_file)

        returncode = await supervisor.exited
        log.info("Kernel %s exited with code %s", options.kernel_id, returncode)
        if supervisor.shutdown_requested:
            return 0
        return returncode if returncode >= 0 else 128 - returncode
    except LaunchError as err:
        log.error("Launch of kernel %s failed: %s", options.kernel_id, err)
        return 1
    finally:
        if server is not None:
            server.close()
        comm_socket.close()
        if supervisor is not None:
            await supervisor.stop("the launcher is exiting")
            supervisor.sweep_process_group()
        try:
            os.unlink(conn_file)
        except OSError:
            pass


def _become_group_leader() -> None:
    # So the gateway can signal or kill the launcher, the kernel and its children by one pgid.
    try:
        os.setsid()
    except OSError:
        pass  # already a process-group leader (started by a launcher that did it for us)


def main(argv: list[str] | None = None) -> None:
    """Command-line entry point; exits with the kernel's exit code, or 1 when the launch fails."""
    level = os.environ.get("LOG_LEVEL") or os.environ.get("EG_LOG_LEVEL") or "INFO"
    logging.basicConfig(
        format="[%(levelname)1.1s %(asctime)s.%(msecs)03d %(name)s] %(message)s",
        datefmt="%H:%M:%S",
        level=int(level) if level.isdigit() else level.upper(),
    )
    options = build_parser().parse_args(argv)
    if options.response_address and not options.kernel_id:
        build_parser().error("--kernel-id is required with --response-address")
    if options.transport_encryption.strip().lower() != "disabled":
        build_parser().error(
            f"--transport-encryption {options.transport_encryption}: eg does not encrypt kernel traffic yet; "
            "pass 'disabled' (or leave the option out), and protect the kernel's ports another way: eg-ssh's "
            "tunnelling (enable_tunneling, EG_ENABLE_TUNNELING) carries them over SSH"
        )
    if options.cluster_type == "dask":
        log.info("Ignoring cluster-type=dask: this launcher creates no Dask context")
    if options.response_address:
        try:
            parse_address(options.response_address)
        except ValueError as err:
            build_parser().error(f"--response-address: {err}")
    _become_group_leader()
    try:
        launch_key = read_launch_key()
        code = asyncio.run(run_launcher(options, launch_key))
    except (LaunchError, ProtocolError) as err:
        log.error("Launch of kernel %s failed: %s", options.kernel_id, err)
        code = 1
    sys.exit(code)


if __name__ == "__main__":
    main()
