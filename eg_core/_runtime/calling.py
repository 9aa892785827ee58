"""Awaiting hook results: pluggy calls hooks synchronously, implementations may be async.

This is the one place that knows how async implementations are run. The rules that make it
sound are enforced when a plugin registers (:class:`eg_core._runtime.plugins.PluginManager`): hooks
documented "Sync only" refuse an ``async def``, and no hook that may be async takes a wrapper
(a wrapper would see coroutines, not results).
"""

from __future__ import annotations

import inspect
from typing import Any

from pluggy import HookCallError, HookCaller


async def _resolve(result: Any) -> Any:
    return await result if inspect.isawaitable(result) else result


async def acall(caller: HookCaller, **kwargs: Any) -> list[Any]:
    """Call a hook on every implementation, awaiting each result in call order.

    Results that are (or resolve to) ``None`` are dropped, as pluggy does. When one
    implementation raises, the coroutines not yet awaited are closed and the error propagates.
    """
    pending = list(caller(**kwargs))
    results = []
    try:
        while pending:
            value = await _resolve(pending.pop(0))
            if value is not None:
                results.append(value)
    finally:
        for left in pending:
            if inspect.iscoroutine(left):
                left.close()
    return results


async def acall_first(caller: HookCaller, **kwargs: Any) -> Any:
    """Call a ``firstresult`` hook: ask each implementation in pluggy's order (LIFO, with
    ``tryfirst``/``trylast``), awaiting its answer; the first that is not ``None`` wins, so an
    async implementation can decline by returning ``None`` and the next one is asked.

    Implementations are called one by one here rather than through ``caller(...)``: pluggy's own
    ``firstresult`` would stop at the first coroutine, whatever it would return.
    """
    return (await acall_first_answering(caller, **kwargs))[0]


async def acall_first_answering(caller: HookCaller, **kwargs: Any) -> tuple[Any, list[Any]]:
    """:func:`acall_first`'s answer, and the plugins that were not asked because of it (those
    after the one that answered, in call order; none when no plugin answered)."""
    impls = list(reversed(caller.get_hookimpls()))
    for n, impl in enumerate(impls):
        result = await _resolve(impl.function(*_args(impl, kwargs)))
        if result is not None:
            return result, [later.plugin for later in impls[n + 1:]]
    return None, []


async def call_plugins(caller: HookCaller, plugins: list[Any], **kwargs: Any) -> None:
    """Call a hook on the implementations of ``plugins`` only, awaiting each."""
    for impl in reversed(caller.get_hookimpls()):
        if any(impl.plugin is plugin for plugin in plugins):
            await _resolve(impl.function(*_args(impl, kwargs)))


def _args(impl: Any, kwargs: dict[str, Any]) -> list[Any]:
    try:
        return [kwargs[name] for name in impl.argnames]
    except KeyError as missing:
        raise HookCallError(f"hook call must provide argument {missing}") from None


def implemented(caller: HookCaller) -> bool:
    """True when at least one plugin implements the hook."""
    return bool(caller.get_hookimpls())
