"""The public API is a spelling rule, and plugins use nothing else.

Plugins (everything under ``plugins/``, tests included) and the builtin policies that claim to be
written as a third party would may import from ``eg_core`` only the names in ``eg_core.__all__``
and public modules: those no part of whose dotted name starts with ``_`` (``eg_core.PUBLIC_MODULES``
lists them; ``tests/test_structure.py`` checks the list against the tree), and from those modules
no name that starts with ``_``.
"""

from __future__ import annotations

import ast
import importlib
from pathlib import Path

import pytest

import eg_core

ROOT = Path(__file__).resolve().parents[1]
# The builtin plugins, written on the public API (their own private helpers are theirs). Warm
# pools are exempt: they start kernels outside any request, as part of the kernel registry.
POOLS = {"pools.py", "_pools.py"}
BUILTINS = sorted(p for p in (ROOT / "eg_core" / "_builtin").glob("*.py") if p.name not in POOLS)


def _plugin_files() -> list[Path]:
    return sorted(p for p in (ROOT / "plugins").rglob("*.py") if ".venv" not in p.parts)


def private(module: str) -> bool:
    """Whether ``module`` (a dotted name under ``eg_core``) is private by its spelling."""
    return any(part.startswith("_") for part in module.split(".")[1:])


def violations(path: Path, inside_eg_core: bool = False) -> list[str]:
    """Imports of ``eg_core`` in ``path`` that are not public. Relative imports stay inside the
    plugin's own package; in ``eg_core._builtin`` (``inside_eg_core``) only level 1 does."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                if alias.name.split(".")[0] == "eg_core" and private(alias.name):
                    found.append(f"{path.relative_to(ROOT)}:{node.lineno}: import {alias.name}")
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                if inside_eg_core and node.level > 1:
                    found.append(f"{path.relative_to(ROOT)}:{node.lineno}: relative import into eg_core")
                continue
            module = node.module or ""
            if module.split(".")[0] != "eg_core":
                continue
            if private(module):
                found.append(f"{path.relative_to(ROOT)}:{node.lineno}: from {module} import ...")
            elif module != "eg_core" and any(alias.name.startswith("_") for alias in node.names):
                found.append(f"{path.relative_to(ROOT)}:{node.lineno}: from {module} import _...")
            elif module == "eg_core":
                for alias in node.names:
                    if alias.name not in eg_core.__all__ and f"eg_core.{alias.name}" not in eg_core.PUBLIC_MODULES:
                        found.append(f"{path.relative_to(ROOT)}:{node.lineno}: from eg_core import {alias.name}")
    return found


def test_plugins_import_only_the_public_api():
    files = _plugin_files()
    assert len(files) > 10, "plugins/ was not found"
    bad = [v for path in files for v in violations(path)]
    assert not bad, "plugins import internal eg_core names:\n" + "\n".join(bad)


def test_builtin_plugins_use_only_the_public_api():
    assert len(BUILTINS) > 5, "eg_core/_builtin was not found"
    bad = [v for path in BUILTINS for v in violations(path, inside_eg_core=True)]
    assert not bad, "builtin plugins import internal eg_core names:\n" + "\n".join(bad)


def test_the_scan_catches_internal_imports(tmp_path):
    sample = ROOT / "plugins" / "_scan_sample.py"
    sample.write_text(
        "from eg_core._runtime.plugins import get_plugin_manager\nfrom eg_core import remote, hookimpl, kernels\n"
        "from eg_core.remote import _listener\nimport eg_core._server.app\nfrom eg_core.testing import kernel_context\n"
    )
    try:
        assert [v.split(": ", 1)[1] for v in violations(sample)] == [
            "from eg_core._runtime.plugins import ...",
            "from eg_core import kernels",
            "from eg_core.remote import _...",
            "import eg_core._server.app",
        ]
    finally:
        sample.unlink()


@pytest.mark.parametrize("module", eg_core.PUBLIC_MODULES)
def test_public_modules_are_documented_and_complete(module):
    mod = importlib.import_module(module)
    assert (mod.__doc__ or "").strip(), f"{module} has no docstring"
    for name in getattr(mod, "__all__", ()):
        assert hasattr(mod, name), f"{module}.__all__ names {name}, which it lacks"


def test_package_docstring_lists_every_public_module():
    for module in eg_core.PUBLIC_MODULES[1:]:
        assert f":mod:`{module}`" in eg_core.__doc__, f"eg_core's docstring does not describe {module}"
