"""The gateway's log: its format (text, or one JSON object per line), and lines about a kernel.

Every line about a kernel starts with ``[kernel <id>]`` (:attr:`KernelContext.log` adds it); in
JSON the id is also the ``kernel_id`` field. A failed launch is logged once, at ERROR (a refusal
by a policy: WARNING), by the core; the access log then stays at DEBUG for that request.
"""

from __future__ import annotations

import json
import logging
import re
import time

from .errors import ConfigError

JSON = "json"
_KERNEL_PREFIX = re.compile(r"\[kernel ([0-9a-fA-F-]{8,36})\] ")


class JsonFormatter(logging.Formatter):
    """``{"time", "level", "logger", "message", "kernel_id"?, "exception"?}`` per line."""

    def format(self, record: logging.LogRecord) -> str:
        message = record.getMessage()
        entry = {
            "time": time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(record.created)) + f".{int(record.msecs):03d}Z",
            "level": record.levelname,
            "logger": record.name,
            "message": message,
        }
        kernel_id = getattr(record, "kernel_id", None)
        match = _KERNEL_PREFIX.match(message)
        if kernel_id is None and match:
            kernel_id = match.group(1)
        if kernel_id:
            entry["kernel_id"] = kernel_id
        if record.exc_info:
            entry["exception"] = self.formatException(record.exc_info)
        return json.dumps(entry, default=str)


def one_line(text: str) -> str:
    """Text that spans lines (a kernel's last output...) as one log line."""
    return " | ".join(line.strip() for line in str(text).splitlines() if line.strip())


EG_LOG_LEVEL_NAMES = {"SSH": "ssh", "DOCKER": "docker", "KUBERNETES": "k8s", "YARN": "yarn"}
_LEVEL_ENV = re.compile(r"EG_([A-Z0-9_]+)_LOG_LEVEL\Z")


def apply_log_levels(gateway) -> None:
    """Set ``Gateway.log_levels`` (and ``EG_<NAME>_LOG_LEVEL``) on the ``eg.<name>`` loggers; the
    handlers pass the lowest level, each logger filters its own."""
    import os

    levels = {}
    for var, value in os.environ.items():
        match = _LEVEL_ENV.match(var)
        if match and value.strip():
            levels[EG_LOG_LEVEL_NAMES.get(match.group(1), match.group(1).lower())] = value.strip()
    levels.update(gateway.log_levels)
    lowest = logging.getLogger("eg").getEffectiveLevel()
    for name, value in levels.items():
        level = logging.getLevelName(str(value).upper()) if not str(value).isdigit() else int(value)
        if not isinstance(level, int):
            raise ConfigError(f"log level {value!r} for {name!r} is not a level: use DEBUG, INFO, WARNING or ERROR")
        logging.getLogger(f"eg.{name}").setLevel(level)
        lowest = min(lowest, level)
    for handler in logging.getLogger("eg").handlers:
        handler.setLevel(min(handler.level or lowest, lowest))


class KernelLog(logging.LoggerAdapter):
    """Lines about one kernel: ``[kernel <id>]`` first, and ``kernel_id`` on the record."""

    def process(self, msg, kwargs):
        kwargs.setdefault("extra", {})["kernel_id"] = self.extra["kernel_id"]
        return f"[kernel {self.extra['kernel_id']}] {msg}", kwargs


class KernelManagerLog(KernelLog):
    """jupyter_client's log for one kernel: the traceback it logs when a start fails goes to
    DEBUG, since the gateway logs that failure once itself."""

    def exception(self, msg, *args, exc_info=True, **kwargs):
        self.debug(msg, *args, exc_info=exc_info, **kwargs)


__all__ = ["JsonFormatter", "KernelLog", "KernelManagerLog", "one_line"]
