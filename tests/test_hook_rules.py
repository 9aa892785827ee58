"""Hook rules enforced at registration, async firstresult declines, and the names of events and
launch phases in one place. Inline plugins on a fresh plugin manager (pluggy's style)."""

from __future__ import annotations

import ast
import inspect
from pathlib import Path

import pluggy
import pytest

from eg_core import Event, LaunchFailed, Phase, hookimpl, hookspecs
from eg_core._runtime.calling import acall_first
from eg_core.testing import kernel_context


def test_async_implementation_of_a_sync_only_hook_is_refused(eg_plugin_manager):
    class Plugin:
        @hookimpl
        async def eg_configurables(self):
            return []

    with pytest.raises(pluggy.PluginValidationError, match="eg_configurables is sync only"):
        eg_plugin_manager.register(Plugin(), name="bad")
    assert not eg_plugin_manager.has_plugin("bad")


def test_wrapper_on_a_hook_that_may_be_async_is_refused(eg_plugin_manager):
    class Plugin:
        @hookimpl(wrapper=True)
        def eg_poll(self, kernel):
            return (yield)

    with pytest.raises(pluggy.PluginValidationError, match="wrapper would see coroutines"):
        eg_plugin_manager.register(Plugin(), name="bad")


def test_wrapper_on_a_sync_only_hook_is_allowed(eg_plugin_manager):
    class Plugin:
        @hookimpl(wrapper=True)
        def eg_kernelspec_dirs(self):
            return (yield) + ["/extra"]

    class Dirs:
        @hookimpl
        def eg_kernelspec_dirs(self):
            return ["/ours"]

    eg_plugin_manager.register(Dirs(), name="dirs")
    eg_plugin_manager.register(Plugin(), name="wrapper")
    assert eg_plugin_manager.hook.eg_kernelspec_dirs() == [["/ours"], "/extra"]


def test_misspelled_argument_is_refused(eg_plugin_manager):
    class Plugin:
        @hookimpl
        def eg_poll(self, kernal):
            return None

    with pytest.raises(pluggy.PluginValidationError):
        eg_plugin_manager.register(Plugin(), name="typo")


async def test_async_firstresult_declines_and_the_next_is_asked(eg_plugin_manager):
    asked = []

    class Declines:
        @hookimpl(tryfirst=True)
        async def eg_store_load(self, kernel_id):
            asked.append("declines")
            return None

    class Answers:
        @hookimpl
        async def eg_store_load(self, kernel_id):
            asked.append("answers")
            return {"kernel_id": kernel_id}

    class Never:
        @hookimpl(trylast=True)
        def eg_store_load(self, kernel_id):
            asked.append("never")
            return {"kernel_id": "wrong"}

    for plugin in (Never(), Answers(), Declines()):
        eg_plugin_manager.register(plugin)
    assert await acall_first(eg_plugin_manager.hook.eg_store_load, kernel_id="k") == {"kernel_id": "k"}
    assert asked == ["declines", "answers"]
    asked.clear()
    eg_plugin_manager.unregister(name=eg_plugin_manager.get_name(next(p for p in eg_plugin_manager.get_plugins() if isinstance(p, Answers))))
    assert await acall_first(eg_plugin_manager.hook.eg_store_load, kernel_id="k") == {"kernel_id": "wrong"}
    assert asked == ["declines", "never"]


def test_sync_only_hooks_are_the_documented_ones():
    documented = {
        name for name, spec in inspect.getmembers(hookspecs, inspect.isfunction)
        if name.startswith("eg_") and "Sync only." in (spec.__doc__ or "")
    }
    assert documented == set(hookspecs.SYNC_ONLY_HOOKS)


def test_event_and_phase_names_are_documented_where_they_are_used():
    event_doc = " ".join(hookspecs.eg_kernel_event.__doc__.split())
    for event in Event.ALL:
        assert f"``{event}``" in event_doc, f"eg_kernel_event's docstring does not list {event}"
    phases_doc = " ".join(LaunchFailed.__doc__.split())
    for phase in Phase.ALL:
        assert f"``{phase}``" in phases_doc, f"LaunchFailed's docstring does not list {phase}"


def test_the_core_emits_only_declared_events():
    """Every literal event name the core passes to ``emit`` is one of :class:`eg_core.Event`."""
    core = Path(__file__).resolve().parents[1] / "eg_core"
    used = set()
    for path in core.rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Call) and getattr(node.func, "attr", getattr(node.func, "id", "")) == "emit":
                used |= {a.value for a in node.args if isinstance(a, ast.Constant) and isinstance(a.value, str)}
    assert used and used <= set(Event.ALL), used - set(Event.ALL)


def test_kernel_context_helper():
    kernel = kernel_context(config={"a": 1})
    assert kernel.config == {"a": 1} and kernel.kernel_id and kernel.resource_manager == "local"
