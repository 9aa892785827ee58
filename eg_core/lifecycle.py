"""The names of kernel lifecycle events and launch phases, in one place.

``Event`` names are what ``eg_kernel_event`` receives as ``event``; ``Phase`` names are what a
:class:`eg_core.LaunchFailed` carries as ``phase`` and what the ``launched`` event's
``details["phases"]`` times. Both are plain strings (compare with ``==``).
"""

from __future__ import annotations


class Event:
    """Kernel lifecycle events, in the order a kernel meets them."""

    REQUESTED = "requested"  # a launch was asked for (details: {})
    LAUNCHED = "launched"  # the kernel answered kernel_info (details: duration, phases)
    LAUNCH_FAILED = "launch_failed"  # details: phase, error
    ADOPTED = "adopted"  # a kernel launched by an earlier gateway process was re-attached
    POOL_CLAIMED = "pool_claimed"  # a warm-pool kernel was handed to a request (details: request_id)
    POOL_MISS = "pool_miss"  # a request found no warm-pool kernel (details: reason)
    CONNECTED = "connected"  # a websocket client connected
    DISCONNECTED = "disconnected"  # a websocket client left
    INTERRUPTED = "interrupted"
    RESTARTED = "restarted"
    DIED = "died"  # the kernel ended on its own (details: status, why)
    CULLED = "culled"  # the culler is about to shut it down (details: reason, idle_seconds...)
    SHUT_DOWN = "shut_down"  # details: reason
    PROGRESS = "progress"  # a resource manager's launch step (kernel.progress(...))

    ALL = (
        REQUESTED, LAUNCHED, LAUNCH_FAILED, ADOPTED, POOL_CLAIMED, POOL_MISS, CONNECTED, DISCONNECTED,
        INTERRUPTED, RESTARTED, DIED, CULLED, SHUT_DOWN, PROGRESS,
    )


class Phase:
    """Launch phases, in the order the launch sequence runs them (see
    :func:`eg_core._runtime.launch.launch_sequence`). A resource manager may fail a step of its own
    with another name (eg-docker's ``image_pull``); a restart that fails outside these phases
    is reported as ``restart``. ``tests/test_drift.py`` checks the code and docs against these."""

    BEFORE_LAUNCH = "before_launch"  # policies: eg_before_launch
    LAUNCH_PROCESS = "launch_process"  # eg_launch_process
    CONFIRM_STARTUP = "confirm_startup"  # eg_confirm_startup
    CONNECTION_INFO = "connection_info"  # eg_connection_info
    KERNEL_INFO = "kernel_info"  # the core waits for kernel_info_reply

    ALL = (BEFORE_LAUNCH, LAUNCH_PROCESS, CONFIRM_STARTUP, CONNECTION_INFO, KERNEL_INFO)


__all__ = ["Event", "Phase"]
