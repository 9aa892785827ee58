"""One YARN kernel's life, one function per resource-manager hook (called from :mod:`eg_yarn.plugin`).

``kernel.state`` (persisted, so a restarted gateway adopts the kernel by application id) holds
``app_id``, ``submission``, ``launch`` (the checked settings), ``am_host``, the last ``app_state``
and ``diagnostics``, plus what :mod:`eg_core.remote` records (``comm_ip``, ``comm_port``,
``launch_key``). ``kernel.handles`` holds the RM client and, in spark-submit mode, the submit
process. Waiting backs off: fast while the application starts (from 0.1 s up to
``startup_poll_max``); once it runs, :mod:`eg_yarn._watch` asks about every running kernel of
the RM in one query (backing off up to ``watch_interval``), at once after a kill or shutdown.
"""

from __future__ import annotations

import asyncio
import dataclasses
import re
import signal
import time

from eg_core import BadRequest, EGError, KernelContext, LaunchFailed, remote

from . import _submit, _watch
from ._capacity import check_room
from ._rm import FINAL_STATES, RMClient, RMError, RMUnavailable
from ._settings import Launch, resolve, settings

# Request values a shell may meet (run.sh eval's SPARK_OPTS; YARN writes the AM environment into
# a launch script): refused beyond what the core refuses ('$', backticks, line breaks).
_SHELL_UNSAFE = re.compile(r"[;&|<>()\"'\\]")
_CORE_VARIABLES = {"KERNEL_ID", "KERNEL_GATEWAY", "KERNEL_USERNAME", "KERNEL_LANGUAGE"}
_CLOCK_SKEW_MS = 300_000


def _launch(kernel: KernelContext) -> Launch:
    launch = kernel.state["launch"]
    return Launch(**{**launch, "endpoints": tuple(launch["endpoints"])})


def _client(kernel: KernelContext) -> RMClient:
    rm = kernel.handles.get("rm")
    if rm is None:
        rm = kernel.handles["rm"] = RMClient.shared(_launch(kernel))
    return rm


def _wake(kernel: KernelContext) -> None:
    """Make the watch of running kernels ask the RM at once (a kill or shutdown was just sent)."""
    if kernel.state.get("launch"):
        _watch.wake(_launch(kernel))


def _check_env(kernel: KernelContext) -> None:
    for name, value in kernel.env.items():
        if name.startswith("KERNEL_") and name not in _CORE_VARIABLES and _SHELL_UNSAFE.search(value):
            raise BadRequest(f"env value of {name} contains shell metacharacters (;&|<>()\"'\\), which YARN kernels do not accept")


async def launch_process(kernel: KernelContext, cmd: list[str]) -> None:
    """Check the settings and the queue, then submit; see ``eg_launch_process``."""
    if kernel.state.get("app_id"):  # a relaunch: the earlier application is never this one
        kernel.state["stale_apps"] = [kernel.state["app_id"], *kernel.state.get("stale_apps", [])][:8]
    for stale in ("app_id", "am_host", "app_state", "diagnostics", "comm_ip", "comm_port", "submit_pid", "phase"):
        kernel.state.pop(stale, None)
    kernel.handles.pop("rm", None)
    _check_env(kernel)
    launch = resolve(kernel)
    # The RM's clock decides startedTime: allow for skew (the kernel id picks the application).
    kernel.state.update(launch=dataclasses.asdict(launch), submission=launch.submission, started_ms=int(time.time() * 1000) - _CLOCK_SKEW_MS)
    rm = _client(kernel)
    s = settings()
    start = time.monotonic()
    if s.check_queue:
        await check_room(rm, launch.queue, launch.node_label, s.partition_threshold)
    launch_key = await remote.expect_callback(kernel, legacy=launch.legacy_launcher)
    kernel.state["phase"] = "submit"
    if launch.submission == "rest":
        app_id = await _submit.submit_rest(kernel, launch, rm, cmd, launch_key)
        kernel.log.info("yarn: submitted %s to %s as %s in %.3fs", app_id, rm.endpoint, launch.user, time.monotonic() - start)
    else:
        await _submit.run_spark_submit(kernel, launch, cmd, launch_key)
        kernel.log.info("yarn: started %s (pid %s) against %s", cmd[0], kernel.state["submit_pid"], rm.endpoint)


async def _find_app(kernel: KernelContext, rm: RMClient) -> dict | None:
    apps = await rm.apps(started_time_begin=str(kernel.state["started_ms"]))
    stale = set(kernel.state.get("stale_apps", ()))
    mine = [a for a in apps if _submit.owns(a, kernel.kernel_id) and a["id"] not in stale]
    return max(mine, key=lambda a: a["id"]) if mine else None


def _record(kernel: KernelContext, app: dict) -> str:
    state = app.get("state", "")
    kernel.state["app_state"] = state
    kernel.state["diagnostics"] = app.get("diagnostics", "")
    if app.get("amHostHttpAddress") and not kernel.state.get("am_host"):
        kernel.state["am_host"] = app["amHostHttpAddress"].rsplit(":", 1)[0]
    return state


