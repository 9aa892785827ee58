"""The ``events`` plugin: every kernel lifecycle event as one JSON log line on ``eg.events``.

A builtin policy written exactly as a third-party one: one hook implementation over
:mod:`eg_core._builtin._event_log`. A line looks like (after the log prefix)::

    {"time":"2026-01-01T12:00:00.123Z","event":"launched","kernel_id":"7d6c...","kernelspec":"python3",
     "resource_manager":"local","user":"alice","details":{"duration":0.93,"phases":{"before_launch":0.0001,...}}}

Events: ``requested``, ``launched``, ``launch_failed``, ``connected``, ``disconnected``,
``interrupted``, ``restarted``, ``died``, ``culled``, ``shut_down``, and any a plugin emits. The
kernel's environment is never written. Turn the lines off with ``--log-level`` above INFO, or
route them with the logging config of the ``eg.events`` logger.
"""

from __future__ import annotations

from eg_core import hookimpl

from ._event_log import log_event


@hookimpl
def eg_kernel_event(kernel, event, details):
    log_event(kernel, event, details)
