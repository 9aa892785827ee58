"""Settings from Enterprise Gateway's environment variables, for any traitlets Configurable.

Tag a trait with ``.tag(env=("EG_NAME", "KG_NAME"))``; :class:`EnvConfigurable` (or a call of
:func:`apply_env_defaults`) sets it from the first variable present, unless the config (file or
CLI) sets it; ``--help-all`` shows the variable names.
"""

from __future__ import annotations

import os
from typing import Any

from traitlets import Bool, Dict, List, Set, TraitError


class ConfigError(Exception):
    """A configuration mistake; its text is one line naming the file, option or variable and
    the fix. ``eg-gateway`` prints it and exits non-zero."""


def env_value(trait: Any, raw: str) -> Any:
    """Parse an environment value for ``trait`` (comma lists for List/Set, true/1/yes for Bool)."""
    if isinstance(trait, (List, Set)):
        return [v.strip() for v in raw.split(",") if v.strip()]
    if isinstance(trait, Bool):
        return raw.strip().lower() in ("1", "true", "yes", "on")
    if isinstance(trait, Dict):
        import json

        return json.loads(raw)
    return trait.from_string(raw)


def _names(trait: Any) -> tuple[str, ...]:
    names = trait.metadata.get("env") or ()
    return (names,) if isinstance(names, str) else tuple(names)


def apply_env_defaults(obj: Any) -> None:
    """Set every env-tagged trait of ``obj`` that its config does not set."""
    configured = set()
    for cls in type(obj).mro():
        section = obj.config.get(cls.__name__) if hasattr(obj, "config") else None
        if section:
            configured.update(section.keys())
    for name, trait in obj.traits(config=True).items():
        if name in configured:
            continue
        for env in _names(trait):
            if env in os.environ:
                raw = os.environ[env]
                try:
                    setattr(obj, name, env_value(trait, raw))
                except (TraitError, ValueError) as exc:
                    raise ConfigError(
                        f"{env}={raw!r}: {type(obj).__name__}.{name} expects {trait.info()} ({_first_line(exc)}): "
                        f"fix or unset {env}"
                    ) from None
                break


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0].rstrip(".") if text else type(exc).__name__


def first_line(exc: BaseException) -> str:
    """The first line of an exception's text, without a final period (for one-line errors)."""
    return _first_line(exc)


def document_env(cls: type) -> type:
    """Append the environment variable names to each tagged trait's help (for --help-all);
    the gateway calls it for every class it configures."""
    for trait in cls.class_traits(config=True).values():
        names = _names(trait)
        if names and "Environment:" not in (trait.help or ""):
            trait.help = f"{trait.help} Environment: {', '.join(names)}."
    return cls


class EnvDefaults:
    """Mixin for a plugin's settings class: config file and CLI first, then the EG_* environment
    names its traits are tagged with, then defaults::

        class MySettings(EnvDefaults, SingletonConfigurable):
            limit = Int(0, config=True, help="...").tag(env=("EG_MY_LIMIT",))

    Return the class from ``eg_configurables``; the gateway creates the instance with its config.
    Read it with ``MySettings.instance()`` (outside a gateway: env and defaults only).
    """

    def __init__(self, **kwargs: Any):
        super().__init__(**kwargs)
        apply_env_defaults(self)
