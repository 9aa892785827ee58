"""No setting advertises an environment variable it ignores.

For every settings class the gateway configures (its own, the response listener's and every
installed plugin's ``eg_configurables``): each ``EG_*``/``KG_*`` name a trait's help mentions is
one of the trait's ``env`` tags, and setting each tagged variable really sets the trait.
"""

from __future__ import annotations

import json

import pytest
from traitlets import Bool, Dict, Enum, Float, Int, List, Set, Unicode

from eg_core._server.app import Gateway
from eg_core.config import ENV_NAME, env_names
from eg_core._runtime.plugins import get_plugin_manager
from eg_core._runtime.callback_listener import ResponseListener


def _classes() -> list[type]:
    pm = get_plugin_manager()
    return [Gateway, ResponseListener, *(cls for found in pm.hook.eg_configurables() for cls in found)]


TRAITS = [
    pytest.param(cls, name, trait, id=f"{cls.__name__}.{name}")
    for cls in _classes()
    for name, trait in cls.class_traits(config=True).items()
]


def sample(trait, default):
    """A valid environment value for ``trait`` that differs from ``default``, and its parsed value."""
    if isinstance(trait, Bool):
        return ("false", False) if default else ("true", True)
    if isinstance(trait, Enum):
        value = next(v for v in trait.values if v != default)
        return str(value), value
    if isinstance(trait, Int):
        return str((default or 0) + 3), (default or 0) + 3
    if isinstance(trait, Float):
        return str((default or 0.0) + 1.5), (default or 0.0) + 1.5
    if isinstance(trait, (List, Set)):
        if trait.metadata.get("example"):  # the items are checked: the trait names valid ones
            return trait.metadata["example"], trait.metadata["example"].split(",")
        if isinstance(getattr(trait, "_trait", None), Int):
            return "7,8", [7, 8]
        return "alpha,beta", ["alpha", "beta"]
    if isinstance(trait, Dict):
        example = trait.metadata.get("example", '{"a": 1}')  # a trait that checks its entries names a valid one
        return example, json.loads(example)
    if trait.metadata.get("example"):
        return trait.metadata["example"], trait.metadata["example"]
    if isinstance(trait, Unicode):
        return "127.0.0.9:0" if "address" in trait.name else "sample-value", None
    raise AssertionError(f"no sample for {type(trait).__name__}")


@pytest.mark.parametrize("cls,name,trait", TRAITS)
def test_help_names_only_variables_the_trait_reads(cls, name, trait):
    mentioned = set(ENV_NAME.findall(trait.help or ""))
    read = set(env_names(trait)) | set(env_names(trait, "env_default")) | set(env_names(trait, "env_elsewhere"))
    assert mentioned <= read, (
        f"{cls.__name__}.{name}'s help names {sorted(mentioned - read)}, "
        "which it does not read: tag the trait with .tag(env=(...)) or drop the name from the help"
    )


def _all_names(trait) -> tuple[str, ...]:
    return env_names(trait) + env_names(trait, "env_default")


@pytest.mark.parametrize("cls,name,trait", [p for p in TRAITS if _all_names(p.values[2])])
def test_each_tagged_variable_sets_the_trait(cls, name, trait, monkeypatch):
    for variable in _all_names(trait):
        for other in _all_names(trait):
            monkeypatch.delenv(other, raising=False)
        default = getattr(cls(), name)
        raw, expected = sample(trait, default)
        if variable.endswith("_PORT") and not isinstance(trait, Int):  # a port inside an address
            raw = "8999"
        elif variable.endswith("_ADDR_ANY"):  # a switch that changes an address
            raw = "true"
        monkeypatch.setenv(variable, raw)
        value = getattr(cls(), name)
        if isinstance(trait, Set):
            value = sorted(value)
        assert value != default, f"{variable}={raw} did not change {cls.__name__}.{name}"
        if expected is not None:
            assert value == expected, f"{variable}={raw} set {cls.__name__}.{name} to {value!r}"
