"""Kernelspecs: where they are found, which resource manager runs each, and their API models.

A kernelspec names its resource manager in one of three ways:

- jupyter_client's ``metadata.kernel_provisioner.provisioner_name``: ``eg-<name>`` (ours), or a
  gateway_provisioners name (``distributed-provisioner``, ``docker-provisioner``...);
- Enterprise Gateway's ``metadata.process_proxy.class_name``;
- neither: a plain local kernelspec, run by ``local``.

The core names no plugin: the other gateways' names are aliases each plugin registers
(``eg_kernelspec_aliases``).

A kernelspec whose resource manager is not installed is not listed; asking for it by name gives
a 404 that names the package to install. One whose resource manager refuses to run kernels on
this gateway (``eg_refused_resource_managers``: ``local`` in a Kubernetes pod) is not listed
either; asking for it gives a 403 saying why and which setting changes it.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

from jupyter_client.kernelspec import KernelSpec, KernelSpecManager

from .eg_compat import UNIMPLEMENTED_KERNELSPECS
from .errors import LaunchRefused, NotFound

RESOURCE_FILES = ("kernel.js", "kernel.css", "logo-svg.svg")


def packaged_kernelspecs_dir() -> str:
    """The ``kernelspecs/`` shipped with eg-core (the checkout's directory in an editable install)."""
    import eg_core.kernelspecs as packaged

    return str(Path(packaged.__file__).parent)


def resource_manager_of(spec: dict[str, Any], aliases: dict[str, str]) -> tuple[str | None, dict[str, Any]]:
    """The resource-manager name a kernelspec asks for (``None`` if it names none of ours) and
    that resource manager's settings from the kernelspec; ``aliases`` maps other gateways'
    provisioner and process-proxy class names to ours."""
    metadata = spec.get("metadata") or {}
    provisioner = metadata.get("kernel_provisioner")
    if isinstance(provisioner, dict) and provisioner.get("provisioner_name"):
        name = str(provisioner["provisioner_name"])
        config = dict(provisioner.get("config") or {})
        if name.startswith("eg-"):
            return name[3:], config
        return aliases.get(name), config
    proxy = metadata.get("process_proxy")
    if isinstance(proxy, dict) and proxy.get("class_name"):
        class_name = str(proxy["class_name"]).rsplit(".", 1)[-1]
        return aliases.get(class_name), dict(proxy.get("config") or {})
    return "local", {}


def source_checkout() -> Path | None:
    """The eg checkout this eg-core runs from (an editable install: ``plugins/`` beside
    ``eg_core/``), or None for an installed copy."""
    root = Path(__file__).resolve().parents[2]
    return root if (root / "plugins").is_dir() and (root / "pyproject.toml").is_file() else None


def missing_plugin_advice(rm: str) -> str:
    """What to do about a resource manager that is not loaded (a 404 for its kernelspec, and
    ``doctor``): enable it; or install it, from this checkout's ``plugins/`` when it is one of
    eg's plugins (eg's plugins are on no package index), else from whoever provides it."""
    from importlib.metadata import entry_points

    from .plugins import BUILTIN_PLUGINS, ENTRY_POINT_GROUP

    if rm in BUILTIN_PLUGINS or any(ep.name == rm for ep in entry_points(group=ENTRY_POINT_GROUP)):
        return (
            f"needs the {rm!r} resource manager (eg-{rm}), which is installed but disabled: remove {rm!r} from "
            "Gateway.disabled_plugins (EG_DISABLED_PLUGINS) and restart the gateway"
        )
    checkout = source_checkout()
    if checkout is not None and (checkout / "plugins" / f"eg_{rm}" / "pyproject.toml").is_file():
        return (
            f"needs the {rm!r} resource manager, which is not installed: pip install -c {checkout / 'constraints.txt'} "
            f"{checkout / 'plugins' / f'eg_{rm}'} and restart the gateway"
        )
    if checkout is not None:
        ours = sorted(d.name.removeprefix("eg_") for d in (checkout / "plugins").glob("eg_*") if (d / "pyproject.toml").is_file())
        known = f"eg's own plugins are {', '.join(ours)}"
    else:
        known = "eg's own plugins are in the plugins/ directory of eg's source"
    return (
        f"needs the {rm!r} resource manager, which is not installed and is not one of eg's plugins ({known}): install "
        f"the package that provides the eg plugin {rm!r} (entry point {rm!r} in group {ENTRY_POINT_GROUP}), or use "
        "another kernelspec, and restart the gateway"
    )


def _asked_for(spec: dict[str, Any]) -> str:
    metadata = spec.get("metadata") or {}
    provisioner = metadata.get("kernel_provisioner") or {}
    proxy = metadata.get("process_proxy") or {}
    return str(provisioner.get("provisioner_name") or proxy.get("class_name") or "?")


@dataclass
class KernelSpecEntry:
    """One kernelspec as the gateway sees it."""

    name: str
    spec: KernelSpec
    resource_manager: str | None
    config: dict[str, Any] = field(default_factory=dict)

    @property
    def resource_dir(self) -> str:
        return self.spec.resource_dir

    def model(self, base_url: str, parameters: dict[str, Any] | None = None) -> dict[str, Any]:
        """The API model ``{name, spec, resources}``; resources are ``<base>kernelspecs/<name>/<file>``;
        ``parameters`` (the launch parameters' JSON Schema) goes in ``spec.metadata.parameters``."""
        resources = {}
        try:
            files = os.listdir(self.resource_dir)
        except OSError:
            files = []
        for fname in files:
            stem = fname.rsplit(".", 1)[0]
            if fname in RESOURCE_FILES or (stem.startswith("logo-") and fname.endswith(".png")):
                resources[stem if stem.startswith("logo-") else fname] = f"{base_url}kernelspecs/{self.name}/{fname}"
        spec = self.spec.to_dict()
        if parameters:
            spec["metadata"] = {**(spec.get("metadata") or {}), "parameters": parameters}
        return {"name": self.name, "spec": spec, "resources": resources}


class KernelSpecCatalog:
    """The kernelspecs this gateway can run, read from disk with a cache keyed on file mtimes."""

    def __init__(
        self, ksm: KernelSpecManager, resource_managers: set[str], log: Any, aliases: dict[str, str] | None = None,
        dormant_aliases: Callable[[], dict[str, str]] = dict,
    ):
        self.ksm = ksm
        self.resource_managers = resource_managers
        self.aliases = dict(aliases or {})  # other gateways' names for our resource managers
        self.dormant_aliases = dormant_aliases  # disabled plugins' aliases, to explain a 404
        self.log = log
        self._cache: dict[str, tuple[int, KernelSpecEntry]] = {}
        self.unreadable: dict[str, str] = {}  # kernel.json path -> why it could not be read
        self.refused: dict[str, str] = {}  # resource manager -> why it runs no kernel here

    def _load(self, name: str, resource_dir: str) -> KernelSpecEntry | None:
        path = os.path.join(resource_dir, "kernel.json")
        try:
            mtime = os.stat(path).st_mtime_ns
        except OSError:
            return None
        cached = self._cache.get(path)
        if cached and cached[0] == mtime:
            return cached[1]
        try:
            spec = KernelSpec.from_resource_dir(resource_dir)
        except Exception as exc:
            self.log.warning("Skipping kernelspec %s: %s", path, exc)
            self.unreadable[path] = f"{type(exc).__name__}: {exc}"
            return None
        self.unreadable.pop(path, None)
        rm, config = resource_manager_of(spec.to_dict(), self.aliases)
        entry = KernelSpecEntry(name=name, spec=spec, resource_manager=rm, config=config)
        self._cache[path] = (mtime, entry)
        return entry

    def _all(self) -> dict[str, KernelSpecEntry]:
        entries = {}
        for name, resource_dir in self.ksm.find_kernel_specs().items():
            entry = self._load(name, resource_dir)
            if entry is not None:
                entries[name] = entry
        return entries

    def available(self) -> dict[str, KernelSpecEntry]:
        """The kernelspecs whose resource manager is installed and does not refuse."""
        return {
            n: e for n, e in self._all().items() if e.resource_manager in self.resource_managers and e.resource_manager not in self.refused
        }

    def get(self, name: str) -> KernelSpecEntry:
        """One kernelspec by name; :class:`NotFound` says whether it is unknown or which package
        would make it available."""
        found = self.ksm.find_kernel_specs()
        resource_dir = found.get(name) or found.get(name.lower())
        entry = self._load(name.lower(), resource_dir) if resource_dir else None
        path = os.path.join(resource_dir, "kernel.json") if resource_dir else ""
        if entry is None and path in self.unreadable:
            raise NotFound(f"Kernel spec {name!r} cannot be read: {path}: {self.unreadable[path]}: correct its kernel.json")
        if entry is None:
            raise NotFound(f"Kernel spec {name!r} not found")
        rm = entry.resource_manager
        if rm is None:
            rm, _ = resource_manager_of(entry.spec.to_dict(), self.dormant_aliases())
        if rm is None and _asked_for(entry.spec.to_dict()).rsplit(".", 1)[-1] in UNIMPLEMENTED_KERNELSPECS:
            asked = _asked_for(entry.spec.to_dict()).rsplit(".", 1)[-1]
            raise NotFound(
                f"Kernel spec {name!r} asks for {asked!r}, {UNIMPLEMENTED_KERNELSPECS[asked]}, which no eg resource "
                "manager implements yet: run it under Enterprise Gateway, or use a kernelspec of a resource manager eg "
                "has (eg-gateway plugins lists them)", reason="Resource Manager Not Implemented",
            )
        if rm is None:
            raise NotFound(
                f"Kernel spec {name!r} asks for {_asked_for(entry.spec.to_dict())!r}, which no installed eg resource "
                "manager provides: install the plugin that runs it (eg-gateway plugins lists those installed)"
            )
        if rm not in self.resource_managers:
            raise NotFound(f"Kernel spec {name!r} {missing_plugin_advice(rm)}", reason="Resource Manager Not Installed")
        if rm in self.refused:
            raise LaunchRefused(f"Kernel spec {name!r} runs on the {rm!r} resource manager, which {self.refused[rm]}",
                                reason="Resource Manager Refused")
        return entry
