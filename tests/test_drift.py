"""Drift guards: the declared lifecycle events and launch phases (:mod:`eg_core.lifecycle`) are
the ones the code emits and raises, and the reference docs that list them list exactly those.
Read from the source (AST), so a new event or phase that skips the declaration fails here."""

from __future__ import annotations

import ast
import re
from pathlib import Path

from eg_core import Event, Phase, hookspecs
from eg_core._runtime import errors

ROOT = Path(__file__).resolve().parents[1]
CORE = [p for p in (ROOT / "eg_core").rglob("*.py") if "plugin_template" not in p.parts]
PLUGINS = list(ROOT.glob("plugins/*/eg_*/**/*.py"))
CONSTANTS = {f"Event.{k}": v for k, v in vars(Event).items() if k.isupper() and isinstance(v, str)} | {
    f"Phase.{k}": v for k, v in vars(Phase).items() if k.isupper() and isinstance(v, str)}
# A restart that fails outside the launch phases (the core wraps the error) names the restart.
CORE_PSEUDO_PHASES = {"restart"}


def _value(node: ast.AST) -> str | None:
    """A string literal, or the value of an ``Event.X`` / ``Phase.X`` constant."""
    if isinstance(node, ast.Constant) and isinstance(node.value, str):
        return node.value
    if isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name):
        return CONSTANTS.get(f"{node.value.id}.{node.attr}")
    return None


def _calls(paths: list[Path], name: str, arg: int) -> list[tuple[str, str]]:
    """(place, value) of argument ``arg`` of every call to ``name`` (a function or a method)
    whose value is known from the source."""
    found = []
    for path in paths:
        for node in ast.walk(ast.parse(path.read_text())):
            if not isinstance(node, ast.Call) or len(node.args) <= arg:
                continue
            func = node.func
            called = func.attr if isinstance(func, ast.Attribute) else getattr(func, "id", None)
            if called == name and (value := _value(node.args[arg])) is not None:
                found.append((f"{path.relative_to(ROOT)}:{node.lineno}", value))
    return found


def _backticked(text: str) -> set[str]:
    return set(re.findall(r"``([a-z_]+)``", text))


def test_every_event_the_core_emits_is_declared_and_every_declared_one_is_emitted():
    emitted = _calls(CORE, "emit", 1)
    undeclared = [(place, event) for place, event in emitted if event not in Event.ALL]
    assert not undeclared, f"events emitted but not in eg_core.lifecycle.Event.ALL: {undeclared}"
    never = set(Event.ALL) - {event for _, event in emitted} - {Event.PROGRESS, Event.CONNECTED, Event.DISCONNECTED}
    assert not never, f"declared events the core never emits: {never}"
    # progress comes from KernelContext.progress, connections from the websocket: named in the code
    code = "\n".join(p.read_text() for p in CORE)
    for name in ("PROGRESS", "CONNECTED", "DISCONNECTED"):
        value = getattr(Event, name)
        assert f'"{value}"' in code or f"Event.{name}" in code, f"{value} is declared but never sent"
    assert sorted(Event.ALL) == sorted(v for k, v in vars(Event).items() if k.isupper() and isinstance(v, str))


def test_every_phase_a_launch_runs_or_fails_in_is_declared():
    used = _calls(CORE, "run_phase", 0) + _calls(CORE, "LaunchFailed", 0)
    undeclared = [(place, phase) for place, phase in used if phase not in Phase.ALL and phase not in CORE_PSEUDO_PHASES]
    assert not undeclared, f"launch phases used but not in eg_core.lifecycle.Phase.ALL: {undeclared}"
    assert set(Phase.ALL) <= {phase for _, phase in used}, "a declared phase no launch runs"
    assert sorted(Phase.ALL) == sorted(v for k, v in vars(Phase).items() if k.isupper() and isinstance(v, str))


def test_the_reference_docs_list_exactly_the_declared_events_and_phases():
    events_doc = hookspecs.eg_kernel_event.__doc__.split("``details``")[0]
    assert _backticked(events_doc) - {"event", "pooled", "request_id", "duration", "reason"} == set(Event.ALL)
    phases_doc = errors.LaunchFailed.__doc__.split("Phases:")[1].split(".")[0]
    assert _backticked(phases_doc) == set(Phase.ALL)


def test_a_plugin_s_own_launch_failures_name_a_phase_in_words():
    """Resource managers may fail a step of their own (eg-docker's ``image_pull``); such names are
    plain snake_case words, never a core phase misspelt."""
    for place, phase in _calls(PLUGINS, "LaunchFailed", 0):
        assert re.fullmatch(r"[a-z]+(_[a-z]+)*", phase), (place, phase)
        close = [p for p in Phase.ALL if p != phase and sorted(p) == sorted(phase)]
        assert not close, f"{place}: {phase!r} looks like a misspelt {close[0]!r}"
