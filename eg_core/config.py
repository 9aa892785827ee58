"""Settings classes for plugins: ``EG_*`` environment defaults, and per-kernelspec overrides
validated through the traits.

A plugin's settings are one traitlets class (returned from ``eg_configurables``)::

    class SlurmSettings(EnvDefaults, SingletonConfigurable):
        partition = Unicode("debug", config=True, help="Partition of kernel jobs.").tag(
            env=("EG_SLURM_PARTITION",), kernelspec=True)
        sbatch_timeout = Float(30.0, config=True, help="Seconds sbatch may take.")

Precedence, lowest first: the trait's default; the first environment variable of its ``env``
tag that is set; the config file and CLI (``--SlurmSettings.partition=gpu``); and, per kernel,
the kernelspec's resource-manager ``config`` for traits tagged ``kernelspec=True`` (the one
allow-list: an untagged setting in a kernelspec is refused with a 400)::

    settings = kernelspec_settings(kernel, SlurmSettings)   # in eg_launch_process
    settings.partition

``--help-all`` shows each trait's environment variables. A help text may name an ``EG_*``
variable only when the trait is tagged with it: ``env`` (applied as above) or ``env_default``
(read by the trait's own ``@default`` method, for values built from several variables), or
``env_elsewhere`` (applied by other code, e.g. per-logger levels; named, not checked).
``tests/test_settings_env.py`` checks every settings class, and that each tagged variable really
changes the setting, so no setting advertises a variable it ignores.

A resource manager whose requests may set some of its settings through ``KERNEL_*`` values (an
image, a uid, resources), as Enterprise Gateway's container process proxies do, layers them with
:class:`RequestOverrides`: one allow-list (the operator's ``request_overrides``), one rule for
values dropped rather than refused (``ignored_overrides``, ``KERNEL_WORKING_DIR``).
"""

from __future__ import annotations

import fnmatch
import json
import math
import os
import re
from types import SimpleNamespace
from typing import Any, Iterable, Mapping

from traitlets import Bool, Dict, Enum, Float, List, Set, TraitError, Unicode

from ._runtime.context import KernelContext
from ._runtime.errors import BadRequest, ConfigError, LaunchRefused

ENV_NAME = re.compile(r"\b(?:EG|KG)_[A-Z0-9_]+\b")
_BOOLEAN_WORDS = {"true": True, "false": False, "1": True, "0": False, "yes": True, "no": False, "on": True, "off": False}


def finite_number(value: Any) -> float:
    """``value`` as a float; raises ValueError for text that is no number, and for NaN and the
    infinities (which would silently remove a limit: every comparison with NaN is false)."""
    number = float(value)
    if not math.isfinite(number):
        raise ValueError(f"{value!r} is not a finite number")
    return number


_MEMORY_UNITS = {
    "": 1, "b": 1, "k": 1000, "m": 1000**2, "g": 1000**3, "t": 1000**4,
    "ki": 1024, "mi": 1024**2, "gi": 1024**3, "ti": 1024**4,
}


def cpus(value: Any) -> float:
    """CPU cores from a number or text as Docker (``1.5``) or Kubernetes (``2``, ``500m``) write
    them; raises ValueError for anything else, or a negative amount."""
    text = str(value).strip().lower()
    try:
        number = finite_number(text[:-1]) / 1000 if text.endswith("m") else finite_number(text)
    except ValueError:
        number = -1.0
    if number < 0:
        raise ValueError(f"{value!r} is not an amount of CPUs (e.g. 2, 1.5, 500m)")
    return number


def memory_bytes(value: Any) -> int:
    """Bytes from a number or text as Docker (``512m``, ``2g``: powers of 1024, as ``docker run
    --memory`` reads them) or Kubernetes (``512Mi``, ``2Gi``; ``2G`` is 10^9) write them; raises
    ValueError for anything else."""
    text = str(value).strip()
    number = text.rstrip("bBkKmMgGtTiI")
    unit = text[len(number):]
    if unit in ("k", "m", "g", "t"):  # Docker's lower-case letters are binary
        unit += "i"
    factor = _MEMORY_UNITS.get(unit.lower())
    try:
        amount = finite_number(number)
    except ValueError:
        amount = -1.0
    if factor is None or amount < 0:
        raise ValueError(f"{value!r} is not an amount of memory (e.g. 512Mi, 2Gi, 2g, 1073741824)")
    return int(amount * factor)


