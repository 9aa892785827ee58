"""The gateway's client for a kernel launcher's comm port: signals, liveness, shutdown.

A resource-manager plugin gets ``comm_port`` (and the host it knows) from the connection info
the launcher sent, and calls these from its ``send_signal``, ``poll`` and ``kill`` hooks. Each
call opens one TCP connection, sends one JSON request, half-closes, and reads the launcher's
one-line JSON answer.

With the kernel's launch key, requests are signed (see
:func:`eg_core.kernelspecs.launcher.launch_ipykernel.sign_request`), as our launcher requires.
Without one they go as plain JSON, as Enterprise Gateway's launchers expect; those answer
nothing, so :func:`send_request` returns None for them.
"""

from __future__ import annotations

import asyncio
import json

from ..kernelspecs.launcher.launch_ipykernel import ProtocolError, derive_keys, read_message, sign_request

MAX_REPLY_BYTES = 64 * 1024


class LauncherRequestRejected(Exception):
    """The launcher answered ``{"ok": false}``: it refused the request (e.g. authentication failed).

    The text is the launcher's reason. This is a configuration or clock problem, not a dead kernel.
    """


async def send_request(
    host: str, port: int, request: dict, launch_key: str | None, timeout: float = 5.0
) -> dict | None:
    """Send one request to a launcher's comm port and return its answer.

    Returns the answer dict (``{"ok": true, "alive": bool}`` from our launcher, ``{"ok": false,
    "error": ...}`` when refused), or None when the launcher closed without answering
    (Enterprise Gateway's launchers). Raises ConnectionRefusedError when nothing listens (the
    launcher is gone), other OSErrors on network trouble, and ``asyncio.TimeoutError`` after ``timeout`` s.
    """
    body = sign_request(derive_keys(launch_key), request) if launch_key else request
    try:
        data = await asyncio.wait_for(_exchange(host, port, json.dumps(body).encode("utf-8")), timeout)
    except ProtocolError:
        raise ValueError(f"the launcher at {host}:{port} answered more than {MAX_REPLY_BYTES} bytes") from None
    line = data.strip().split(b"\n", 1)[0]
    if not line:
        return None
    answer = json.loads(line)
    if not isinstance(answer, dict):
        raise ValueError(f"the launcher at {host}:{port} answered {answer!r}, not a JSON object")
    return answer


async def signal(host: str, port: int, signum: int, launch_key: str | None, timeout: float = 5.0) -> bool:
    """Have the launcher send ``signum`` to the kernel's process group (0 only checks).

    Called for interrupts (SIGINT, or the kernelspec's alternate signal) and by :func:`is_alive`.
    Returns whether the kernel is alive (True when an Enterprise Gateway launcher took the
    request, as it does not answer). Raises :class:`LauncherRequestRejected` when refused, and
    what :func:`send_request` raises.
    """
    answer = _checked(await send_request(host, port, {"signum": int(signum)}, launch_key, timeout))
    return True if answer is None else bool(answer.get("alive", True))


async def is_alive(host: str, port: int, launch_key: str | None, timeout: float = 5.0) -> bool:
    """Whether the kernel behind the launcher runs: signal 0. Connection refused means dead (False).

    Other network errors and timeouts are raised: they say nothing certain about the kernel.
    """
    try:
        return await signal(host, port, 0, launch_key, timeout)
    except ConnectionRefusedError:
        return False


async def shutdown(host: str, port: int, launch_key: str | None, timeout: float = 5.0) -> bool:
    """Ask the launcher to terminate the kernel and exit.

    Called after the kernel's ZMQ ``shutdown_request``, or to kill it. Returns True when the
    launcher took the request, False when nothing listened any more (already gone). Raises
    :class:`LauncherRequestRejected` when refused.
    """
    try:
        _checked(await send_request(host, port, {"shutdown": 1}, launch_key, timeout))
    except ConnectionRefusedError:
        return False
    return True


def _checked(answer: dict | None) -> dict | None:
    if answer is not None and answer.get("ok") is False:
        raise LauncherRequestRejected(str(answer.get("error", "refused")))
    return answer


async def hold_lease(host: str, port: int, launch_key: str, timeout: float = 5.0) -> asyncio.StreamWriter:
    """Take the lease of a launcher started with ``--lease``: one connection, kept open, whose
    closing without a shutdown request (this process ending, however) makes the launcher stop
    its kernel. Returns the connection's writer; close it to give the lease up. Raises
    :class:`LauncherRequestRejected` when refused, OSError or ``asyncio.TimeoutError``."""
    body = json.dumps(sign_request(derive_keys(launch_key), {"lease": 1})).encode("utf-8") + b"\n"
    reader, writer = await asyncio.wait_for(asyncio.open_connection(host, port), timeout)
    try:
        writer.write(body)
        line = await asyncio.wait_for(reader.readline(), timeout)
        answer = json.loads(line or b"null")
        if not isinstance(answer, dict):
            raise LauncherRequestRejected(f"the launcher at {host}:{port} answered {line[:80]!r} to a lease request")
        _checked(answer)
    except BaseException:
        writer.close()
        raise
    return writer


async def _exchange(host: str, port: int, body: bytes) -> bytes:
    """Connect, send ``body``, half-close, read the answer until EOF."""
    reader, writer = await asyncio.open_connection(host, port)
    try:
        writer.write(body)
        await writer.drain()
        writer.write_eof()
        try:
            return await read_message(reader, MAX_REPLY_BYTES)
        except ConnectionResetError:
            return b""
    finally:
        writer.close()


__all__ = ["send_request", "signal", "is_alive", "shutdown", "hold_lease", "LauncherRequestRejected"]
