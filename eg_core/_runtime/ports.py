"""Port ranges (``"lower..upper"``, Enterprise Gateway's format) and picking free ports in them."""

from __future__ import annotations

import random
import socket
from dataclasses import dataclass

from .errors import BadRequest


@dataclass(frozen=True)
class PortRange:
    lower: int
    upper: int

    @classmethod
    def parse(cls, text: str | None, *, min_size: int = 0) -> "PortRange | None":
        """Parse ``"lower..upper"``; ``None``, ``""`` and ``"0..0"`` mean no range.

        Raises :class:`BadRequest` saying what is wrong: the format, bounds outside 1024-65535,
        or a range smaller than ``min_size`` ports.
        """
        if not text or text.strip() in ("0..0", "0"):
            return None
        lo, sep, hi = text.strip().partition("..")
        if not sep or not lo.isdigit() or not hi.isdigit():
            raise BadRequest(f"port range {text!r} must look like 'lower..upper', e.g. '40000..41000'")
        rng = cls(int(lo), int(hi))
        if not (1024 <= rng.lower < rng.upper <= 65535):
            raise BadRequest(
                f"port range {text!r} must satisfy 1024 <= lower < upper <= 65535"
            )
        if rng.size < min_size:
            raise BadRequest(f"port range {text!r} holds {rng.size} ports; at least {min_size} are required")
        return rng

    @property
    def size(self) -> int:
        return self.upper - self.lower + 1

    def __str__(self) -> str:
        return f"{self.lower}..{self.upper}"


# Ports handed to kernels of this process and not yet released: concurrent launches must not get
# the same port between our bind test and the kernel's own bind.
_handed_out: set[int] = set()


def release_ports(ports) -> None:
    """Give ports from :func:`free_ports` back (the kernel ended for good, or never started)."""
    _handed_out.difference_update(ports)


def free_ports(count: int, host: str = "127.0.0.1", port_range: PortRange | None = None) -> list[int]:
    """Pick ``count`` distinct ports that can be bound on ``host`` now (in ``port_range`` if set)
    and that no other kernel of this process holds; release them with :func:`release_ports`.

    The ports are tested by binding and released at once; the caller's process binds them next.
    """
    chosen: list[int] = []
    sockets: list[socket.socket] = []
    attempts = 0
    try:
        while len(chosen) < count:
            attempts += 1
            if port_range and attempts > 50 * count:
                raise BadRequest(f"no {count} free ports left in port range {port_range}")
            port = random.randint(port_range.lower, port_range.upper) if port_range else 0
            if port and port in chosen:
                continue
            sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            try:
                sock.bind((host, port))
            except OSError:
                sock.close()
                continue
            sockets.append(sock)
            port = sock.getsockname()[1]
            if port not in _handed_out:
                chosen.append(port)
    finally:
        for sock in sockets:
            sock.close()
    _handed_out.update(chosen)
    return chosen
