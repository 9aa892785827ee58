"""SSH connections (asyncssh), reused per (host, port, user), and the errors they raise.

A kernel holds one session channel on a pooled connection for its whole life (its bootstrap
process, see :mod:`eg_ssh._remote`); short commands (kill, tail) borrow a channel briefly. A
connection carries at most ``max_sessions`` kernels (sshd's ``MaxSessions`` caps channels per
connection); past that, or when sshd refuses a channel, another connection is opened. A
connection that no kernel uses is closed after ``idle_timeout``. asyncssh is imported by the
first connection: a gateway that never logs in to a host does not load it.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, AsyncIterator

if TYPE_CHECKING:
    import asyncssh

log = logging.getLogger("eg.ssh")


class HostUnreachable(Exception):
    """The host did not answer (refused, unreachable, timed out, connection lost): try another."""


class SessionRefused(HostUnreachable):
    """The connection is up but the server refused another channel (sshd's MaxSessions)."""


class LoginRejected(Exception):
    """The host answered but refused us (authentication, host key) or the settings are wrong:
    fail the launch; trying other hosts would hide a configuration or security problem."""


@dataclass(frozen=True)
class Target:
    """Where and as whom to log in; also the pool key."""

    host: str
    port: int
    user: str
    client_keys: tuple[str, ...] = ()
    known_hosts: str = "~/.ssh/known_hosts"
    connect_timeout: float = 10.0
    keepalive_interval: float = 30.0
    password: str = field(default="", repr=False)
    gss: bool = False

    def __str__(self) -> str:
        return f"{self.user}@{self.host}:{self.port}"


@dataclass(eq=False)
class Connection:
    """One SSH connection of the pool, with the channels it carries."""

    target: Target
    conn: asyncssh.SSHClientConnection
    limit: int
    sessions: int = 0
    closed: bool = False
    idle_since: float = field(default_factory=time.monotonic)
    installed: set[str] = field(default_factory=set)  # launcher paths known to exist there

    @property
    def peer_ip(self) -> str:
        """The address the connection reached: what the gateway dials for the kernel's ports."""
        peer = self.conn.get_extra_info("peername")
        return peer[0] if peer else self.target.host


class Pool:
    """Open SSH connections by target. Used from the event loop only."""

    def __init__(self) -> None:
        self._conns: dict[Target, list[Connection]] = {}
        self._locks: dict[Target, asyncio.Lock] = {}
        self._reaper: asyncio.Task | None = None
        self.opened = 0

    async def acquire(self, target: Target, max_sessions: int, idle_timeout: float) -> Connection:
        """A connection to ``target`` with room for one more channel, counted as used until
        :meth:`release`. Opens one when needed.

        Raises :class:`HostUnreachable` or :class:`LoginRejected`.
        """
        lock = self._locks.setdefault(target, asyncio.Lock())
        async with lock:
            for c in self._conns.get(target, []):
                if not c.closed and c.sessions < c.limit:
                    c.sessions += 1
                    return c
            c = await self._open(target, max_sessions, idle_timeout)
            c.sessions += 1
            return c

    def release(self, c: Connection) -> None:
        """Give back a channel slot; the connection stays open for ``idle_timeout`` when unused."""
        c.sessions = max(c.sessions - 1, 0)
        if c.sessions == 0:
            c.idle_since = time.monotonic()

    def saturated(self, c: Connection) -> None:
        """The server refused a channel: use this connection for no more than it carries now."""
        c.limit = max(c.sessions - 1, 1)

    @contextlib.asynccontextmanager
    async def channel(self, target: Target, max_sessions: int = 8, idle_timeout: float = 300.0) -> AsyncIterator[Connection]:
        """Borrow a connection for one short command."""
        c = await self.acquire(target, max_sessions, idle_timeout)
        try:
            yield c
        finally:
            self.release(c)

    async def _open(self, target: Target, max_sessions: int, idle_timeout: float) -> Connection:
        import asyncssh

        start = time.monotonic()
        options = await _options(target)
        try:
            conn = await asyncssh.connect(target.host, options=options)
        except asyncssh.PermissionDenied as exc:
            raise LoginRejected(
                f"SSH login to {target} was rejected ({exc.reason}): the host does not accept "
                f"{_keys_text(target)} for user {target.user!r}"
            ) from None
        except asyncssh.HostKeyNotVerifiable as exc:
            raise LoginRejected(
                f"the SSH host key of {target.host}:{target.port} could not be verified against the "
                f"known_hosts file {target.known_hosts!r} ({exc.reason}). If the host is genuine, add its "
                f"key there (check its fingerprint first): ssh-keyscan -p {target.port} {target.host} "
                f">> {target.known_hosts}"
            ) from None
        except asyncssh.DisconnectError as exc:
            raise HostUnreachable(f"SSH connection to {target.host}:{target.port} failed: {exc.reason}") from None
        except asyncio.TimeoutError:
            raise HostUnreachable(
                f"no SSH connection to {target.host}:{target.port} within {target.connect_timeout:g}s"
            ) from None
        except OSError as exc:
            reason = os.strerror(exc.errno) if exc.errno else str(exc)
            raise HostUnreachable(f"cannot connect to {target.host}:{target.port}: {reason}") from None
        c = Connection(target, conn, limit=max_sessions)
        self._conns.setdefault(target, []).append(c)
        self.opened += 1
        asyncio.ensure_future(self._forget_when_closed(c))
        self._start_reaper(idle_timeout)
        log.info("SSH connection to %s opened in %.3fs", target, time.monotonic() - start)
        return c

    async def _forget_when_closed(self, c: Connection) -> None:
        await c.conn.wait_closed()
        c.closed = True
        conns = self._conns.get(c.target, [])
        if c in conns:
            conns.remove(c)
        log.info("SSH connection to %s closed", c.target)

    def _start_reaper(self, idle_timeout: float) -> None:
        if self._reaper is None or self._reaper.done():
            self._reaper = asyncio.ensure_future(self._reap(idle_timeout))

    async def _reap(self, idle_timeout: float) -> None:
        """Close connections that carried no channel for ``idle_timeout`` seconds."""
        interval = max(min(idle_timeout / 2, 60.0), 0.5)
        while any(self._conns.values()):
            await asyncio.sleep(interval)
            now = time.monotonic()
            for conns in list(self._conns.values()):
                for c in list(conns):
                    if c.sessions == 0 and now - c.idle_since >= idle_timeout:
                        c.closed = True
                        conns.remove(c)
                        c.conn.close()

    async def close_all(self) -> None:
        """Close every connection; called when the gateway stops."""
        if self._reaper:
            self._reaper.cancel()
        conns = [c for cs in self._conns.values() for c in cs]
        self._conns.clear()
        for c in conns:
            c.closed = True
            c.conn.close()
        await asyncio.gather(*(c.conn.wait_closed() for c in conns), return_exceptions=True)


async def _options(target: Target) -> asyncssh.SSHClientConnectionOptions:
    """Connection options; reading keys and known_hosts happens in a worker thread.

    Raises :class:`LoginRejected` for unreadable key or known_hosts files.
    """
    import asyncssh

    known_hosts = os.path.expanduser(target.known_hosts)
    kwargs: dict[str, Any] = dict(
        username=target.user,
        port=target.port,
        known_hosts=known_hosts,
        connect_timeout=target.connect_timeout,
        keepalive_interval=target.keepalive_interval or None,
        config=None,
    )
    if target.client_keys:
        kwargs.update(client_keys=[os.path.expanduser(k) for k in target.client_keys], agent_path=None)
    if target.password:
        kwargs.update(password=target.password)
    kwargs.update(gss_auth=target.gss, gss_kex=False)
    if target.gss:
        kwargs.update(gss_host=target.host, client_keys=None, agent_path=None, password=None)
        try:
            import gssapi  # noqa: F401
        except ImportError:
            raise LoginRejected(
                "GSSAPI (Kerberos) SSH logins need the gssapi package: pip install 'eg-ssh[gssapi]' "
                "(it builds against MIT Kerberos: apt-get install libkrb5-dev)"
            ) from None
    try:
        if not await asyncio.to_thread(os.path.isfile, known_hosts):
            raise LoginRejected(
                f"the known_hosts file {target.known_hosts!r} does not exist: host keys cannot be verified "
                "(set SSHResourceManager.known_hosts or EG_SSH_KNOWN_HOSTS)"
            )
        return await asyncssh.SSHClientConnectionOptions.construct(**kwargs)
    except (OSError, ValueError, asyncssh.Error) as exc:
        # Messages name files, never key material (asyncssh reports parse errors without content).
        raise LoginRejected(f"cannot use the SSH settings for {target}: {_no_secrets(exc)}") from None


def _keys_text(target: Target) -> str:
    if target.gss:
        return "the Kerberos tickets (GSSAPI) of the gateway's credential cache (KRB5CCNAME)"
    if target.password:
        return ("the client key(s) " + ", ".join(repr(k) for k in target.client_keys) + " or " if target.client_keys else "") + "the password (remote_password)"
    if target.client_keys:
        return "the client key(s) " + ", ".join(repr(k) for k in target.client_keys)
    return "the gateway user's default SSH keys (ssh-agent, ~/.ssh/id_*)"


def _no_secrets(exc: BaseException) -> str:
    if isinstance(exc, OSError):
        return f"{exc.strerror or type(exc).__name__}: {exc.filename or ''}".strip()
    return f"{type(exc).__name__}: {str(exc)[:200]}"


pool = Pool()
