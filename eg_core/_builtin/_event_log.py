"""Kernel lifecycle events as structured log lines: one JSON object per event on ``eg.events``.

A line holds the time, the event, the kernel id, its kernelspec, resource manager and user, and
the event's details (phase durations, the failed phase and its error, an exit status, a cull
reason...). It never holds the kernel's environment: details named ``env``/``environment`` or
after one of the kernel's variables are dropped, and a variable's value (8 characters or more)
found in any text is replaced by ``***``, so tokens passed to a kernel stay out of the logs.
"""

from __future__ import annotations

import json
import logging
import time
from typing import Any

log = logging.getLogger("eg.events")
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


def event_record(kernel: Any, event: str, details: dict[str, Any], now: float | None = None) -> dict[str, Any]:
    """The JSON-able record of one event (what :func:`log_event` writes)."""
    kernel_id = kernel.kernel_id
    user = kernel.user or ""
    scrub = _Scrubber(kernel.env or {}, {kernel_id, user, kernel.kernel_name})
    return {
        "time": _timestamp(time.time() if now is None else now),
        "event": event,
        "kernel_id": kernel_id,
        "kernelspec": kernel.kernel_name,
        "resource_manager": kernel.resource_manager,
        "user": user,
        "details": scrub(dict(details or {})),
    }


def log_event(kernel: Any, event: str, details: dict[str, Any]) -> None:
    """Write one event as one line of JSON at INFO (the operator's line about a failure or a
    death is the core's, at ERROR or WARNING)."""
    if not log.isEnabledFor(logging.INFO):
        return
    log.info(json.dumps(event_record(kernel, event, details), separators=(",", ":"), default=str))
