"""The names of kernel lifecycle events and launch phases, in one place.

``Event`` names are what ``eg_kernel_event`` receives as ``event``; ``Phase`` names are what a
:class:`eg_core.LaunchFailed` carries as ``phase`` and what the ``launched`` event's
``details["phases"]`` times. Both are plain strings (compare with ``==``).
:func:`event_record` is one event as JSON-able data with the kernel's environment kept out (the
``events`` log lines and ``GET /api/kernels/{id}/events`` show it).
"""

from __future__ import annotations

import time
from typing import Any


class Event:
    """Kernel lifecycle events, in the order a kernel meets them."""

    REQUESTED = "requested"  # a launch was asked for (details: {})
    LAUNCHED = "launched"  # the kernel answered kernel_info (details: duration, phases)
    LAUNCH_FAILED = "launch_failed"  # details: phase, error
    ADOPTED = "adopted"  # a kernel launched by an earlier gateway process was re-attached
    POOL_CLAIMED = "pool_claimed"  # a warm-pool kernel was handed to a request (details: request_id)
    POOL_MISS = "pool_miss"  # a request found no warm-pool kernel (details: reason)
    CONNECTED = "connected"  # a websocket client connected
    DISCONNECTED = "disconnected"  # a websocket client left
    INTERRUPTED = "interrupted"
    RESTARTED = "restarted"
    DIED = "died"  # the kernel ended on its own (details: status, why)
    CULLED = "culled"  # the culler is about to shut it down (details: reason, idle_seconds...)
    SHUT_DOWN = "shut_down"  # details: reason
    PROGRESS = "progress"  # a resource manager's launch step (kernel.progress(...))

    ALL = (
        REQUESTED, LAUNCHED, LAUNCH_FAILED, ADOPTED, POOL_CLAIMED, POOL_MISS, CONNECTED, DISCONNECTED,
        INTERRUPTED, RESTARTED, DIED, CULLED, SHUT_DOWN, PROGRESS,
    )


class Phase:
    """Launch phases, in the order the launch sequence runs them (see
    :func:`eg_core._runtime.launch.launch_sequence`). A resource manager may fail a step of its own
    with another name (eg-docker's ``image_pull``); a restart that fails outside these phases
    is reported as ``restart``. ``tests/test_drift.py`` checks the code and docs against these."""

    BEFORE_LAUNCH = "before_launch"  # policies: eg_before_launch
    LAUNCH_PROCESS = "launch_process"  # eg_launch_process
    CONFIRM_STARTUP = "confirm_startup"  # eg_confirm_startup
    CONNECTION_INFO = "connection_info"  # eg_connection_info
    KERNEL_INFO = "kernel_info"  # the core waits for kernel_info_reply

    ALL = (BEFORE_LAUNCH, LAUNCH_PROCESS, CONFIRM_STARTUP, CONNECTION_INFO, KERNEL_INFO)


REDACTED = "***"
MIN_SECRET_LENGTH = 8
_DROPPED_KEYS = frozenset(("env", "environment", "kernel_env"))


def _timestamp(now: float) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(now)) + f".{int(now % 1 * 1000):03d}Z"


class _Scrubber:
    """Removes a kernel's environment (names as keys, values anywhere) from event details."""

    def __init__(self, env: dict[str, str], keep: set[str]):
        self.names = set(env)
        values = {v for v in env.values() if isinstance(v, str) and len(v) >= MIN_SECRET_LENGTH}
        # the longest first, so a value containing another is replaced whole
        self.values = sorted(values - keep, key=len, reverse=True)

    def text(self, value: str) -> str:
        for secret in self.values:
            if secret in value:
                value = value.replace(secret, REDACTED)
        return value

    def __call__(self, value: Any) -> Any:
        if isinstance(value, str):
            return self.text(value) if self.values else value
        if isinstance(value, dict):
            return {
                str(k): self(v)
                for k, v in value.items()
                if str(k) not in _DROPPED_KEYS and str(k) not in self.names
            }
        if isinstance(value, (list, tuple, set, frozenset)):
            return [self(v) for v in value]
        if value is None or isinstance(value, (bool, int, float)):
            return value
        return self.text(str(value))


def scrubbed(kernel: Any, value: Any) -> Any:
    """``value`` (text, or JSON-able data) with ``kernel``'s environment kept out, as
    :func:`event_record` keeps it out of an event's details (a backend's log lines too)."""
    return _Scrubber(kernel.env or {}, {kernel.kernel_id, kernel.user or "", kernel.kernel_name})(value)


def event_record(kernel: Any, event: str, details: dict[str, Any], now: float | None = None) -> dict[str, Any]:
    """The JSON-able record of one event: time, event, kernel id, kernelspec, resource manager,
    user and details. Details named ``env``/``environment`` or after one of the kernel's variables
    are dropped, and a variable's value (8 characters or more) found in any text is ``***``."""
    kernel_id = kernel.kernel_id
    user = kernel.user or ""
    return {
        "time": _timestamp(time.time() if now is None else now),
        "event": event,
        "kernel_id": kernel_id,
        "kernelspec": kernel.kernel_name,
        "resource_manager": kernel.resource_manager,
        "user": user,
        "details": scrubbed(kernel, dict(details or {})),
    }


__all__ = ["Event", "Phase", "event_record", "scrubbed"]
