"""Identifying local processes across gateway restarts (Linux ``/proc``).

A pid alone names a process only until it is reused; with its start time it names exactly one.
The gateway records both for itself (the owner of its session records) and the local resource
manager for each kernel.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import os
import socket

PR_SET_PDEATHSIG = 1
PR_SET_DUMPABLE = 4
prctl = ctypes.CDLL(ctypes.util.find_library("c"), use_errno=True).prctl  # Linux prctl(2)


def start_time(pid: int) -> int | None:
    """The process's start time (clock ticks since boot), or None when it does not exist."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as f:
            return int(f.read().rsplit(b")", 1)[1].split()[19])
    except (OSError, ValueError, IndexError):
        return None


def alive(pid: int | None, started: int | None) -> bool:
    """Whether the process ``pid`` that started at ``started`` still runs (not a zombie)."""
    if not pid:
        return False
    now = start_time(pid)
    if now is None or (started is not None and now != started):
        return False
    try:
        with open(f"/proc/{pid}/stat", "rb") as f:
            return f.read().rsplit(b")", 1)[1].split()[0] != b"Z"
    except OSError:
        return False


def identity() -> dict[str, object]:
    """This process: host name, pid and start time."""
    pid = os.getpid()
    return {"host": socket.gethostname(), "pid": pid, "started": start_time(pid)}


def is_running_here(owner: object) -> bool:
    """Whether ``owner`` (an :func:`identity`) is a live process of this host other than us."""
    if not isinstance(owner, dict) or owner.get("host") != socket.gethostname():
        return False
    pid = owner.get("pid")
    if not isinstance(pid, int) or pid == os.getpid():
        return False
    started = owner.get("started")
    return alive(pid, started if isinstance(started, int) else None)


def with_env(name: str, value: str) -> list[int]:
    """Pids of this user's processes whose environment has ``name=value``."""
    wanted = f"{name}={value}".encode()
    uid = os.getuid()
    found = []
    for entry in os.scandir("/proc"):
        if not entry.name.isdigit():
            continue
        try:
            if entry.stat().st_uid != uid:
                continue
            with open(f"/proc/{entry.name}/environ", "rb") as f:
                if wanted in f.read().split(b"\0"):
                    found.append(int(entry.name))
        except OSError:
            continue
    return found


def make_undumpable() -> bool:
    """Make this process non-dumpable: no core dumps, and its ``/proc/<pid>/environ``, memory
    and file descriptors become unreadable to other processes of the same user (e.g. local
    kernels, which would otherwise read the gateway's token there). Returns whether it worked."""
    return prctl(PR_SET_DUMPABLE, 0, 0, 0, 0) == 0


# -- kernels as process sessions, here and (the same code, as a script) on remote hosts --------
# The two functions below use the standard library only, no annotations, and run on Python 3.6:
# eg-ssh runs their source (:func:`script`) on remote hosts through its SSH connection.


def kernel_sessions():
    """This user's session leaders whose environment has ``KERNEL_ID`` (kernels started by a
    resource manager in their own session): ``[{"pid", "started", "marks"}]``, ``marks`` being
    the ownership variables of the environment they started with (``KERNEL_ID``,
    ``EG_GATEWAY_ID``, ``EG_GATEWAY_OWNER``: see :mod:`eg_core.orphans`)."""
    import os

    names = (b"KERNEL_ID", b"EG_GATEWAY_ID", b"EG_GATEWAY_OWNER")
    uid = os.getuid()
    found = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        pid = int(entry)
        try:
            if os.stat("/proc/" + entry).st_uid != uid or os.getsid(pid) != pid:
                continue
            with open("/proc/%d/stat" % pid, "rb") as f:
                stat = f.read().rsplit(b")", 1)[1].split()
            with open("/proc/%d/environ" % pid, "rb") as f:
                environ = f.read().split(b"\0")
        except (OSError, IndexError):
            continue
        if stat[0] == b"Z":
            continue
        marks = {}
        for item in environ:
            name, _, value = item.partition(b"=")
            if name in names:
                marks[name.decode()] = value.decode("utf-8", "replace")
        if "KERNEL_ID" in marks:
            found.append({"pid": pid, "started": int(stat[19]), "marks": marks})
    return found


def end_session(pid, started):
    """SIGKILL the process group of session leader ``pid`` if it is still the process that
    started at ``started`` (a pid alone may have been reused). Returns whether it was there."""
    import os
    import signal

    try:
        with open("/proc/%d/stat" % pid, "rb") as f:
            if int(f.read().rsplit(b")", 1)[1].split()[19]) != started:
                return False
        os.killpg(pid, signal.SIGKILL)
    except (OSError, ValueError, IndexError):
        return False
    return True


def script(function, *args: int) -> str:
    """A Python program that runs ``function`` (:func:`kernel_sessions` or :func:`end_session`)
    with the integer ``args`` and prints its result as JSON, for ``python3 -c`` on another host.
    Only eg's own code and integers go into it."""
    import inspect
    import textwrap

    call = f"{function.__name__}({', '.join(str(int(a)) for a in args)})"
    return f"{textwrap.dedent(inspect.getsource(function))}\nimport json\nprint(json.dumps({call}))\n"
