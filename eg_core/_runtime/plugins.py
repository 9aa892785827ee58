"""The plugin manager: builtin plugins, then every plugin of the ``eg.plugins`` entry-point group.

A plugin that implements any resource-manager hook is a *resource manager*; its name (the
entry-point name, or the builtin's registered name) is what kernelspecs refer to. For each kernel
the core calls the resource-manager hooks through :func:`resource_manager_hooks`, a relay that
leaves out every other resource manager, so exactly one takes part.
"""

from __future__ import annotations

import importlib
import inspect
import os
from functools import lru_cache
from typing import Any, Iterable

import pluggy

from .. import hookspecs
from ..hookspecs import NAME, RESOURCE_MANAGER_HOOKS, SYNC_ONLY_HOOKS

ENTRY_POINT_GROUP = "eg.plugins"
BUILTIN_PLUGINS = {
    "local": "eg_core._builtin.local",
    "users_file": "eg_core._builtin.users_file",
    "authorization": "eg_core._builtin.authorization",
    "limits": "eg_core._builtin.limits",
    "quotas": "eg_core._builtin.quotas",
    "culling": "eg_core._builtin.culling",
    "pools": "eg_core._builtin.pools",
    "events": "eg_core._builtin.events",
    "metrics": "eg_core._builtin.metrics",
    "file_store": "eg_core._builtin.file_store",
}


class PluginManager(pluggy.PluginManager):
    """pluggy's manager with eg's hook rules checked at registration (see :mod:`eg_core.hookspecs`):
    sync-only hooks refuse ``async def`` implementations, and hooks that may be async refuse
    wrappers."""

    def _verify_hook(self, hook: Any, hookimpl: Any) -> None:  # pluggy calls it per implementation
        super()._verify_hook(hook, hookimpl)
        function = hookimpl.function
        is_async = inspect.iscoroutinefunction(function) or inspect.isasyncgenfunction(function)
        if hook.name in SYNC_ONLY_HOOKS and is_async:
            raise pluggy.PluginValidationError(
                hookimpl.plugin,
                f"plugin {hookimpl.plugin_name!r}: {hook.name} is sync only (the core calls it without "
                "awaiting); make the implementation a plain 'def'",
            )
        if hook.name not in SYNC_ONLY_HOOKS and (hookimpl.wrapper or hookimpl.hookwrapper):
            raise pluggy.PluginValidationError(
                hookimpl.plugin,
                f"plugin {hookimpl.plugin_name!r}: {hook.name} may have async implementations, so a "
                "wrapper would see coroutines, not results; use eg_before_launch/eg_after_launch or "
                "eg_kernel_event to act around a step",
            )


def get_plugin_manager(
    disabled: Iterable[str] = (), *, load_entrypoints: bool = True
) -> pluggy.PluginManager:
    """Build a plugin manager: builtins first, then entry points; ``disabled`` names are blocked.

    ``EG_DISABLED_PLUGINS`` (a comma list) adds to ``disabled``; ``EG_TRACE_PLUGINS=1`` logs
    every hook call.
    """
    pm = PluginManager(NAME)
    pm.add_hookspecs(hookspecs)
    blocked = set(disabled) | {n for n in os.environ.get("EG_DISABLED_PLUGINS", "").split(",") if n}
    for name in blocked:
        pm.set_blocked(name)
    for name, module in BUILTIN_PLUGINS.items():
        if not pm.is_blocked(name):
            pm.register(importlib.import_module(module), name=name)
    if load_entrypoints:
        _check_entry_points(pm)
        try:
            pm.load_setuptools_entrypoints(ENTRY_POINT_GROUP)
        except pluggy.PluginValidationError as exc:
            raise _not_loadable(exc.plugin_name if hasattr(exc, "plugin_name") else "?", str(exc)) from None
    pm.check_pending()
    if os.environ.get("EG_TRACE_PLUGINS"):
        import logging

        trace_log = logging.getLogger("eg.plugins")
        pm.trace.root.setwriter(trace_log.debug)
        pm.enable_tracing()
    return pm


def _not_loadable(name: str, why: str, package: str = "") -> Exception:
    from ..config import ConfigError

    what = f"plugin {name!r}" + (f" ({package})" if package else "")
    fix = f"reinstall {package.split()[0]}" if package else "reinstall it"
    return ConfigError(f"{what} cannot be loaded: {why}: {fix}, or disable it with EG_DISABLED_PLUGINS={name}")


def _check_entry_points(pm: pluggy.PluginManager) -> None:
    """Import every enabled ``eg.plugins`` entry point before pluggy registers them, so that a
    half-installed plugin (a module or dependency missing) raises :class:`ConfigError` naming
    the plugin, its package and the fix, not a traceback. Called by :func:`get_plugin_manager`."""
    from importlib.metadata import entry_points

    for ep in entry_points(group=ENTRY_POINT_GROUP):
        if pm.is_blocked(ep.name):
            continue
        try:
            ep.load()
        except Exception as exc:  # noqa: BLE001 - any import failure is the plugin's installation's
            dist = getattr(ep, "dist", None)
            package = f"{dist.name} {dist.version}" if dist is not None else ""
            raise _not_loadable(ep.name, f"{type(exc).__name__}: {exc}", package) from None


@lru_cache(maxsize=1)
def shared_plugin_manager() -> pluggy.PluginManager:
    """The plugin manager for jupyter_client applications that use our provisioners directly."""
    return get_plugin_manager()


