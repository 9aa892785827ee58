"""Awaiting hook results: pluggy calls hooks synchronously, implementations may be async.

This is the one place that knows how async implementations are run.
"""

from __future__ import annotations

import inspect
from typing import Any

from pluggy import HookCaller


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
    """Call a ``firstresult`` hook (a resource-manager hook) and await its result."""
    return await _resolve(caller(**kwargs))


def implemented(caller: HookCaller) -> bool:
    """True when at least one plugin implements the hook."""
    return bool(caller.get_hookimpls())
