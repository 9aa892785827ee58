"""The documentation cannot drift: the site builds with warnings as errors, every code example
in the plugin authors' guide runs, and every ``eg_*`` name in the docs and in docstrings exists.
"""

from __future__ import annotations

import ast
import importlib
import re
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

import eg_core
from eg_core import hookspecs

ROOT = Path(__file__).resolve().parents[1]
DOCS = ROOT / "docs"
AUTHORS = DOCS / "authors"
TEMPLATE = ROOT / "eg_core" / "plugin_template"
PAGES = sorted([*DOCS.rglob("*.md"), ROOT / "README.md", *ROOT.glob("plugins/*/README.md")])
NAME = re.compile(r"(?<![\w./-])(eg_[a-z0-9_]+(?:\.[A-Za-z_][A-Za-z0-9_]*)*)")
FILE_SUFFIXES = (".py", ".json", ".md", ".toml", ".sh", ".log", ".yaml")
# Names that stand for a plugin a reader creates (``eg-gateway new-plugin pbs`` writes eg_pbs).
EXAMPLE_NAMES = {"eg_pbs"}
FENCE = re.compile(r"^```(\{code-block\} python|python)\n(.*?)^```", re.S | re.M)
INCLUDE = re.compile(r"^```\{literalinclude\} (\S+)", re.M)


def test_site_builds_without_warnings(tmp_path):
    """sphinx-build -W: a broken link, a bad reference, a docstring autodoc cannot read fails."""
    result = subprocess.run(
        [sys.executable, "-m", "sphinx", "-W", "--keep-going", "-q", "-b", "html", "-c", str(DOCS), str(ROOT), str(tmp_path / "html")],
        capture_output=True, text=True, timeout=600,
    )
    assert result.returncode == 0, result.stderr[-6000:]
    built = tmp_path / "html"
    assert "eg_launch_process" in (built / "docs" / "authors" / "hooks.html").read_text()  # autodoc of hookspecs
    assert "/api/kernels/{kernel_id}/interrupt" in (built / "docs" / "api.html").read_text()  # the OpenAPI file
    assert (built / "plugins" / "eg_slurm" / "README.html").exists()  # each plugin's README


def _examples() -> list[tuple[str, str]]:
    return [(f"{page.name}:{n}", textwrap.dedent(match.group(2)))
            for page in sorted(AUTHORS.glob("*.md")) for n, match in enumerate(FENCE.finditer(page.read_text()))]


@pytest.mark.parametrize("where,code", _examples() or [("none", "")])
def test_inline_examples_run(where, code, tmp_path):
    """Each Python block of the authors' guide runs: a test module under pytest, anything else
    as a script."""
    if not code:
        return
    path = tmp_path / ("test_example.py" if "def test_" in code else "example.py")
    path.write_text(code)
    argv = [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", str(path)] if path.name.startswith("test_") else [sys.executable, str(path)]
    result = subprocess.run(argv, capture_output=True, text=True, timeout=300, cwd=tmp_path)
    assert result.returncode == 0, f"{where}:\n{code}\n{result.stdout[-3000:]}{result.stderr[-3000:]}"


def test_included_examples_come_from_the_tested_template():
    """Code shown with literalinclude is the plugin template, which test_new_plugin.py
    generates, installs and tests."""
    for page in AUTHORS.glob("*.md"):
        for target in INCLUDE.findall(page.read_text()):
            path = (page.parent / target).resolve()
            assert path.is_relative_to(TEMPLATE) and path.exists(), f"{page.name}: {target}"


def _docstrings(path: Path) -> list[str]:
    tree = ast.parse(path.read_text(encoding="utf-8"))
    nodes = [n for n in ast.walk(tree) if isinstance(n, (ast.Module, ast.ClassDef, ast.FunctionDef, ast.AsyncFunctionDef))]
    return [doc for doc in (ast.get_docstring(n) for n in nodes) if doc]


def _identifiers_in_sources() -> set[str]:
    """Every name and string of eg's Python sources (attributes like ``km.eg_kernel``, fixture
    names, config file names)."""
    found: set[str] = set()
    for path in [*ROOT.glob("eg_core/**/*.py"), *ROOT.glob("plugins/*/**/*.py"), *ROOT.glob("tests/*.py")]:
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Name):
                found.add(node.id)
            elif isinstance(node, ast.Attribute):
                found.add(node.attr)
            elif isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
                found.add(node.name)
            elif isinstance(node, ast.arg):
                found.add(node.arg)
            elif isinstance(node, ast.Constant) and isinstance(node.value, str):
                found.update(re.findall(r"eg_[a-z0-9_]+", node.value))
    return found


def _resolves(dotted: str) -> bool:
    parts = dotted.split(".")
    for i in range(len(parts), 0, -1):
        try:
            obj = importlib.import_module(".".join(parts[:i]))
        except ImportError:
            continue
        try:
            for attr in parts[i:]:
                obj = getattr(obj, attr)
        except AttributeError:
            return False
        return True
    return False


def test_every_eg_name_exists(monkeypatch):
    """Every ``eg_*`` name in the docs, the READMEs and the docstrings of eg-core and its plugins
    is a module or object that imports, a hook, or a name eg's code uses."""
    monkeypatch.syspath_prepend(str(TEMPLATE))  # the template's package, eg_hostproc
    texts = {str(page.relative_to(ROOT)): page.read_text() for page in PAGES}
    for path in [*ROOT.glob("eg_core/**/*.py"), *ROOT.glob("plugins/*/eg_*/**/*.py")]:
        texts.update({f"{path.relative_to(ROOT)} (docstring {i})": doc for i, doc in enumerate(_docstrings(path))})
    hooks = {name for name in dir(hookspecs) if name.startswith("eg_")}
    identifiers = _identifiers_in_sources()
    missing = []
    for where, text in texts.items():
        for name in set(NAME.findall(text)):
            for suffix in FILE_SUFFIXES:
                name = name.removesuffix(suffix)
            head = name.split(".")[0]
            if name in hooks or name in EXAMPLE_NAMES or (_resolves(name) if _resolves(head) else head in identifiers):
                continue
            missing.append(f"{where}: {name}")
    assert not missing, "names that do not exist:\n" + "\n".join(sorted(missing))
    assert eg_core.__name__ == "eg_core"
