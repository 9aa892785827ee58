"""``eg-gateway new-plugin NAME``: a new resource-manager plugin package, from eg's template.

::

    eg-gateway new-plugin NAME --dir DIR      # writes DIR/eg_<NAME>
    pip install -e DIR/eg_<NAME> && pytest DIR/eg_<NAME>/tests

The template (``eg_core/plugin_template``) is a complete, working resource manager named
``hostproc``: a pyproject with the entry points, the plugin module and its settings, a
kernelspec, a README, and tests wired to eg's conformance suite (they pass as generated). Every
``hostproc`` (``HostProc``, ``HOSTPROC``) in its paths and texts becomes the new name. The
plugin authors' guide walks through the same files.
"""

from __future__ import annotations

import argparse
import re
import sys
from pathlib import Path

TEMPLATE = Path(__file__).parent.parent / "plugin_template"
TEMPLATE_NAME = "hostproc"
VALID_NAME = re.compile(r"[a-z][a-z0-9_]{0,39}\Z")


def render(text: str, name: str) -> str:
    """The template's text for plugin ``name``."""
    camel = "".join(part.title() for part in name.split("_"))
    return text.replace("HostProc", camel).replace("HOSTPROC", name.upper()).replace(TEMPLATE_NAME, name)


def write(name: str, parent: Path) -> Path:
    """Write the package ``eg_<name>`` under ``parent``; returns its directory. Raises
    ``ValueError`` for a name that cannot be a Python package, ``FileExistsError`` when the
    directory exists."""
    if not VALID_NAME.match(name):
        raise ValueError(f"{name!r}: a plugin name is lower-case letters, digits and '_', starting with a letter")
    target = parent / f"eg_{name}"
    if target.exists():
        raise FileExistsError(f"{target} exists: choose another name or directory")
    for source in sorted(TEMPLATE.rglob("*")):
        relative = source.relative_to(TEMPLATE)
        if source.is_dir() or "__pycache__" in relative.parts or source.suffix == ".pyc":
            continue
        destination = target / render(str(relative), name)
        destination.parent.mkdir(parents=True, exist_ok=True)
        destination.write_text(render(source.read_text(encoding="utf-8"), name), encoding="utf-8")
    return target


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="eg-gateway new-plugin", description=__doc__.split("\n")[0].strip("`: "))
    parser.add_argument("name", help="the resource manager's name (kernelspecs say eg-<name>)")
    parser.add_argument("--dir", default=".", help="where to write the package eg_<name> (default: here)")
    options = parser.parse_args(argv)
    try:
        target = write(options.name, Path(options.dir))
    except (ValueError, FileExistsError) as exc:
        print(f"eg-gateway new-plugin: {exc}", file=sys.stderr)
        return 2
    print(f"Wrote {target}. Next:\n    pip install -e {target}\n    pytest {target / 'tests'}\n"
          f"then replace the backend calls in {target / f'eg_{options.name}' / '_kernels.py'}.")
    return 0


__all__ = ["write", "render", "main", "TEMPLATE"]
