"""Config files and options read strictly: a mistake stops the gateway with one line.

The gateway reads, lowest priority first: Jupyter's shared ``jupyter_config.{py,json}``, then
Enterprise Gateway's ``jupyter_enterprise_gateway_config.{py,json}`` (its sections mapped to
eg's names by :mod:`eg_core._runtime.eg_compat`), then ``eg_gateway_config.{py,json}`` (or only the file
given with ``--config``), each from every Jupyter config directory; the command line wins over
all of them. A file that does not run or parse, a ``--config`` path that does not exist, an
option no eg class has, or a value of the wrong type raises :class:`ConfigError`, whose text is
the one line ``eg-gateway`` prints before exiting non-zero.
"""

from __future__ import annotations

import difflib
import json
import os
import re
import ssl
import traceback
from dataclasses import dataclass
from typing import Any, Iterable

from traitlets.config import Config, Configurable
from traitlets.config.loader import ConfigFileNotFound, JSONFileConfigLoader, PyFileConfigLoader

from ..config import ConfigError

SHARED_BASENAME = "jupyter_config"
EG_BASENAMES = ("jupyter_enterprise_gateway_config", "enterprise_gateway_config")
# Sections read by classes the gateway creates without listing them in --help-all.
EXTRA_SECTIONS = {"KernelSpecManager"}


@dataclass
class ConfigSource:
    """One config file that exists, and what it sets."""

    path: str
    config: Config
    checked: bool  # eg's or Enterprise Gateway's own file (the shared jupyter_config is not checked)


def read_file(basename: str, directory: str | None) -> ConfigSource | None:
    """``basename.py`` and ``basename.json`` in ``directory`` (merged, .json last), or None."""
    merged, found = Config(), None
    for loader_class, ext in ((PyFileConfigLoader, ".py"), (JSONFileConfigLoader, ".json")):
        loader = loader_class(basename + ext, path=directory)
        try:
            merged.merge(loader.load_config())
        except ConfigFileNotFound:
            continue
        except Exception as exc:
            raise ConfigError(_describe_file_error(loader.full_filename or basename + ext, exc)) from None
        found = loader.full_filename
    return ConfigSource(found, merged, basename != SHARED_BASENAME) if found else None


def _describe_file_error(path: str, exc: BaseException) -> str:
    if isinstance(exc, SyntaxError):
        return f"{path}, line {exc.lineno}: {exc.msg}: fix the Python syntax of this config file"
    if isinstance(exc, json.JSONDecodeError) or path.endswith(".json"):
        return f"{path}: not valid JSON ({exc}): fix the file (a JSON object of sections, e.g. {{\"Gateway\": {{\"port\": 8888}}}})"
    line = next((f.lineno for f in reversed(traceback.extract_tb(exc.__traceback__)) if f.filename == path), None)
    where = f", line {line}" if line else ""
    return f"{path}{where}: {type(exc).__name__}: {exc}: fix this config file"


def config_sources(config_file: str, config_dirs: list[str], app_basename: str) -> list[ConfigSource]:
    """Every config file that exists, lowest priority first (see the module docstring)."""
    if config_file and not os.path.isfile(config_file):
        raise ConfigError(f"--config {config_file}: no such file: fix the path (or leave --config out to use {app_basename}.py)")
    directories = list(reversed(config_dirs))  # config_dirs is highest priority first
    wanted: list[tuple[str, str | None]] = [(SHARED_BASENAME, d) for d in directories]
    wanted += [(name, d) for name in EG_BASENAMES for d in directories]
    if config_file:
        directory, filename = os.path.split(os.path.abspath(config_file))
        wanted.append((os.path.splitext(filename)[0], directory))
    else:
        wanted += [(app_basename, d) for d in directories]
    return [source for name, d in wanted if (source := read_file(name, d)) is not None]


def configurable_classes(classes: Iterable[type]) -> dict[str, type]:
    """Section name → class, for ``classes`` and the configurable classes they derive from."""
    known: dict[str, type] = {}
    for cls in classes:
        for base in cls.mro():
            if isinstance(base, type) and issubclass(base, Configurable) and base is not Configurable:
                known.setdefault(base.__name__, base)
    return known


def check_options(config: Config, where: str, known: dict[str, type], other_sections: Iterable[str] = ()) -> list[str]:
    """Every section no eg class reads, and every option its class does not have, in
    ``config``: one problem line each (a "did you mean" where a name is close; ``other_sections``
    are more names to suggest, Enterprise Gateway's). Called at startup and on reload, for the
    command line and each eg or Enterprise Gateway config file."""
    problems = []
    for section, options in config.items():
        if not isinstance(options, Config):
            continue
        cls = known.get(section)
        if cls is None:
            if section in EXTRA_SECTIONS:
                continue
            hint = difflib.get_close_matches(section, [*known, *other_sections], n=1)
            fix = f"did you mean {hint[0]}?" if hint else "see eg-gateway --help-all for the sections eg reads"
            problems.append(f"{where}: c.{section} is not an eg configuration section: {fix}")
            continue
        traits = cls.class_traits(config=True)
        for option in options:
            if option in traits or option[:1].isupper():
                continue
            hint = difflib.get_close_matches(option, list(traits), n=1)
            fix = f"did you mean {section}.{hint[0]}?" if hint else f"see eg-gateway --help-all for {section}'s options"
            problems.append(f"{where}: {section}.{option} is not an option of eg: {fix}")
    return problems