def is_resource_manager(plugin: Any) -> bool:
    return any(callable(getattr(plugin, hook, None)) for hook in RESOURCE_MANAGER_HOOKS)


def resource_managers(pm: pluggy.PluginManager) -> dict[str, Any]:
    """The registered resource-manager plugins by name."""
    return {
        name: plugin
        for name, plugin in pm.list_name_plugin()
        if plugin is not None and is_resource_manager(plugin)
    }


class ResourceManagerHooks:
    """Hook relay for one resource manager: ``hooks.eg_poll(kernel=k)`` reaches only that plugin
    (plus non-resource-manager plugins, which implement no resource-manager hook)."""

    def __init__(self, pm: pluggy.PluginManager, name: str):
        self.name = name
        others = [p for n, p in resource_managers(pm).items() if n != name]
        self._pm = pm
        self._others = others
        self._cache: dict[str, Any] = {}

    def __getattr__(self, hook: str):
        if hook.startswith("_"):
            raise AttributeError(hook)
        caller = self._cache.get(hook)
        if caller is None:
            caller = self._pm.subset_hook_caller(hook, remove_plugins=self._others)
            self._cache[hook] = caller
        return caller


def resource_manager_hooks(pm: pluggy.PluginManager, name: str) -> ResourceManagerHooks:
    """The relay for resource manager ``name`` (build one per kernel; it is cheap)."""
    return ResourceManagerHooks(pm, name)


def kernelspec_aliases(pm: pluggy.PluginManager) -> dict[str, str]:
    """Other gateways' names for our resource managers, from every plugin's ``eg_kernelspec_aliases``."""
    aliases: dict[str, str] = {}
    for answer in reversed(pm.hook.eg_kernelspec_aliases()):  # registration order: later plugins win
        aliases.update(answer)
    return aliases


def refused_resource_managers(pm: pluggy.PluginManager) -> dict[str, str]:
    """The resource managers that refuse to run kernels here, with why, from every plugin's
    ``eg_refused_resource_managers``."""
    refused: dict[str, str] = {}
    for answer in reversed(pm.hook.eg_refused_resource_managers()):
        refused.update(answer or {})
    return refused


def dormant_kernelspec_aliases(pm: pluggy.PluginManager) -> dict[str, str]:
    """The aliases of installed plugins that are disabled (blocked), to tell an operator that a
    kernelspec needs one of them. Imports those plugins' modules without registering them;
    called only to explain a kernelspec that nothing runs."""
    from importlib.metadata import entry_points

    aliases: dict[str, str] = {}
    for ep in entry_points(group=ENTRY_POINT_GROUP):
        if not pm.is_blocked(ep.name):
            continue
        try:
            answer = getattr(ep.load(), "eg_kernelspec_aliases", None)
            aliases.update(answer() if callable(answer) else {})
        except Exception:  # a broken disabled plugin explains nothing
            continue
    return aliases


def plugin_names() -> set[str]:
    """The names of every plugin this gateway could load: the builtins and every ``eg.plugins``
    entry point (disabled ones too)."""
    from importlib.metadata import entry_points

    return set(BUILTIN_PLUGINS) | {ep.name for ep in entry_points(group=ENTRY_POINT_GROUP)}


def unknown_plugin_names(names: Iterable[str], pm: pluggy.PluginManager) -> list[str]:
    """One problem line for each of ``names`` (``Gateway.disabled_plugins``, checked at
    startup) that is no plugin's name, with the name meant where another gateway's name for a
    resource manager (``kubernetes`` for ``k8s``, from the plugins' kernelspec aliases) or a
    close spelling tells it."""
    import difflib

    known = plugin_names()
    others = {}
    for alias, rm in {**dormant_kernelspec_aliases(pm), **kernelspec_aliases(pm)}.items():
        others[alias.lower().removesuffix("processproxy").removesuffix("-provisioner")] = rm
    problems = []
    for name in dict.fromkeys(names):
        if name in known:
            continue
        hint = others.get(name.lower()) or next(iter(difflib.get_close_matches(name, sorted(known), n=1)), None)
        fix = f"did you mean {hint!r}?" if hint else "use a plugin's name"
        problems.append(
            f"Gateway.disabled_plugins (EG_DISABLED_PLUGINS): {name!r} is not the name of a plugin: {fix} "
            f"(the plugins: {', '.join(sorted(known))}; eg-gateway plugins lists the enabled ones)"
        )
    return problems


def kernelspec_dirs(pm: pluggy.PluginManager) -> list[str]:
    """The kernelspec directories plugins ship, from every plugin's ``eg_kernelspec_dirs``."""
    return [str(d) for answer in reversed(pm.hook.eg_kernelspec_dirs()) for d in answer]


def describe(pm: pluggy.PluginManager) -> list[dict[str, Any]]:
    """What ``eg-gateway plugins`` prints: each plugin, its distribution and its hooks."""
    dists = {id(plugin): dist for plugin, dist in pm.list_plugin_distinfo()}
    rows = []
    for name, plugin in pm.list_name_plugin():
        if plugin is None:
            continue
        dist = dists.get(id(plugin))
        hooks = sorted(h.name for h in pm.get_hookcallers(plugin) or [])
        rows.append(
            {
                "name": name,
                "package": f"{dist.project_name} {dist.version}" if dist else "eg-core (builtin)",
                "resource_manager": is_resource_manager(plugin),
                "hooks": hooks,
            }
        )
    return rows
