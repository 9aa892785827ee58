"""Choosing a remote host: Enterprise Gateway's two policies, an explicit request, down hosts.

One :data:`hosts` table per gateway process. It holds the balancer's own state (the round-robin
position, which kernels each host runs, hosts recently seen down); per-kernel facts stay in
``kernel.state``.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field

from eg_core import BadRequest


@dataclass
class HostTable:
    """Kernel counts, round-robin positions and recent failures, per host entry."""

    kernels: dict[str, set[str]] = field(default_factory=dict)
    _next: dict[tuple[str, ...], int] = field(default_factory=dict)
    _down: dict[str, tuple[float, str]] = field(default_factory=dict)

    def candidates(
        self, hosts: tuple[str, ...], algorithm: str, requested: str | None = None, previous: str | None = None
    ) -> list[str]:
        """The hosts to try for one launch, best first. Called once per launch.

        ``requested`` (the request's ``KERNEL_REMOTE_HOST``) must be one of ``hosts`` and is the
        only candidate. Otherwise ``previous`` (the host of a kernel being restarted) comes first,
        then the policy's order; hosts that failed within their retry interval go last, so a
        launch still tries them when nothing else answers.
        """
        if requested:
            if requested not in hosts:
                raise BadRequest(
                    f"KERNEL_REMOTE_HOST {requested[:100]!r} is not one of the remote hosts configured for this kernelspec"
                )
            return [requested]
        if algorithm == "least-connection":
            order = sorted(hosts, key=lambda h: (len(self.kernels.get(h, ())), hosts.index(h)))
        else:
            start = self._next.get(hosts, 0) % len(hosts)
            self._next[hosts] = start + 1
            order = list(hosts[start:] + hosts[:start])
        if previous in order:
            order.remove(previous)
            order.insert(0, previous)
        now = time.monotonic()
        return [h for h in order if not self._is_down(h, now)] + [h for h in order if self._is_down(h, now)]

    def _is_down(self, host: str, now: float) -> bool:
        until = self._down.get(host)
        return until is not None and until[0] > now

    def mark_down(self, host: str, reason: str, retry_after: float) -> None:
        """Record that ``host`` could not be reached; called when a connection attempt fails."""
        self._down[host] = (time.monotonic() + retry_after, reason)

    def mark_up(self, host: str) -> None:
        self._down.pop(host, None)

    def assign(self, host: str, kernel_id: str) -> None:
        """Count ``kernel_id`` on ``host``; called when its launcher starts there (or on adoption)."""
        self.release(kernel_id)
        self.kernels.setdefault(host, set()).add(kernel_id)

    def release(self, kernel_id: str) -> None:
        """Stop counting ``kernel_id``; called at cleanup."""
        for ids in self.kernels.values():
            ids.discard(kernel_id)


hosts = HostTable()