# Options every traitlets application takes besides its aliases and flags.
_BUILTIN_OPTIONS = ("help", "help-all", "h", "version")


def check_command_line(argv: Iterable[str], aliases: Iterable[str], flags: Iterable[str]) -> list[str]:
    """Every command-line word that is not an option of eg-gateway (an unknown ``--name``, or a
    stray value such as the ``18892`` of ``--prot 18892``): one problem line each, with a "did
    you mean" where a name is close. ``--Section.option`` words are checked with the config
    (:func:`check_options`). Called before traitlets parses the command line, which would only
    warn."""
    aliases, flags = set(aliases), set(flags)
    names = sorted(aliases | flags)
    problems = []
    words = list(argv)
    i = 0
    while i < len(words):
        word = words[i]
        i += 1
        if word == "--":
            break
        if not word.startswith("-") or word == "-":
            problems.append(f"command line: {word!r} is not an option (eg-gateway takes no arguments besides its options): remove it")
            continue
        name, has_value, _ = word.lstrip("-").partition("=")
        if "." in name:
            while not has_value and i < len(words) and not words[i].startswith("-"):
                i += 1  # the option's value (a list option may take several)
            continue
        if name in aliases:
            if not has_value and i < len(words) and not words[i].startswith("-"):
                i += 1  # the option's value
            continue
        if name in flags or name in _BUILTIN_OPTIONS:
            continue
        hint = difflib.get_close_matches(name, names, n=1)
        fix = f"did you mean --{hint[0]}?" if hint else "see eg-gateway --help for the options"
        problems.append(f"command line: --{name} is not an option of eg-gateway: {fix}")
        if not has_value and i < len(words) and not words[i].startswith("-"):
            i += 1  # its value goes with it
    return problems


_GENERATED_LINE = re.compile(r"^# c\.(\w+)\.(\w+) = (.*)$")
GENERATED_NOTE = (
    "# Every line below is commented out; uncommented as written it changes nothing, except that it\n"
    "# wins over the setting's EG_* variable. A setting whose default is computed at start shows\n"
    "# the value in effect when this file was written; one that only an unset value means (a\n"
    "# generated token, say) has no line: write one with the value you choose."
)


def effective_config_text(text: str, classes: Iterable[type], value_of: Any) -> str:
    """``text`` from traitlets' ``generate_config_file`` with no trap left: called by
    ``eg-gateway --generate-config`` before it writes the file. A trait with a computed default
    (a ``@default`` method) is written with ``value_of(cls, name)``, the value in effect; one
    tagged ``unset`` (its text says what leaving it unset means) gets no assignment line, only
    that text. Returns the new text, with :data:`GENERATED_NOTE` after the header."""
    by_name = {cls.__name__: cls for cls in classes}
    out: list[str] = []
    for line in text.splitlines():
        match = _GENERATED_LINE.match(line)
        cls = by_name.get(match.group(1)) if match else None
        trait = cls.class_traits(config=True).get(match.group(2)) if cls else None
        if trait is not None:
            name = match.group(2)
            if trait.metadata.get("unset"):
                if out and out[-1].startswith("#  Default: "):
                    out[-1] = f"#  Unset by default: {trait.metadata['unset']}."
                continue
            if name in cls._trait_default_generators:
                value = repr(value_of(cls, name))
                if out and out[-1].startswith("#  Default: "):
                    out[-1] = f"#  Default: {value}"
                line = f"# c.{cls.__name__}.{name} = {value}"
        out.append(line)
        if line.startswith("c = get_config()"):
            out += ["", GENERATED_NOTE]
    return "\n".join(out)


def check_paths(gateway: Any) -> None:
    """Files and directories the options name must exist."""
    for directory in gateway.kernel_spec_dirs:
        if not os.path.isdir(directory):
            raise ConfigError(
                f"Gateway.kernel_spec_dirs: {directory!r} is not a directory: fix or remove this entry"
            )
    for option in ("certfile", "keyfile", "client_ca", "users_file"):
        path = getattr(gateway, option)
        if path and not os.path.isfile(path):
            raise ConfigError(f"Gateway.{option}: {path!r} does not exist: fix the path")


_TLS_VERSIONS = {"": "TLSv1_2", "TLSv1_2": "TLSv1_2", "TLSv1_3": "TLSv1_3", "5": "TLSv1_2", "2": "TLSv1_2", "16": "TLSv1_2", "17": "TLSv1_2"}


def tls_minimum(ssl_version: str) -> ssl.TLSVersion:
    """``Gateway.ssl_version`` as the lowest TLS version accepted (Enterprise Gateway's
    ``ssl.PROTOCOL_*`` numbers: 5 is TLSv1_2; 2, 16 and 17 negotiate, so TLSv1_2 at least)."""
    name = _TLS_VERSIONS.get(str(ssl_version).strip())
    if name is None:
        raise ConfigError(f"Gateway.ssl_version {ssl_version!r} is not supported: use TLSv1_2 or TLSv1_3 (EG_SSL_VERSION)")
    return getattr(ssl.TLSVersion, name)


def check_tls(gateway: Any) -> None:
    """TLS options that only work together."""
    tls_minimum(gateway.ssl_version)
    if gateway.authorized_origin and not (gateway.certfile and gateway.client_ca):
        raise ConfigError(
            "Gateway.authorized_origin needs client certificates: set Gateway.certfile, keyfile and client_ca too"
        )
