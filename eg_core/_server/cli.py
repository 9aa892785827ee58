"""The ``eg-gateway`` command. Python warnings are routed to eg's log (:mod:`eg_core._server.pywarnings`)
before anything else is imported, so a dependency's warning at import is a log line too."""

from __future__ import annotations


def main(argv: list[str] | None = None) -> None:
    from . import pywarnings

    pywarnings.capture()
    from .app import main as run

    run(argv)
