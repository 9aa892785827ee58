"""Secrets never reach the log: tokens in URLs (``?token=...``) and in ``Authorization`` values.

:class:`RedactSecrets` is a ``logging.Filter`` put on every handler the gateway logs through
(eg's own loggers, tornado's access, application and general loggers, asyncio's), so it also covers
what a library prints about a request (tornado's uncaught-exception lines show the whole URI).
"""

from __future__ import annotations

import logging
import re

REDACTED = "[secret]"
_PATTERNS = (
    re.compile(r"(?i)(\btoken=)[^&\s'\"<>]+"),
    re.compile(r"(?i)(\b(?:token|bearer|basic)\s+)(?!<)[A-Za-z0-9._~+/=-]{8,}"),
)


def redact(text: str) -> str:
    for pattern in _PATTERNS:
        text = pattern.sub(lambda m: m.group(1) + REDACTED, text)
    return text


class RedactSecrets(logging.Filter):
    """Rewrite a record's message (and its traceback text) with the secrets replaced."""

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        clean = redact(message)
        if clean != message:
            record.msg, record.args = clean, None
        if record.exc_info and not record.exc_text:
            record.exc_text = logging.Formatter().formatException(record.exc_info)
        if record.exc_text:
            record.exc_text = redact(record.exc_text)
        return True


def install(handlers: list[logging.Handler]) -> None:
    """Route tornado's loggers to ``handlers`` and filter secrets out of everything they write."""
    for handler in handlers:
        if not any(isinstance(f, RedactSecrets) for f in handler.filters):
            handler.addFilter(RedactSecrets())
    for name in ("tornado.access", "tornado.application", "tornado.general", "asyncio"):
        logger = logging.getLogger(name)
        logger.handlers = list(handlers)
        logger.propagate = False