def _failure(kernel: KernelContext, app: dict, phase: str) -> str:
    return (
        f"YARN application {app['id']} ended {app.get('state')} (final status {app.get('finalStatus')}) "
        f"while {phase}; the ResourceManager says: {app.get('diagnostics') or '(no diagnostics)'}"
    )


async def _startup_failed(kernel: KernelContext) -> str:
    """Watch the submission until it fails (returns why) or the callback arrives (cancelled).

    Fails on: the submit command exiting non-zero, the application reaching a final state."""
    rm = _client(kernel)
    s = settings()
    delay = 0.1
    submit_done = kernel.handles.get("submit_process") is None
    while True:
        if not submit_done and kernel.handles["submit_process"].returncode is not None:
            submit_done = True
            why = await _submit.submit_exit(kernel)
            if why and not kernel.state.get("app_id"):
                kernel.handles["exit_reported"] = True
                return why
        try:
            if not kernel.state.get("app_id"):
                app = await _find_app(kernel, rm)
                if app is not None:
                    kernel.state["app_id"] = app["id"]
                    kernel.log.info("yarn: application %s is this kernel's", app["id"])
            else:
                app = await rm.app(kernel.state["app_id"])
        except RMUnavailable as exc:
            kernel.log.warning("yarn: %s", exc)
            app = None
        except RMError as exc:
            if "status: 404" in exc.message:
                return f"YARN application {kernel.state.get('app_id')} is unknown to the ResourceManager: {exc.message}"
            kernel.log.warning("yarn: %s", exc)
            app = None
        if app is not None:
            previous = kernel.state.get("app_state")
            state = _record(kernel, app)
            if state in FINAL_STATES:
                phase = "running the kernel launcher" if previous == "RUNNING" or kernel.state.get("am_host") else f"waiting for an AM container ({previous or 'SUBMITTED'})"
                return _failure(kernel, app, phase)
            if state != previous:
                kernel.progress(state.lower(), application_id=app["id"], am_host=kernel.state.get("am_host") or "")
        await asyncio.sleep(delay)
        delay = min(delay * 1.5, s.startup_poll_max)


async def confirm_startup(kernel: KernelContext) -> None:
    """Wait for the launcher's callback from the AM's host, failing as soon as the submission or
    the application fails; see ``eg_confirm_startup``."""
    kernel.state["phase"] = "startup"
    watcher = asyncio.ensure_future(_startup_failed(kernel))
    try:
        await remote.wait_for_callback(kernel, exited=watcher)
    finally:
        watcher.cancel()
    await _settle(kernel)
    host = kernel.state.get("am_host")
    if host:
        kernel.connection_info["ip"] = host
        kernel.state["comm_ip"] = host
    kernel.state["phase"] = "running"
    remote.forget(kernel)


async def _settle(kernel: KernelContext) -> None:
    """After the callback: make sure the application and its AM host are known (the callback can
    come before the next look at the RM; spark-submit's application may not even be found yet)."""
    rm = _client(kernel)
    delay = 0.05
    while not (kernel.state.get("app_id") and kernel.state.get("am_host")):
        try:
            if not kernel.state.get("app_id"):
                app = await _find_app(kernel, rm)
                if app is not None:
                    kernel.state["app_id"] = app["id"]
            else:
                app = await rm.app(kernel.state["app_id"])
        except (RMUnavailable, RMError) as exc:
            kernel.log.warning("yarn: %s", exc)
            app = None
        if app is not None:
            _record(kernel, app)
            if kernel.state.get("am_host") or app.get("state") in FINAL_STATES:
                return
        await asyncio.sleep(delay)
        delay = min(delay * 2, settings().startup_poll_max)


def _status(kernel: KernelContext, app: dict) -> int:
    return 0 if app.get("finalStatus") == "SUCCEEDED" else 1


async def poll(kernel: KernelContext) -> int | None:
    """``None`` while the application is not in a final state; see ``eg_poll``."""
    app_id = kernel.state.get("app_id")
    if not app_id:
        return 0
    try:
        app = await _client(kernel).app(app_id)
    except (RMUnavailable, RMError) as exc:  # says nothing about the kernel
        kernel.log.warning("yarn: cannot poll %s: %s", app_id, exc)
        return None
    return _status(kernel, app) if _record(kernel, app) in FINAL_STATES else None


async def wait(kernel: KernelContext) -> int:
    """Wait for the application's end on the RM's shared watch (one query for every running
    kernel, :mod:`eg_yarn._watch`); see ``eg_wait``."""
    app_id = kernel.state.get("app_id")
    if not app_id:
        return 0
    app = await _watch.ended(_launch(kernel), app_id)
    if app is None:
        kernel.log.warning("yarn: application %s is unknown to the ResourceManager", app_id)
        return 1
    _record(kernel, app)
    return _status(kernel, app)


async def _backend_signal(kernel: KernelContext, signum: int) -> None:
    """YARN's own way when the launcher's comm port cannot be used: only ending the application."""
    if signum in (signal.SIGTERM, signal.SIGKILL):
        await kill(kernel)


