"""The plugin manager, resource managers and kernelspecs as the gateway finds them, for tests."""

from __future__ import annotations

from pathlib import Path


def plugin_manager(*, load_entrypoints: bool = True):
    """A plugin manager as the gateway builds it: the builtins, then (by default) every
    installed plugin. For tests that check a plugin is discovered."""
    from .._runtime.plugins import get_plugin_manager

    return get_plugin_manager(load_entrypoints=load_entrypoints)


def resource_managers(pm) -> set[str]:
    """The names of the resource managers registered with ``pm``."""
    from .._runtime.plugins import resource_managers as found

    return set(found(pm))


def resource_manager_of(spec: dict) -> tuple:
    """``(resource manager name, its kernelspec config)`` for a kernelspec dict, as the
    gateway reads it (``eg-<name>`` provisioners, and the aliases plugins register)."""
    from .._runtime.catalog import resource_manager_of as read
    from .._runtime.plugins import kernelspec_aliases

    return read(spec, kernelspec_aliases(plugin_manager()))


def kernelspec_dir(name: str) -> str:
    """The directory of kernelspec ``name`` among those eg ships (core and installed plugins)."""
    from .._runtime.catalog import packaged_kernelspecs_dir
    from .._runtime.plugins import kernelspec_dirs

    for directory in (packaged_kernelspecs_dir(), *kernelspec_dirs(plugin_manager())):
        path = Path(directory) / name
        if (path / "kernel.json").exists():
            return str(path)
    raise LookupError(f"no kernelspec {name!r} is shipped with eg-core or an installed plugin")
