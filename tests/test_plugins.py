"""The plugin manager, per-kernel resource-manager selection, async hook calling, hook docs."""

from __future__ import annotations

import ast
import inspect
import pkgutil
import subprocess
import sys
from pathlib import Path

import pluggy
import pytest

import eg_core
from eg_core import KernelContext, hookimpl, hookspecs
from eg_core._runtime import launch
from eg_core._runtime.calling import acall, acall_first
from eg_core._runtime.plugins import describe, get_plugin_manager, resource_manager_hooks, resource_managers

PLUGIN_PACKAGES = ("eg_ssh", "eg_docker", "eg_k8s", "eg_yarn")


class FakeRM:
    def __init__(self, name):
        self.name = name
        self.calls = []

    @hookimpl
    async def eg_poll(self, kernel):
        self.calls.append(kernel.kernel_id)
        return f"{self.name}-polled"


class Observer:
    def __init__(self):
        self.order = []

    @hookimpl
    async def eg_before_launch(self, kernel):
        self.order.append("async")
        return {"ASYNC": "1"}


class SyncObserver:
    @hookimpl
    def eg_before_launch(self, kernel):
        return {"SYNC": "1"}


def ctx(rm="a"):
    return KernelContext(kernel_id="k1", kernel_name="spec", resource_manager=rm)


def test_builtins_registered_first_and_listed():
    pm = get_plugin_manager(load_entrypoints=False)
    assert list(resource_managers(pm)) == ["local"]
    rows = describe(pm)
    assert rows[0]["name"] == "local" and "eg_launch_process" in rows[0]["hooks"]


def test_disabled_plugin_is_blocked():
    pm = get_plugin_manager(["local"], load_entrypoints=False)
    assert pm.is_blocked("local") and resource_managers(pm) == {}


async def test_exactly_the_kernels_resource_manager_takes_part():
    pm = get_plugin_manager(load_entrypoints=False)
    a, b = FakeRM("a"), FakeRM("b")
    pm.register(a, name="a")
    pm.register(b, name="b")
    pm.register(Observer(), name="observer")
    assert await acall_first(resource_manager_hooks(pm, "b").eg_poll, kernel=ctx("b")) == "b-polled"
    assert (a.calls, b.calls) == ([], ["k1"])
    assert await acall_first(resource_manager_hooks(pm, "a").eg_poll, kernel=ctx("a")) == "a-polled"


async def test_acall_awaits_async_and_sync_implementations():
    pm = get_plugin_manager(load_entrypoints=False)
    pm.register(Observer(), name="async-observer")
    pm.register(SyncObserver(), name="sync-observer")
    kernel = ctx()
    await launch.before_launch(pm, kernel)
    assert kernel.env == {"ASYNC": "1", "SYNC": "1"}


async def test_acall_closes_pending_coroutines_on_error():
    pm = pluggy.PluginManager("eg")
    pm.add_hookspecs(hookspecs)
    started = []

    class Late:
        @hookimpl(tryfirst=True)
        async def eg_before_launch(self, kernel):
            raise eg_core.LaunchRefused("no")

    class Early:
        @hookimpl
        async def eg_before_launch(self, kernel):
            started.append(1)

    pm.register(Early(), name="early")
    pm.register(Late(), name="late")
    with pytest.raises(eg_core.LaunchRefused):
        await acall(pm.hook.eg_before_launch, kernel=ctx())
    assert started == []


def test_misspelled_hook_is_caught():
    pm = get_plugin_manager(load_entrypoints=False)

    class Typo:
        @hookimpl
        def eg_lauch_process(self, kernel):
            pass

    pm.register(Typo(), name="typo")
    with pytest.raises(pluggy.PluginValidationError):
        pm.check_pending()


def test_every_hook_is_documented():
    """Each hook says when it is called, who takes part, and what it returns."""
    for name in dir(hookspecs):
        if not name.startswith("eg_"):
            continue
        doc = inspect.getdoc(getattr(hookspecs, name)) or ""
        assert "Called" in doc or "called" in doc, name
        assert "Participants:" in doc, name
        assert "Returns" in doc, name
    driver = inspect.getdoc(launch.launch_sequence)
    positions = [driver.index(hook) for hook in ("eg_before_launch", "eg_launch_process", "eg_confirm_startup", "eg_connection_info", "eg_after_launch")]
    assert positions == sorted(positions)


def test_core_imports_no_plugin():
    core = Path(eg_core.__file__).parent
    for path in core.rglob("*.py"):
        tree = ast.parse(path.read_text())
        for node in ast.walk(tree):
            names = [a.name for a in node.names] if isinstance(node, ast.Import) else [node.module or ""] if isinstance(node, ast.ImportFrom) else []
            assert not any(n.split(".")[0] in PLUGIN_PACKAGES for n in names), (path, names)
    modules = [m.name for m in pkgutil.walk_packages([str(core)], "eg_core.") if m.name != "eg_core.__main__"]
    code = (
        "import importlib, sys\n"
        f"for m in {modules!r}: importlib.import_module(m)\n"
        f"bad = [m for m in sys.modules if m.split('.')[0] in {PLUGIN_PACKAGES!r}]\n"
        "assert not bad, bad\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True)


def test_plugins_command_lists_hooks():
    out = subprocess.run([sys.executable, "-m", "eg_core", "plugins"], capture_output=True, text=True, check=True).stdout
    assert "local  (resource manager; eg-core (builtin))" in out
    assert "    eg_launch_process" in out
