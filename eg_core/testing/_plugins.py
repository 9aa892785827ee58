"""The plugin manager, resource managers and kernelspecs as the gateway finds them, for tests."""

from __future__ import annotations

import os
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


def plugin_site(directory: Path, modules: dict[str, str]) -> dict[str, str]:
    """Install plugin modules for a gateway subprocess, as a package would: ``modules`` maps
    each plugin name to its module's source; each is written to ``directory`` with an
    ``eg.plugins`` entry point of that name. Returns the environment to start the gateway with
    (``gateway_factory(..., env=plugin_site(tmp_path / "site", {"mine": SOURCE}))``)."""
    directory.mkdir(parents=True, exist_ok=True)
    dist_info = directory / "eg_test_plugins-0.dist-info"
    dist_info.mkdir(exist_ok=True)
    (dist_info / "METADATA").write_text("Metadata-Version: 2.1\nName: eg-test-plugins\nVersion: 0\n")
    (dist_info / "entry_points.txt").write_text("[eg.plugins]\n" + "".join(f"{name} = {name}\n" for name in modules))
    for name, source in modules.items():
        (directory / f"{name}.py").write_text(source)
    return {"PYTHONPATH": os.pathsep.join([str(directory), *filter(None, [os.environ.get("PYTHONPATH")])])}
