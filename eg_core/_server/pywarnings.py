"""Python warnings as lines of eg's log, never raw text on the operator's console.

A library's warning (a ``DeprecationWarning`` of a dependency, say) is logged once, at DEBUG,
on ``eg.warnings``; a warning raised from eg's own code (the core or a plugin) concerns how eg
is set up and is logged once at WARNING. Either way it goes through eg's log handlers, so it has
the configured format (text or JSON) like every other line.

The ``eg-gateway`` command calls :func:`capture` before it imports anything else; records made
before the log is configured wait (at most :data:`EARLY_LIMIT`) until the gateway calls
:func:`release`.
"""

from __future__ import annotations

import logging
import os
import warnings
from typing import Iterable

log = logging.getLogger("eg.warnings")
EARLY_LIMIT = 200
_OWN_DIRS: list[str] = [os.path.dirname(os.path.dirname(os.path.abspath(__file__))) + os.sep]  # eg_core/
_seen: set[tuple[type, str]] = set()


class _Early(logging.Handler):
    """Holds the records made before eg's log handlers exist."""

    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.records: list[logging.LogRecord] = []

    def emit(self, record: logging.LogRecord) -> None:
        if len(self.records) < EARLY_LIMIT:
            self.records.append(record)


_early: _Early | None = None


def _is_own(filename: str) -> bool:
    path = os.path.abspath(filename)
    return any(path.startswith(own) for own in _OWN_DIRS)


def _showwarning(message, category, filename, lineno, file=None, line=None) -> None:
    key = (category, str(message))
    if key in _seen:
        return
    _seen.add(key)
    level = logging.WARNING if _is_own(filename) else logging.DEBUG
    log.log(level, "%s: %s (%s:%s)", category.__name__, message, filename, lineno)


def capture() -> None:
    """Route every Python warning shown from now on to ``eg.warnings`` (once per category and
    text); hold the records until :func:`release`."""
    global _early
    logging.captureWarnings(False)
    warnings.showwarning = _showwarning
    if _early is None:
        _early = _Early()
        log.addHandler(_early)
        log.propagate = False
        log.setLevel(logging.DEBUG)  # held whatever their level; release() filters them


def release(own_packages: Iterable[str] = ()) -> None:
    """Called once eg's log handlers are set up: hand the held records to them (those their
    levels let through) and log later warnings directly. ``own_packages`` are the directories
    of the plugins' packages: warnings raised from there count as eg's own."""
    global _early
    for directory in own_packages:
        _OWN_DIRS.append(os.path.abspath(directory) + os.sep)
    if _early is None:
        return
    held, _early = _early, None
    log.removeHandler(held)
    log.propagate = True
    log.setLevel(logging.NOTSET)
    for record in held.records:
        if log.isEnabledFor(record.levelno):
            log.handle(record)


__all__ = ["capture", "release"]
