"""The gateway's response listener: where remote kernel launchers send their connection info.

A resource-manager plugin that starts a kernel through a launcher (kernelspecs/launcher/)
calls, in order::

    key = listener.new_launch_key()            # per kernel; delivered as eg_core.remote.launcher_env says
    future = listener.expect(kernel.kernel_id, key)
    ... start the launcher with {response_address} = listener.address ...
    info = await asyncio.wait_for(future, timeout)   # on timeout: listener.diagnose(kernel_id)
    listener.forget(kernel.kernel_id)

Two payload versions are accepted, told apart by their ``version`` field:

- **2** (ours): authenticated encryption keyed by the kernel's launch key and bound to its kernel
  id; see :mod:`eg_core.kernelspecs.launcher.launch_ipykernel`. A kernel registered with a launch
  key accepts nothing else (no downgrade to version 1).
- **1** (Enterprise Gateway's launchers): ``b64(JSON {"version": 1, "key": b64(RSA-PKCS1v15(aes_key)),
  "conn_info": b64(AES-ECB(PKCS7(json)))})`` under this listener's RSA public key, accepted only
  for kernels registered without a launch key. It carries no timestamp or nonce, so it has no
  replay protection beyond "a kernel connects once".

Enterprise Gateway's legacy "version 0" payload (AES keyed by the kernel id itself) is not
supported: it is not authenticated by anything secret.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import collections
import errno
import fnmatch
import json
import re
import os
import time
from dataclasses import dataclass, field
from typing import Any

from traitlets import Float, Integer, List, Unicode, default, validate
from traitlets.config import LoggingConfigurable

from ..config import ConfigError
from ..kernelspecs.launcher.launch_ipykernel import (
    LaunchKeys, NonceCache, ProtocolError, derive_keys, new_launch_key, open_connection_info, read_message,
)

RSA_KEY_BITS = 2048


@dataclass
class _Rejection:
    at: float
    peer: str
    reason: str
    kernel_id: str | None = None


@dataclass
class _Waiter:
    """One kernel whose connection info is awaited."""

    kernel_id: str
    future: asyncio.Future
    keys: LaunchKeys | None
    registered_at: float = field(default_factory=time.time)
    rejections: list[_Rejection] = field(default_factory=list)
    accepted_from: str | None = None
    accepted_at: float | None = None


def _env_int(name: str, fallback: int) -> int:
    raw = os.environ.get(name)
    if raw is None:
        return fallback
    try:
        return int(raw)
    except ValueError:
        raise ConfigError(f"{name}={raw!r} must be an integer: fix or unset {name}") from None


def _truthy(value: str | None) -> bool:
    return (value or "").strip().lower() in ("1", "true", "yes", "on")


class ResponseListener(LoggingConfigurable):
    """Receives launchers' callbacks and hands each kernel's connection info to its waiter.

    One per gateway process, started at gateway startup (:meth:`start`) and stopped at shutdown
    (:meth:`stop`). Every rejected payload is logged (peer, kernel id, reason; never key
    material) and recorded for :meth:`diagnose`; the listener keeps serving.
    """

    response_address = Unicode(
        "127.0.0.1:8877", config=True,
        help="The 'host:port' launchers call back (Enterprise Gateway's {response_address}). "
        "Env: EG_RESPONSE_ADDRESS, or built from EG_RESPONSE_IP and EG_RESPONSE_PORT; "
        "default 127.0.0.1:8877. Port 0 picks a free port at start.",
    ).tag(env_default=("EG_RESPONSE_ADDRESS", "EG_RESPONSE_IP", "EG_RESPONSE_PORT"))

    @default("response_address")
    def _default_response_address(self) -> str:
        if os.environ.get("EG_RESPONSE_ADDRESS"):
            return os.environ["EG_RESPONSE_ADDRESS"]
        ip = os.environ.get("EG_RESPONSE_IP") or "127.0.0.1"
        port = os.environ.get("EG_RESPONSE_PORT") or "8877"
        return f"[{ip}]:{port}" if ":" in ip else f"{ip}:{port}"

    @validate("response_address")
    def _check_response_address(self, proposal):
        host, sep, port = proposal["value"].rpartition(":")
        if not sep or not host or not port.isdigit() or int(port) > 65535:
            raise ValueError(f"response_address {proposal['value']!r} must look like 'host:port'")
        return proposal["value"]

    port_retries = Integer(
        config=True,
        help="How many following ports to try when the response port is busy (Enterprise Gateway's "
        "EG_RESPONSE_PORT_RETRIES); when all are busy and the operator set no port, any free port is used.",
    ).tag(env_default=("EG_RESPONSE_PORT_RETRIES",))

    @default("port_retries")
    def _default_port_retries(self) -> int:
        return _env_int("EG_RESPONSE_PORT_RETRIES", 10)

    prohibited_local_ips = List(
        Unicode(), config=True,
        help="Patterns (fnmatch, e.g. '10.0.*') of addresses the response address may not use "
        "(Enterprise Gateway's EG_PROHIBITED_LOCAL_IPS); response_address 'auto:<port>' picks the "
        "first address of this host that matches none.",
    ).tag(env_default=("EG_PROHIBITED_LOCAL_IPS",))

    @default("prohibited_local_ips")
    def _default_prohibited(self) -> list[str]:
        return [p.strip() for p in os.environ.get("EG_PROHIBITED_LOCAL_IPS", "").split(",") if p.strip()]

    bind_ip = Unicode(
        config=True,
        help="The ip the listener binds. Env: EG_RESPONSE_BIND_IP (or EG_RESPONSE_ADDR_ANY=true "
        "for 0.0.0.0); default: the host part of response_address.",
    ).tag(env_default=("EG_RESPONSE_BIND_IP", "EG_RESPONSE_ADDR_ANY"), unset="the host part of response_address")

    @default("bind_ip")
    def _default_bind_ip(self) -> str:
        if os.environ.get("EG_RESPONSE_BIND_IP"):
            return os.environ["EG_RESPONSE_BIND_IP"]
        if _truthy(os.environ.get("EG_RESPONSE_ADDR_ANY")):
            return "0.0.0.0"
        return self.response_address.rpartition(":")[0].strip("[]")

    max_payload_bytes = Integer(
        64 * 1024, config=True, help="Larger payloads are dropped unread."
    )
    read_timeout = Float(
        10.0, config=True, help="Seconds a launcher may take to send its payload before it is dropped."
    )
    max_clock_skew = Float(
        300.0, config=True,
        help="Version-2 payloads whose timestamp is further than this (seconds) from the gateway's "
        "clock are refused.",
    )

    def __init__(self, **kwargs: Any):
        super().__init__(**kwargs)
        self._server: asyncio.AbstractServer | None = None
        self._private_key: Any = None
        self._public_key_b64: str | None = None
        self._port: int | None = None
        self._waiters: dict[str, _Waiter] = {}
        self._nonces = NonceCache(self.max_clock_skew)
        self._unattributed: collections.deque[_Rejection] = collections.deque(maxlen=100)
        self._writers: set[asyncio.StreamWriter] = set()

    # -- lifecycle ----------------------------------------------------------------------------

    async def start(self) -> None:
        """Create the RSA key pair (for version-1 launchers) and start listening.

        Called once at gateway startup. Raises OSError when the address cannot be bound.
        """
        # cryptography is imported here, not at module level: a gateway without remote kernels
        # never loads it (it costs ~7 MiB of RSS).
        from cryptography.hazmat.primitives import serialization
        from cryptography.hazmat.primitives.asymmetric import rsa

        self._private_key = await asyncio.to_thread(rsa.generate_private_key, 65537, RSA_KEY_BITS)
        der = self._private_key.public_key().public_bytes(
            serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
        )
        self._public_key_b64 = base64.b64encode(der).decode("ascii")
        self._resolve_auto_address()
        self._check_prohibited()
        self._server = await self._bind(int(self.response_address.rsplit(":", 1)[1]))
        self._port = self._server.sockets[0].getsockname()[1]
        self.log.info("Response listener on %s:%s, advertised as %s", self.bind_ip, self._port, self.address)
        if self.response_address.rpartition(":")[0].strip("[]") in ("0.0.0.0", "::"):
            self.log.warning(
                "response_address %s is a wildcard that launchers cannot call back; set it to an "
                "address of this host that kernel hosts can reach (bind_ip may stay 0.0.0.0)",
                self.response_address,
            )

    def _resolve_auto_address(self) -> None:
        """``auto:<port>``: the first address of this host not in ``prohibited_local_ips``
        (Enterprise Gateway's default response IP), read from the host's own name records."""
        host, _, port = self.response_address.rpartition(":")
        if host != "auto":
            return
        import socket

        candidates = [info[4][0] for info in socket.getaddrinfo(socket.gethostname(), None, socket.AF_INET)] + ["127.0.0.1"]
        allowed = [ip for ip in dict.fromkeys(candidates) if not self._prohibited(ip)]
        if not allowed:
            raise ConfigError(f"response_address auto: every address of this host ({', '.join(candidates)}) matches EG_PROHIBITED_LOCAL_IPS")
        self.response_address = f"{allowed[0]}:{port}"

    def _prohibited(self, ip: str) -> bool:
        for pattern in self.prohibited_local_ips:
            if fnmatch.fnmatchcase(ip, pattern):
                return True
            try:
                if re.match(pattern, ip):  # Enterprise Gateway's patterns are regular expressions
                    return True
            except re.error:
                pass
        return False

    def _check_prohibited(self) -> None:
        host = self.response_address.rpartition(":")[0].strip("[]")
        if self._prohibited(host):
            raise ConfigError(
                f"response address {self.response_address} matches prohibited_local_ips (EG_PROHIBITED_LOCAL_IPS): "
                "set ResponseListener.response_address (EG_RESPONSE_IP) to another address of this host"
            )

    def _port_chosen_by_operator(self) -> bool:
        section = self.config.get("ResponseListener") or {}
        return "response_address" in section or bool(os.environ.get("EG_RESPONSE_ADDRESS") or os.environ.get("EG_RESPONSE_PORT"))

    async def _bind(self, port: int) -> asyncio.AbstractServer:
        """Listen on ``port`` or, when busy, one of the next ``port_retries`` ports; when all are
        busy, any free port if the operator chose none, else :class:`ConfigError` naming the option."""
        last = port if port == 0 else min(port + max(self.port_retries, 0), 65535)
        for candidate in range(port, last + 1):
            try:
                server = await asyncio.start_server(self._handle_connection, host=self.bind_ip, port=candidate)
            except OSError as exc:
                if exc.errno != errno.EADDRINUSE:
                    raise ConfigError(
                        f"response listener cannot listen on {self.bind_ip}:{candidate}: {exc.strerror}: "
                        "fix ResponseListener.response_address / bind_ip (EG_RESPONSE_ADDRESS, EG_RESPONSE_IP)"
                    ) from None
                continue
            if candidate != port:
                self.log.info("Response port %s is in use; using %s", port, candidate)
            return server
        busy = f"{port}" if last == port else f"{port}..{last}"
        if self._port_chosen_by_operator():
            raise ConfigError(
                f"response port {busy} is in use (another gateway on this host?): set "
                "ResponseListener.response_address (or EG_RESPONSE_PORT) to a free port, or port 0 for any free port"
            )
        server = await asyncio.start_server(self._handle_connection, host=self.bind_ip, port=0)
        self.log.warning(
            "Response port %s is in use; using the free port %s (set ResponseListener.response_address "
            "to choose one)", busy, server.sockets[0].getsockname()[1],
        )
        return server

    async def stop(self) -> None:
        """Stop listening, drop open connections and cancel every pending waiter."""
        if self._server is not None:
            self._server.close()
            for writer in list(self._writers):
                writer.close()
            await self._server.wait_closed()
            self._server = None
        for waiter in self._waiters.values():
            if not waiter.future.done():
                waiter.future.cancel()
        self._waiters.clear()

    @property
    def address(self) -> str:
        """The "host:port" launchers should call back: response_address with the bound port."""
        host = self.response_address.rpartition(":")[0]
        port = self._port if self._port is not None else int(self.response_address.rpartition(":")[2])
        return f"{host}:{port}"

    @property
    def public_key(self) -> str:
        """Base64 DER SubjectPublicKeyInfo of the RSA key (the ``{public_key}`` of EG kernelspecs)."""
        if self._public_key_b64 is None:
            raise RuntimeError("the response listener has not been started")
        return self._public_key_b64

    # -- waiters --------------------------------------------------------------------------------

    @staticmethod
    def new_launch_key() -> str:
        """A fresh per-kernel launch key (urlsafe base64 of 32 random bytes)."""
        return new_launch_key()

    def expect(self, kernel_id: str, launch_key: str | None) -> asyncio.Future:
        """Register a kernel whose launcher is about to call back; returns a future of its info.

        Called by a resource manager just before it starts the launcher. The future resolves with
        the connection-info dict the launcher sent (ports, key, ip, ``pid``, ``pgid``,
        ``comm_port``, ``kernel_id``). With ``launch_key`` only a valid version-2 payload for
        this kernel id is accepted; with None only an Enterprise Gateway version-1 payload.
        A previous registration of the same kernel id is replaced (its future cancelled).
        Raises ValueError for a malformed launch key.
        """
        keys = derive_keys(launch_key) if launch_key is not None else None
        self.forget(kernel_id)
        future = asyncio.get_running_loop().create_future()
        self._waiters[kernel_id] = _Waiter(kernel_id, future, keys)
        return future

    def forget(self, kernel_id: str) -> None:
        """Drop a kernel's registration (after its launch succeeded or failed); cancels a pending future."""
        waiter = self._waiters.pop(kernel_id, None)
        if waiter is not None and not waiter.future.done():
            waiter.future.cancel()

    def diagnose(self, kernel_id: str) -> str:
        """Say what the listener saw for a kernel, for the error of a launch that timed out.

        Tells "the launcher never reached the gateway" apart from "it reached us with a payload we
        rejected" (and why), and mentions payloads that could not be matched to any kernel.
        """
        waiter = self._waiters.get(kernel_id)
        if waiter is None:
            return f"kernel {kernel_id} is not registered with the response listener at {self.address}"
        now = time.time()
        if waiter.accepted_at is not None:
            return (
                f"the connection info of kernel {kernel_id} arrived from {waiter.accepted_from} "
                f"{waiter.accepted_at - waiter.registered_at:.1f}s after the launch started"
            )
        waited = now - waiter.registered_at
        if waiter.rejections:
            last = waiter.rejections[-1]
            return (
                f"the response listener at {self.address} received {len(waiter.rejections)} "
                f"payload(s) for kernel {kernel_id} in {waited:.0f}s and rejected them; the last, "
                f"from {last.peer}: {last.reason}"
            )
        text = (
            f"the response listener at {self.address} received nothing for kernel {kernel_id} in "
            f"{waited:.0f}s: the launcher never reached the gateway (did it start? can its host "
            f"connect to {self.address}?)"
        )
        strays = [r for r in self._unattributed if r.at >= waiter.registered_at]
        if strays:
            last = strays[-1]
            text += (
                f"; meanwhile {len(strays)} payload(s) matching no waiting kernel were rejected, "
                f"the last from {last.peer}: {last.reason}"
            )
        return text

    # -- receiving --------------------------------------------------------------------------------

    async def _handle_connection(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        peer = _format_peer(writer.get_extra_info("peername"))
        self._writers.add(writer)
        try:
            data = await asyncio.wait_for(read_message(reader, self.max_payload_bytes), self.read_timeout)
        except ProtocolError:
            self._reject(peer, f"payload larger than {self.max_payload_bytes} bytes")
            return
        except asyncio.TimeoutError:
            self._reject(peer, f"payload not complete within {self.read_timeout:g}s")
            return
        except OSError as err:
            self._reject(peer, f"connection failed: {err.strerror or err}")
            return
        finally:
            self._writers.discard(writer)
            writer.close()
        await self._accept(data, peer)

    async def _accept(self, data: bytes, peer: str) -> None:
        try:
            message = _decode_wire_message(data)
        except ValueError:
            self._reject(peer, "not a payload (neither a JSON object nor base64 of one)")
            return
        version = message.get("version")
        if version == 2:
            self._accept_v2(message, peer)
        elif version == 1:
            await self._accept_v1(message, peer)
        else:
            self._reject(peer, f"unsupported payload version {version!r} (legacy version 0 is not supported)")

    def _accept_v2(self, message: dict, peer: str) -> None:
        kernel_id = message.get("kernel_id")
        waiter = self._waiting_for(kernel_id, peer)
        if waiter is None:
            return
        if waiter.keys is None:
            self._reject(peer, "a version-2 payload, but the kernel was launched without a launch key", waiter)
            return
        try:
            opened = open_connection_info(waiter.keys, message)
        except ProtocolError as err:
            self._reject(peer, str(err), waiter)
            return
        skew = time.time() - opened.ts
        if abs(skew) > self.max_clock_skew:
            self._reject(
                peer, f"timestamp {skew:+.0f}s off the gateway's clock (limit {self.max_clock_skew:g}s)", waiter
            )
            return
        if not self._nonces.add(opened.nonce, opened.ts):
            self._reject(peer, "replayed payload (nonce already seen)", waiter)
            return
        self._resolve(waiter, opened.info, peer, version=2)

    async def _accept_v1(self, message: dict, peer: str) -> None:
        try:
            info = await asyncio.to_thread(self._decrypt_v1, message.get("key"), message.get("conn_info"))
        except ValueError:
            self._reject(
                peer, "version-1 payload that this gateway's private key cannot decrypt "
                "(was the launcher given another gateway's public key?)"
            )
            return
        waiter = self._waiting_for(info.get("kernel_id"), peer)
        if waiter is None:
            return
        if waiter.keys is not None:
            self._reject(peer, "a version-1 payload, but the kernel requires version 2 (no downgrade)", waiter)
            return
        self._resolve(waiter, info, peer, version=1)

    def _decrypt_v1(self, key_b64: Any, conn_info_b64: Any) -> dict:
        """Enterprise Gateway's version-1 decryption; raises ValueError on any failure. Runs in a thread."""
        from cryptography.hazmat.primitives import padding as symmetric_padding
        from cryptography.hazmat.primitives.asymmetric import padding as rsa_padding
        from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes

        try:
            aes_key = self._private_key.decrypt(base64.b64decode(key_b64, validate=True), rsa_padding.PKCS1v15())
            decryptor = Cipher(algorithms.AES(aes_key), modes.ECB()).decryptor()
            padded = decryptor.update(base64.b64decode(conn_info_b64, validate=True)) + decryptor.finalize()
            unpadder = symmetric_padding.PKCS7(128).unpadder()
            info = json.loads(unpadder.update(padded) + unpadder.finalize())
        except (TypeError, ValueError, binascii.Error) as err:
            raise ValueError("undecryptable version-1 payload") from err
        if not isinstance(info, dict):
            raise ValueError("version-1 connection info is not a JSON object")
        return info

    def _waiting_for(self, kernel_id: Any, peer: str) -> _Waiter | None:
        """The pending waiter for ``kernel_id``; rejects and returns None when there is none."""
        if not isinstance(kernel_id, str) or not kernel_id:
            self._reject(peer, "payload without a kernel id")
            return None
        waiter = self._waiters.get(kernel_id)
        if waiter is None:
            self._reject(peer, f"unknown kernel id {kernel_id}", kernel_id=kernel_id)
            return None
        if waiter.future.done():
            self._reject(peer, "the kernel is already connected (or its launch was abandoned)", waiter)
            return None
        return waiter

    def _resolve(self, waiter: _Waiter, info: dict, peer: str, version: int) -> None:
        waiter.accepted_from, waiter.accepted_at = peer, time.time()
        waiter.future.set_result(info)
        self.log.info(
            "[kernel %s] connection info (payload version %s) received from %s after %.2fs",
            waiter.kernel_id, version, peer, waiter.accepted_at - waiter.registered_at,
        )

    def _reject(self, peer: str, reason: str, waiter: _Waiter | None = None, kernel_id: str | None = None) -> None:
        rejection = _Rejection(time.time(), peer, reason, waiter.kernel_id if waiter else kernel_id)
        if waiter is not None:
            waiter.rejections.append(rejection)
            del waiter.rejections[:-20]
        else:
            self._unattributed.append(rejection)
        prefix = f"[kernel {rejection.kernel_id}] " if rejection.kernel_id else ""
        self.log.warning("%sResponse listener rejected a payload from %s: %s", prefix, peer, reason)


def _decode_wire_message(data: bytes) -> dict:
    """Version 2 is a JSON object; version 1 is base64 of one. Raises ValueError otherwise."""
    text = data.strip()
    if not text.startswith(b"{"):
        text = base64.b64decode(text, validate=True)
    message = json.loads(text)
    if not isinstance(message, dict):
        raise ValueError("not a JSON object")
    return message


def _format_peer(peername: Any) -> str:
    if isinstance(peername, tuple) and len(peername) >= 2:
        return f"{peername[0]}:{peername[1]}"
    return str(peername)


__all__ = ["ResponseListener", "ProtocolError"]