def check_finite(obj: Any) -> None:
    """Raise ValueError naming the first ``Float`` setting of ``obj`` that is NaN or infinite."""
    for name, trait in obj.traits(config=True).items():
        if isinstance(trait, Float):
            value = getattr(obj, name)
            if value is not None and not math.isfinite(value):
                raise ValueError(f"{type(obj).__name__}.{name} must be a finite number, not {value}")


def env_value(trait: Any, raw: str) -> Any:
    """Parse an environment value for ``trait`` (comma lists for List/Set, true/1/yes for Bool)."""
    if isinstance(trait, (List, Set)):
        item = getattr(trait, "_trait", None)
        words = [v.strip() for v in raw.split(",") if v.strip()]
        return [item.from_string(w) for w in words] if item is not None else words
    if isinstance(trait, Bool):
        return raw.strip().lower() in ("1", "true", "yes", "on")
    if isinstance(trait, Dict):
        return json.loads(raw)
    return trait.from_string(raw.strip())


def env_names(trait: Any, tag: str = "env") -> tuple[str, ...]:
    """The environment variables a trait is tagged with (``.tag(env=...)``, or another ``tag``)."""
    names = trait.metadata.get(tag) or ()
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
        for env in env_names(trait):
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


def variables_read(classes: Iterable[type], source_dirs: Iterable[str] = ()) -> set[str]:
    """Every ``EG_*``/``KG_*`` variable eg reads: those the settings ``classes`` are tagged with
    or name in their help, and those named in the Python files of ``source_dirs`` (the core's
    and the plugins' packages, which read a few directly)."""
    names: set[str] = set()
    for cls in classes:
        for trait in cls.class_traits(config=True).values():
            for tag in ("env", "env_default", "env_elsewhere"):
                names.update(env_names(trait, tag))
            names.update(ENV_NAME.findall(trait.help or ""))
    for directory in source_dirs:
        for root, _, files in os.walk(directory):
            for name in files:
                if name.endswith(".py"):
                    with open(os.path.join(root, name), encoding="utf-8", errors="replace") as f:
                        names.update(ENV_NAME.findall(f.read()))
    return names


def misspelt_variables(environ: Mapping[str, str], known: set[str]) -> list[tuple[str, str]]:
    """``(set, meant)`` for each ``EG_*``/``KG_*`` variable of ``environ`` that eg does not read
    but whose name is close to one it does (a letter missing, say); the gateway logs a
    warning for each at startup. Other unknown names (Enterprise Gateway's own, say) are left
    alone."""
    import difflib

    found = []
    for name in sorted(environ):
        if ENV_NAME.fullmatch(name) and name not in known:
            hint = difflib.get_close_matches(name, sorted(known), n=1, cutoff=0.85)
            if hint:
                found.append((name, hint[0]))
    return found


def document_env(cls: type) -> type:
    """Append the environment variable names to each tagged trait's help (for --help-all);
    the gateway calls it for every class it configures."""
    for trait in cls.class_traits(config=True).values():
        names = env_names(trait)
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
        check_finite(self)


def overridable(cls: type) -> list[str]:
    """The settings of ``cls`` a kernelspec may override (traits tagged ``kernelspec=True``)."""
    return sorted(n for n, t in cls.class_traits(config=True).items() if t.metadata.get("kernelspec"))


