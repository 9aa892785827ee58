"""A resource manager's hook implementations, made from the functions of one module.

A resource manager keeps one kernel's life in a module of functions, one per hook, each named as
the hook without its ``eg_`` prefix (``launch_process``, ``confirm_startup``, ``poll``, ``wait``,
``send_signal``, ``shutdown_requested``, ``terminate``, ``kill``, ``cleanup``, ``describe_exit``,
``backend_log``, ``save_process_info``, ``load_process_info``, ``connection_info``, ``pool_fit``,
``requested_resources``) and taking the hook's arguments (or only those it uses). Its plugin module
then says, in one line::

    globals().update(hooks_from("my_rm._kernels"))

and has an ``eg_<name>`` hook implementation for each such function, and none for a hook the
module does not define (the core's default applies). The hooks stay pluggy hooks: a plugin may
write any of them by hand instead, and :func:`hooks_from` never hides a mistake pluggy would
report (an argument the hook does not have is refused when the plugin registers).

The module is named by a string and imported when the core first calls one of its hooks, so a
gateway that runs none of its kernels never loads the backend's client library. Which functions
it has, and their arguments, are read from its source without running it: define them at its top
level with ``def`` or ``async def``. A module or object (a class instance) is taken as it is.
"""

from __future__ import annotations

import ast
import importlib
import importlib.util
import inspect
from typing import Any, Callable

import pluggy

from ..hookspecs import NAME, RESOURCE_MANAGER_HOOKS, SYNC_ONLY_HOOKS

_PREFIX = "eg_"
_hookimpl = pluggy.HookimplMarker(NAME)


def hooks_from(source: str | Any) -> dict[str, Callable[..., Any]]:
    """The ``eg_<name>`` hook implementations of a resource manager whose functions are in
    ``source`` (a module's dotted name, imported on the first hook call; or a module or object),
    for its plugin module's ``globals().update(...)``.

    Raises :class:`TypeError` when ``source`` defines an ``async def`` for a hook the core calls
    without awaiting (see :data:`eg_core.hookspecs.SYNC_ONLY_HOOKS`).
    """
    if isinstance(source, str):
        found = _defined_in(source)
        where = source

        def target(name: str) -> Callable[..., Any]:
            return getattr(importlib.import_module(source), name)
    else:
        found = {
            name: (_parameters(inspect.signature(function)), inspect.iscoroutinefunction(function))
            for name in _function_names()
            if callable(function := getattr(source, name, None))
        }
        where = getattr(source, "__name__", type(source).__name__)

        def target(name: str) -> Callable[..., Any]:
            return getattr(source, name)

    hooks = {}
    for name, (parameters, is_async) in found.items():
        hook = _PREFIX + name
        if is_async and hook in SYNC_ONLY_HOOKS:
            raise TypeError(f"{where}.{name} is async, but the core calls {hook} without awaiting: make it a plain 'def'")
        hooks[hook] = _forwarder(hook, f"{where}.{name}", lambda name=name: target(name), parameters)
    return hooks


def _function_names() -> list[str]:
    return [hook[len(_PREFIX):] for hook in RESOURCE_MANAGER_HOOKS]


def _defined_in(module: str) -> dict[str, tuple[list[tuple[str, bool]], bool]]:
    """The hook functions defined at the top level of ``module``'s source, without importing it
    (its package is imported to find it): their parameters and whether each is async."""
    spec = importlib.util.find_spec(module)
    if spec is None or not spec.origin or not spec.origin.endswith(".py"):
        raise ImportError(f"hooks_from: no Python source for module {module!r}")
    with open(spec.origin, encoding="utf-8") as f:
        tree = ast.parse(f.read(), spec.origin)
    wanted = set(_function_names())
    found = {}
    for node in tree.body:
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)) and node.name in wanted:
            positional = node.args.posonlyargs + node.args.args
            first_default = len(positional) - len(node.args.defaults)
            found[node.name] = ([(arg.arg, n >= first_default) for n, arg in enumerate(positional)], isinstance(node, ast.AsyncFunctionDef))
    return found


def _parameters(signature: inspect.Signature) -> list[tuple[str, bool]]:
    kinds = (inspect.Parameter.POSITIONAL_ONLY, inspect.Parameter.POSITIONAL_OR_KEYWORD)
    return [(p.name, p.default is not p.empty) for p in signature.parameters.values() if p.kind in kinds]


def _forwarder(hook: str, where: str, target: Callable[[], Callable[..., Any]], parameters: list[tuple[str, bool]]) -> Callable[..., Any]:
    """A hook implementation taking the target's parameters (pluggy reads them from the function's
    code, and passes those without a default) that calls the target and returns what it returns:
    a value, or a coroutine the core awaits."""
    names = [name for name, optional in parameters if not optional]
    if not all(name.isidentifier() for name in names):
        raise TypeError(f"hooks_from: {where} has a parameter that is not a name: {names}")
    arguments = ", ".join(names)
    namespace: dict[str, Any] = {"_target": target}
    exec(f"def {hook}({arguments}):\n    return _target()({arguments})\n", namespace)  # noqa: S102 - names checked above
    forward = namespace[hook]
    forward.__doc__ = f"{hook}: :func:`{where}`."
    return _hookimpl(forward)
