"""Kernel lifecycle events as structured log lines: one JSON object per event on ``eg.events``.

A line is :func:`eg_core.lifecycle.event_record`: the time, the event, the kernel id, its
kernelspec, resource manager and user, and the event's details, never the kernel's environment,
so tokens passed to a kernel stay out of the logs.
"""

from __future__ import annotations

import json
import logging
from typing import Any

from eg_core.lifecycle import event_record

log = logging.getLogger("eg.events")


def log_event(kernel: Any, event: str, details: dict[str, Any]) -> None:
    """Write one event as one line of JSON at INFO (the operator's line about a failure or a
    death is the core's, at ERROR or WARNING)."""
    if not log.isEnabledFor(logging.INFO):
        return
    log.info(json.dumps(event_record(kernel, event, details), separators=(",", ":"), default=str))