def kernelspec_settings(kernel: KernelContext, cls: Any) -> SimpleNamespace:
    """The gateway's settings of ``cls`` (its ``instance()``, or ``cls`` itself when it is an
    instance) with the kernel's kernelspec ``config`` applied to the overridable traits, each
    value validated by its trait.

    Called at launch, before anything is created. Keys of ``kernel.config`` that are not
    settings of ``cls`` are left alone (the core's and other plugins' keys). A kernelspec value
    for a setting that is not overridable, or one its trait refuses, raises
    :class:`eg_core.BadRequest` naming the key and what to fix. Strings are accepted for lists
    (comma separated), numbers and booleans (``"true"``/``"false"``), as in environment values.
    """
    gateway = cls.instance() if isinstance(cls, type) else cls
    cls = type(gateway)
    traits = gateway.traits(config=True)
    values = {name: getattr(gateway, name) for name in traits}
    where = f"kernelspec {kernel.kernel_name!r}"
    for key, raw in kernel.config.items():
        trait = traits.get(key)
        if trait is None:
            continue
        if not trait.metadata.get("kernelspec"):
            raise BadRequest(
                f"{where}: config.{key} is a gateway-wide setting ({cls.__name__}.{key}) that a "
                f"kernelspec may not override; it may set: {', '.join(overridable(cls)) or 'nothing'}"
            )
        try:
            values[key] = trait._validate(gateway, _kernelspec_value(trait, raw))
        except (TraitError, ValueError, TypeError) as exc:
            raise BadRequest(f"{where}: config.{key} is not valid: {_first_line(exc)[:300]}") from None
    return SimpleNamespace(**values)


def _kernelspec_value(trait: Any, raw: Any) -> Any:
    """A kernelspec's JSON value for ``trait``: strings stand for lists, numbers and booleans."""
    if not isinstance(raw, str) or isinstance(trait, (Unicode, Enum)):
        return raw
    if isinstance(trait, Bool):
        word = raw.strip().lower()
        if word not in _BOOLEAN_WORDS:
            raise ValueError(f"{raw[:40]!r} is not true or false")
        return _BOOLEAN_WORDS[word]
    return env_value(trait, raw)


class RequestOverrides:
    """A request's ``KERNEL_*`` values layered over a kernel's settings, with Enterprise Gateway's
    allow-list rule. Build one per launch, before anything is created::

        layers = RequestOverrides(kernel, {"uid": "KERNEL_UID", "working_dir": "KERNEL_WORKING_DIR"},
                                  allowed=settings.request_overrides, ignored=settings.ignored_overrides,
                                  mirror_working_dirs=settings.mirror_working_dirs)
        uid, from_request = layers.get("uid", fallback=settings.default_uid)

    ``variables`` maps each setting to its request variable. ``allowed`` names the settings a
    request may set (the operator's ``request_overrides``); a request value for any other
    setting is refused (:class:`eg_core.LaunchRefused`, 403, saying how to allow it), unless the
    setting is in ``ignored``: then the value is dropped from ``kernel.env`` and logged at DEBUG.
    Jupyter Server sends ``KERNEL_WORKING_DIR`` (a directory of its own host) with every request,
    so a resource manager whose kernels run elsewhere keeps ``working_dir`` in its default
    ``ignored`` and lets ``mirror_working_dirs`` (the operator's choice, as in Enterprise
    Gateway) allow it. ``where`` names the allow-list in refusals.
    """

    def __init__(self, kernel: KernelContext, variables: Mapping[str, str], *, allowed: Iterable[str],
                 ignored: Iterable[str] = (), mirror_working_dirs: bool = False,
                 where: str = "the resource manager's request_overrides"):
        self.kernel = kernel
        self.config = kernel.config
        self.variables = dict(variables)
        self.spec_env = {k: str(v) for k, v in (kernel.spec.get("env") or {}).items()}
        self.allowed = set(allowed) | ({"working_dir"} if mirror_working_dirs else set())
        self.ignored = set(ignored)
        self.where = where

    def parameters(self, properties: Mapping[str, dict[str, Any]], *, patterns: Iterable[str] = ()) -> dict[str, dict[str, Any]]:
        """The launch parameters (``eg_launch_parameters``) among ``properties`` (setting ->
        JSON Schema property) that this allow-list lets a request set, keyed by request
        variable; settings named in ``patterns`` (those an ``allowed_*`` list opens) count as
        allowed. The same allow-list :meth:`get` enforces, so schema and validation agree."""
        open_ = self.allowed | set(patterns)
        return {self.variables[name]: prop for name, prop in properties.items() if name in open_}

    def requested(self, setting: str) -> str | None:
        """The request's value for ``setting``; ``None`` when the request did not set it (a value
        equal to the kernelspec's own ``env`` entry is the operator's, not the request's)."""
        var = self.variables[setting]
        value = self.kernel.env.get(var)
        return None if value is None or value == self.spec_env.get(var) else value

    def get(self, setting: str, config_key: str | None = None, fallback: Any = None, *,
            patterns: Iterable[str] | None = None, patterns_name: str = "") -> tuple[Any, bool]:
        """``(value, came_from_request)``: the request's value where allowed, else the
        kernelspec's ``config[config_key]`` (default: ``setting``), its ``env`` entry, then
        ``fallback``.

        With ``patterns_name`` (the setting holding fnmatch ``patterns``, e.g. ``allowed_images``)
        a request value matching a pattern is allowed even when ``setting`` is not, one matching
        none is refused, and the value is never silently ignored.
        """
        var = self.variables[setting]
        patterns = list(patterns or [])
        value = self.requested(setting)
        if value is not None and setting not in self.allowed and setting in self.ignored and not patterns_name:
            self.kernel.log.debug("%s from the request ignored: %r is not in request_overrides", var, setting)
            self.kernel.env.pop(var, None)
            value = None
        if value is not None:
            if setting not in self.allowed and not patterns:
                raise LaunchRefused(
                    f"{var} may not be set by a request for kernelspec {self.kernel.kernel_name!r}; the operator allows "
                    f"it by adding {setting!r} to {self.where}" + (f" or patterns to {patterns_name}" if patterns_name else "")
                )
            if patterns and not any(fnmatch.fnmatchcase(value, p) for p in patterns):
                raise LaunchRefused(
                    f"{var}={value[:80]!r} is not among the values allowed for {self.kernel.kernel_name!r}: {', '.join(patterns)}"
                )
            return value, True
        configured = self.config.get(config_key or setting)
        if configured not in (None, ""):
            return configured, False
        return self.spec_env.get(var) or fallback, False


