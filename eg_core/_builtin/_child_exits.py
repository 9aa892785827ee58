"""The exits of the gateway's own child processes, from SIGCHLD: no descriptor per child.

A gateway holding hundreds of idle local kernels would otherwise hold a pidfd for each. On
every SIGCHLD, each watched child is asked with ``waitid(..., WNOWAIT)`` whether it ended,
which leaves it for its ``Popen`` to reap. Only for children: another process's exit is not
signalled to us (adopted kernels keep their pidfd).
"""

from __future__ import annotations

import asyncio
import os
import signal
import weakref
from typing import Callable

_watchers: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, _ChildExits] = weakref.WeakKeyDictionary()


class _ChildExits:
    def __init__(self, loop: asyncio.AbstractEventLoop):
        loop.add_signal_handler(signal.SIGCHLD, self._check_all)
        self.waiting: dict[int, Callable[[], None]] = {}

    def watch(self, pid: int, on_exit: Callable[[], None]) -> None:
        self.waiting[pid] = on_exit
        self._check(pid)  # it may have ended before it was watched

    def _check_all(self) -> None:
        for pid in list(self.waiting):
            self._check(pid)

    def _check(self, pid: int) -> None:
        try:
            ended = os.waitid(os.P_PID, pid, os.WEXITED | os.WNOHANG | os.WNOWAIT) is not None
        except ChildProcessError:  # already reaped
            ended = True
        if ended:
            self.waiting.pop(pid)()


def watch_child(pid: int, on_exit: Callable[[], None]) -> bool:
    """Call ``on_exit`` (on the running loop) once child ``pid`` has ended, not reaped. False
    if SIGCHLD cannot be handled here (a loop outside the main thread): watch it another way."""
    loop = asyncio.get_running_loop()
    watcher = _watchers.get(loop)
    if watcher is None:
        try:
            watcher = _watchers[loop] = _ChildExits(loop)
        except (RuntimeError, ValueError):
            return False
    watcher.watch(pid, on_exit)
    return True
