"""Errors that the API turns into 4xx/5xx JSON answers ``{"reason", "message"}``.

Plugins raise these from hooks; the core maps ``status`` and ``reason`` to the HTTP answer, so a
plugin never needs to import tornado.
"""

from __future__ import annotations


class EGError(Exception):
    """Base class: an error with an HTTP status, a short reason and a message saying what to fix."""

    status = 500
    reason = "Gateway Error"
    logged = False  # set once the gateway's log has a line about it (the access log then stays at DEBUG)

    def __init__(self, message: str = "", *, status: int | None = None, reason: str | None = None):
        super().__init__(message)
        self.message = message
        if status is not None:
            self.status = status
        if reason is not None:
            self.reason = reason


class BadRequest(EGError):
    """The request is malformed or carries invalid values (400)."""

    status = 400
    reason = "Bad Request"


class NotFound(EGError):
    """An unknown kernel, kernelspec, session or resource (404)."""

    status = 404
    reason = "Not Found"


class LaunchRefused(EGError):
    """A policy refused the launch (403 by default; 429 for rate or capacity limits)."""

    status = 403
    reason = "Forbidden"


class LaunchFailed(EGError):
    """A kernel launch failed in ``phase``; whatever it created has been cleaned up.

    Phases: ``before_launch``, ``launch_process``, ``confirm_startup``, ``connection_info``,
    ``kernel_info``. The status is 502 (the kernel, our upstream, failed) or 504 on a timeout.
    """

    status = 502
    reason = "Kernel Launch Failed"
    backend_log: list[str] = []  # the tail of eg_backend_log, taken before the launch's cleanup

    def __init__(self, phase: str, message: str, *, timeout: bool = False):
        self.phase = phase
        if timeout:
            super().__init__(f"{phase}: {message}", status=504, reason="Kernel Launch Timed Out")
        else:
            super().__init__(f"{phase}: {message}")



class ConfigError(Exception):
    """A configuration mistake; its text is one line naming the file, option or variable and
    the fix (one line per mistake when several are found at once). ``eg-gateway`` prints each
    line and exits non-zero."""


__all__ = ["EGError", "BadRequest", "NotFound", "LaunchRefused", "LaunchFailed", "ConfigError"]
