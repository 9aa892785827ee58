"""Whether a waiting pooled kernel can serve a request, and binding the request to it.

A pooled kernel was started as the gateway's own user with the kernelspec's env and no request
values. At claim time the request's user, ``KERNEL_*``/allowed env and working directory are
bound to the running kernel by a silent ``execute_request``: for Python kernels code that updates
``os.environ`` and calls ``os.chdir``, for R kernels (IRkernel) ``Sys.setenv`` and ``setwd``
(values go in as string literals, never as code). What only a launch can apply is a miss: the
variables in :data:`LAUNCH_TIME_ENV`, whatever the resource manager's ``eg_pool_fit`` names, and
any binding for a kernel in another language (:data:`BINDERS` has none for it).
"""

from __future__ import annotations

import asyncio
import time
from typing import Any

from .calling import acall_first, implemented
from .context import KernelContext

# Request variables resource managers apply when they create the kernel's process, container,
# pod or application; a request setting one of them differently cannot use a pooled kernel.
LAUNCH_TIME_ENV = frozenset({
    "KERNEL_IMAGE", "KERNEL_EXECUTOR_IMAGE", "KERNEL_NAMESPACE", "KERNEL_SERVICE_ACCOUNT_NAME",
    "KERNEL_UID", "KERNEL_GID", "KERNEL_CPUS", "KERNEL_MEMORY", "KERNEL_GPUS", "KERNEL_VOLUMES",
    "KERNEL_VOLUME_MOUNTS", "KERNEL_NETWORK", "KERNEL_LABELS", "KERNEL_CPUS_LIMIT", "KERNEL_MEMORY_LIMIT",
    "KERNEL_GPUS_LIMIT", "KERNEL_EXTRA_SPARK_OPTS", "KERNEL_QUEUE", "KERNEL_PARTITION",
})
BIND_TIMEOUT = 10.0
WARM_UP_RUNS = 3


class BindFailed(Exception):
    """The kernel refused the binding code (e.g. the working directory does not exist)."""


def env_changes(pooled: KernelContext, request: KernelContext) -> dict[str, str]:
    """The request's env values the pooled kernel does not have (its own KERNEL_ID stays)."""
    return {k: v for k, v in request.env.items() if k != "KERNEL_ID" and pooled.env.get(k) != v}


def _is_python(kernel: KernelContext) -> bool:
    return _language(kernel) == "python"


def _language(kernel: KernelContext) -> str:
    return str(kernel.spec.get("language", "")).lower()


async def misfit(pooled: KernelContext, request: KernelContext, hooks: Any) -> str | None:
    """Why ``pooled`` cannot serve ``request``, or None when it can."""
    changes = env_changes(pooled, request)
    launch_time = sorted(changes.keys() & LAUNCH_TIME_ENV)
    if launch_time:
        return f"{', '.join(launch_time)} can only be applied when a kernel starts"
    if implemented(hooks.eg_pool_fit):
        reason = await acall_first(hooks.eg_pool_fit, kernel=pooled, request=request)
        if reason:
            return str(reason)
    if (changes or request.cwd) and _language(pooled) not in BINDERS:
        return f"env and working directory are bound after start only for Python and R kernels, not {pooled.spec.get('language')!r}"
    return None


def binding_code(changes: dict[str, str], cwd: str | None) -> str:
    """Python that applies ``changes`` to ``os.environ`` and changes to ``cwd``; the values are
    ``repr`` literals, so nothing in them runs."""
    code = f"__import__('os').environ.update({dict(changes)!r})"
    if cwd:
        code += f"; __import__('os').chdir({str(cwd)!r})"
    return code


def r_string(value: str) -> str:
    """An R string literal of ``value``: printable ASCII as is, every other character (quotes and
    backslashes too) as a ``\\U{hex}`` escape, so nothing in it ends the literal."""
    return '"' + "".join(
        c if " " <= c <= "~" and c not in '"\\' else f"\\U{{{ord(c):x}}}" for c in value
    ) + '"'


def r_binding_code(changes: dict[str, str], cwd: str | None) -> str:
    """R (IRkernel) that sets ``changes`` with ``Sys.setenv`` and changes to ``cwd``; the values
    are string literals (:func:`r_string`)."""
    code = "invisible(NULL)"
    if changes:
        names = ", ".join(r_string(k) for k in changes)
        values = ", ".join(r_string(v) for v in changes.values())
        code = f"invisible(do.call(Sys.setenv, as.list(setNames(c({values}), c({names})))))"
    if cwd:
        code += f"; invisible(setwd({r_string(str(cwd))}))"
    return code


# The binding code per kernelspec language (lower case).
BINDERS = {"python": binding_code, "r": r_binding_code}
# Languages whose binding runs with silent=False (store_history stays off, so the execution count
# does not move, and no client listens yet): IRkernel answers "ok" to a silent request that failed.
LOUD_BINDING = frozenset({"r"})


async def warm_up(managed: Any) -> None:
    """Run the binding code's shape once while the kernel waits, so a claim does not pay for the
    interpreter's first executions (IPython's first cells are several times slower than later
    ones). Values are the kernel's own; a failure only costs that speed-up."""
    if not _is_python(managed.kernel):
        return
    content = {
        "code": binding_code({}, None) + "; __import__('os').getcwd()", "silent": True, "store_history": False,
        "user_expressions": {}, "allow_stdin": False, "stop_on_error": False,
    }
    for _ in range(WARM_UP_RUNS):
        try:
            await asyncio.wait_for(managed.bridge.request("execute_request", content), BIND_TIMEOUT)
        except Exception as exc:  # noqa: BLE001 - any failure (a timeout too): no warm-up
            managed.kernel.log.debug("warm pool warm-up failed: %s", exc)
            return


async def bind(managed: Any, request: KernelContext) -> None:
    """Give the pooled kernel of ``managed`` the request's user, env and working directory.

    The kernel's context takes the request's values first, so its session record (which a
    backend's store may take an API call to write) is saved while the kernel runs the binding
    code; the registry's claim then has nothing left to save (``managed.claim_saved``). A kernel
    whose binding fails is shut down, which deletes that record."""
    started = time.monotonic()
    pooled = managed.kernel
    changes = env_changes(pooled, request)
    content = None
    if changes or request.cwd:
        content = {
            "code": BINDERS[_language(pooled)](changes, request.cwd), "silent": _language(pooled) not in LOUD_BINDING, "store_history": False,
            "user_expressions": {}, "allow_stdin": False, "stop_on_error": False,
        }
    pooled.env.update(changes)
    pooled.user = request.user
    pooled.user_from_request = request.user_from_request
    pooled.owner = request.owner
    pooled.groups = request.groups
    pooled.cwd = request.cwd
    pooled.launch_timeout = request.launch_timeout
    saving = asyncio.ensure_future(managed.registry.persist(managed))
    try:
        if content is not None:
            reply = await asyncio.wait_for(managed.bridge.request("execute_request", content), BIND_TIMEOUT)
            if reply.get("status") != "ok":
                raise BindFailed(f"{reply.get('ename', 'error')}: {reply.get('evalue', '')}".strip())
    finally:
        await saving
    managed.claim_saved = True
    pooled.state["pool_bind_seconds"] = round(time.monotonic() - started, 4)