def launch_parameter(kind: str, description: str = "", **facets: Any) -> dict[str, Any]:
    """One JSON Schema property of a kernelspec's launch parameters (``eg_launch_parameters``):
    ``kind`` is its JSON type (``"string"``, ``"number"``, ``"integer"``) and ``facets`` its
    ``default``, ``enum``, ``minimum``, ``maximum``, ``exclusiveMinimum``, ``pattern``...;
    facets that are ``None`` or empty are left out, so a setting without a cap gives no
    ``maximum``. Pass the values the request validation reads (the same settings object)."""
    prop: dict[str, Any] = {"type": kind}
    if description:
        prop["description"] = description
    prop.update({k: v for k, v in facets.items() if v is not None and v != [] and v != ""})
    return prop


def pattern_facets(patterns: Iterable[str], *extra: str) -> dict[str, Any]:
    """The schema facets of fnmatch ``patterns`` (an ``allowed_*`` list) for
    :func:`launch_parameter`: an ``enum`` when none has a wildcard (with the ``extra`` values,
    the configured one, first), else an ECMA-262 ``pattern`` that matches what
    :func:`fnmatch.fnmatchcase` matches (and the ``extra`` values)."""
    patterns = list(patterns)
    if not any(ch in p for p in patterns for ch in "*?["):
        return {"enum": list(dict.fromkeys([*(e for e in extra if e), *patterns]))}
    alternatives = [_ecma_regex(p) for p in patterns] + [_ecma_escape(e) for e in extra if e]
    return {"pattern": "^(?:" + "|".join(alternatives) + ")$"}


def _ecma_regex(pattern: str) -> str:
    out, i = [], 0
    while i < len(pattern):
        ch = pattern[i]
        close = pattern.find("]", i + 2) if ch == "[" else -1
        if ch == "*":
            out.append(".*")
        elif ch == "?":
            out.append(".")
        elif close > 0:
            body = pattern[i + 1:close]
            out.append("[" + ("^" + body[1:] if body.startswith("!") else body).replace("\\", "\\\\") + "]")
            i = close
        else:
            out.append(_ecma_escape(ch))
        i += 1
    return "".join(out)


def _ecma_escape(text: str) -> str:
    return re.sub(r"([.^$*+?()\[\]{}|\\/])", r"\\\1", text)


__all__ = [
    "launch_parameter",
    "pattern_facets",
    "EnvDefaults",
    "kernelspec_settings",
    "RequestOverrides",
    "overridable",
    "env_value",
    "env_names",
    "apply_env_defaults",
    "document_env",
    "ENV_NAME",
    "ConfigError",
    "cpus",
    "memory_bytes",
]