async def send_signal(kernel: KernelContext, signum: int) -> None:
    """Interrupts and other signals through the launcher's comm port (eg_core.remote's policy);
    SIGKILL, and SIGTERM when the comm port fails, kill the application through the RM."""
    if signum == 0:
        return
    if signum == signal.SIGKILL:
        await kill(kernel)
        return
    await remote.send_signal(kernel, signum, fallback=_backend_signal)


async def shutdown_requested(kernel: KernelContext) -> None:
    """A REST-submitted launcher cannot unregister from the RM, so its application would end
    FAILED when the kernel exits: kill it through the RM instead (recorded KILLED). Spark's AM
    unregisters by itself (FINISHED): the watch then asks at once whether it has."""
    if kernel.state.get("submission") == "rest":
        await kill(kernel)
    else:
        _wake(kernel)


async def terminate(kernel: KernelContext) -> None:
    """Ask the launcher to stop the kernel (the application then ends on its own)."""
    _wake(kernel)
    await remote.terminate(kernel, fallback=_backend_signal)


async def kill(kernel: KernelContext) -> None:
    """Kill the application through the RM and wait (``shutdown_wait_time``) for its final state."""
    _wake(kernel)
    app_id = kernel.state.get("app_id")
    if not app_id and kernel.handles.get("submit_process") is not None:
        try:  # spark-submit may have submitted it already
            app = await _find_app(kernel, _client(kernel))
        except (RMUnavailable, RMError):
            app = None
        if app:
            app_id = kernel.state["app_id"] = app["id"]
    if not app_id:
        return
    rm = _client(kernel)
    try:
        await rm.kill(app_id)
        deadline = time.monotonic() + settings().shutdown_wait_time
        delay = 0.05
        while time.monotonic() < deadline:
            if _record(kernel, await rm.app(app_id)) in FINAL_STATES:
                kernel.log.info("yarn: application %s is %s", app_id, kernel.state["app_state"])
                _wake(kernel)  # its waiters learn it now
                return
            await asyncio.sleep(delay)
            delay = min(delay * 2, 1.0)
        kernel.log.warning("yarn: application %s is still %s %gs after the kill", app_id, kernel.state.get("app_state"), settings().shutdown_wait_time)
    except (RMUnavailable, RMError) as exc:
        kernel.log.warning("yarn: cannot kill application %s: %s", app_id, exc)


async def cleanup(kernel: KernelContext, restart: bool) -> None:
    """Make sure the application has ended (kill it through the RM if not), reap the submit
    command; see ``eg_cleanup``."""
    if kernel.state.get("app_id") and kernel.state.get("app_state") not in FINAL_STATES:
        await kill(kernel)
    elif not kernel.state.get("app_id") and kernel.handles.get("submit_process") is not None:
        await kill(kernel)
    await _submit.reap_submit(kernel)


async def describe_exit(kernel: KernelContext) -> str | None:
    """Why the kernel ended or has not started: the application's state and the RM's diagnostics."""
    app_id = kernel.state.get("app_id")
    if not app_id:
        output = "" if kernel.handles.get("exit_reported") else _submit.submit_output(kernel)
        if kernel.state.get("submission") == "spark-submit":
            return "no YARN application was found for this kernel" + (f"; the submit command's output ends with:\n{output}" if output else "")
        return None
    try:
        _record(kernel, await _client(kernel).app(app_id))
    except (RMUnavailable, RMError) as exc:
        return f"YARN application {app_id}: last known state {kernel.state.get('app_state')} ({exc})"
    state = kernel.state.get("app_state")
    text = f"YARN application {app_id} is {state}"
    if state == "ACCEPTED" and not kernel.state.get("am_host"):
        text += " (no AM container yet: the queue has no room, or the cluster is busy)"
    if kernel.state.get("diagnostics"):
        text += f"; the ResourceManager says: {kernel.state['diagnostics']}"
    if remote.awaiting_callback(kernel):
        text += f"\n{remote.diagnose(kernel)}"
    return text


_PLACEMENT = ("user", "queue", "node_label", "driver_memory_mb", "executor_memory_mb", "endpoints")


def pool_fit(kernel: KernelContext, request: KernelContext) -> str | None:
    """Why a waiting pooled application cannot serve ``request`` (``eg_pool_fit``): what YARN
    fixed at submission (the application's user, queue, node label, memory, RM) differs. None
    when it fits. A YARN kernel has no working directory on the gateway's terms."""
    request.cwd = None
    try:
        wanted = dataclasses.asdict(resolve(request))
    except EGError as exc:
        return f"the request's YARN settings are not accepted: {exc.message}"
    have = kernel.state.get("launch") or {}
    for name in _PLACEMENT:
        want, got = wanted[name], have.get(name)
        if name == "endpoints":
            want, got = list(want), list(got or [])
        if want != got:
            return f"the application would need {name} {want!r}; the pooled one has {got!r}"
    return None


def load_process_info(kernel: KernelContext, info: dict) -> None:
    """Re-attach to a kernel launched by an earlier gateway process: its application id (and
    comm port) are all it takes; see ``eg_load_process_info``."""
    kernel.state = dict(info)
    kernel.handles.clear()
