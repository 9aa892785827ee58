"""The documentation cannot drift: the site builds with warnings as errors, every code example
in the plugin authors' guide runs, and every ``eg_*`` name in the docs and in docstrings exists.
"""

from __future__ import annotations

import ast
import functools
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


# Runs sphinx-build with pytest made unimportable: the documented build needs no test tools.
WITHOUT_PYTEST = """
import sys
class Block:
    def find_spec(self, name, path=None, target=None):
        if name == "pytest" or name.startswith(("pytest.", "_pytest")):
            raise ModuleNotFoundError(f"No module named {name!r}")
sys.meta_path.insert(0, Block())
from sphinx.cmd.build import main
sys.exit(main(sys.argv[1:]))
"""


def test_site_builds_without_warnings(tmp_path):
    """sphinx-build -W: a broken link, a bad reference, a docstring autodoc cannot read fails;
    and it builds without pytest installed, with an index.html at the top of the output."""
    result = subprocess.run(
        [sys.executable, "-c", WITHOUT_PYTEST, "-W", "--keep-going", "-q", "-b", "html", "-c", str(DOCS), str(ROOT), str(tmp_path / "html")],
        capture_output=True, text=True, timeout=600,
    )
    assert result.returncode == 0, result.stderr[-6000:]
    built = tmp_path / "html"
    assert "docs/index.html" in (built / "index.html").read_text()
    assert "eg_launch_process" in (built / "docs" / "authors" / "hooks.html").read_text()  # autodoc of hookspecs
    assert "GatewayProcess" in (built / "docs" / "authors" / "testing.html").read_text()  # autodoc of eg_core.testing
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


@functools.cache
def _identifiers_in_sources() -> frozenset[str]:
    """Every name and string of eg's Python sources (attributes like ``km.eg_kernel``, fixture
    names, config file names); not their docstrings, which only mention names."""
    found: set[str] = set()
    for path in [*ROOT.glob("eg_core/**/*.py"), *ROOT.glob("plugins/*/**/*.py"), *ROOT.glob("tests/*.py")]:
        tree = ast.parse(path.read_text(encoding="utf-8"))
        docstrings = {id(node.body[0].value) for node in ast.walk(tree)
                      if isinstance(node, (ast.Module, ast.ClassDef, ast.FunctionDef, ast.AsyncFunctionDef))
                      and node.body and isinstance(node.body[0], ast.Expr) and isinstance(node.body[0].value, ast.Constant)}
        for node in ast.walk(tree):
            if isinstance(node, ast.Name):
                found.add(node.id)
            elif isinstance(node, ast.Attribute):
                found.add(node.attr)
            elif isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
                found.add(node.name)
            elif isinstance(node, ast.arg):
                found.add(node.arg)
            elif isinstance(node, ast.Constant) and isinstance(node.value, str) and id(node) not in docstrings:
                found.update(re.findall(r"eg_[a-z0-9_]+", node.value))
    return frozenset(found)


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
            if name.endswith("_") and any(hook.startswith(name) for hook in hooks):  # eg_store_*: a family of hooks
                continue
            if name in hooks or name in EXAMPLE_NAMES or (_resolves(name) if _resolves(head) else head in identifiers):
                continue
            missing.append(f"{where}: {name}")
    assert not missing, "names that do not exist:\n" + "\n".join(sorted(missing))
    assert eg_core.__name__ == "eg_core"


def test_a_name_only_a_docstring_mentions_does_not_count_as_used():
    assert "eg_" + "restore" not in _identifiers_in_sources()  # (spelt in two parts, or this string would count)
    assert "eg_load_process_info" in _identifiers_in_sources()


def _plugins():
    """The installed plugins of this checkout: name -> (is a resource manager, implements eg_doctor)."""
    from eg_core._runtime.plugins import get_plugin_manager, is_resource_manager

    pm = get_plugin_manager()
    return {name: (is_resource_manager(plugin), hasattr(plugin, "eg_doctor"))
            for name, plugin in pm.list_name_plugin() if plugin is not None}


def test_the_readme_lists_every_resource_manager():
    readme = (ROOT / "README.md").read_text()
    table = readme[readme.index("## Resource managers"):readme.index("## Operating it")]
    intro = readme[:readme.index("## Run it")]
    for name, (resource_manager, _) in _plugins().items():
        if resource_manager:
            assert re.search(rf"^\| `{name}`", table, re.M), f"README's resource-manager table has no row for {name}"
    for plugin_dir in ROOT.glob("plugins/eg_*/pyproject.toml"):
        assert plugin_dir.parent.name in table, f"README's resource managers do not mention {plugin_dir.parent.name}"
    assert " next" not in intro, "the README's intro announces as coming what exists"


def test_the_doctor_page_has_a_row_for_every_plugin_with_checks():
    page = (DOCS / "operators" / "doctor.md").read_text()
    for name, (_, checks) in _plugins().items():
        if checks:
            assert re.search(rf"^\| `{name}` \|", page, re.M), f"docs/operators/doctor.md has no row for {name}"


def test_numbers_of_conformance_checks_are_the_suites():
    from eg_core.testing._conformance import ResourceManagerConformance

    count = sum(name.startswith("test_") for name in dir(ResourceManagerConformance))
    for page in PAGES:
        for line in page.read_text().splitlines():
            if "conformance" in line.lower():
                for number in re.findall(r"\b(\d+) (?:checks|of \d+)", line):
                    assert int(number) == count, f"{page.relative_to(ROOT)}: {number} conformance checks, the suite has {count}: {line}"


def test_install_commands_do_not_fetch_eg_from_an_index():
    for page in PAGES:
        for line in page.read_text().splitlines():
            command = line.split(" # ")[0].split("  #")[0]  # a shell comment names packages, not installs them
            assert not re.search(r"pip install[^`]*\beg-(?:core|ssh|docker|k8s|slurm|yarn|webhook)\b(?![\w.]*/)", command), (
                f"{page.relative_to(ROOT)}: eg's packages are on no index; install them from a checkout: {line}")


# Variables the docs name as examples, not as settings: a misspelling the gateway names at startup,
# and the placeholder of the plugin kit's tagging example.
EXAMPLE_VARIABLES = {"EG_MAX_KERNEL_PER_USER", "EG_MY_NAME"}


def test_every_variable_the_docs_name_is_one_eg_reads():
    import os

    from eg_core._server.app import Gateway
    from eg_core.config import variables_read
    from eg_core._runtime.plugins import get_plugin_manager
    from eg_core._runtime.callback_listener import ResponseListener

    pm = get_plugin_manager()
    classes = [Gateway, ResponseListener, *(cls for found in pm.hook.eg_configurables() for cls in found)]
    sources = [ROOT / "eg_core", ROOT / "kernelspecs", *(Path(p.__file__).parent for p in pm.get_plugins() if getattr(p, "__file__", None))]
    read = variables_read(classes, dict.fromkeys(map(os.fspath, sources)))
    unread = sorted({f"{page.relative_to(ROOT)}: {name}" for page in PAGES
                     for name in re.findall(r"\b(EG_[A-Z0-9_]*[A-Z0-9])\b", page.read_text())
                     if name not in read and name not in EXAMPLE_VARIABLES})
    assert not unread, "variables the docs name that eg does not read:\n" + "\n".join(unread)


def test_every_option_the_docs_name_exists():
    from eg_core._server.app import Gateway
    from eg_core._server.config_files import configurable_classes
    from eg_core._runtime.plugins import get_plugin_manager
    from eg_core._runtime.callback_listener import ResponseListener

    pm = get_plugin_manager()
    known = configurable_classes([Gateway, ResponseListener, *(cls for found in pm.hook.eg_configurables() for cls in found)])
    missing = sorted({f"{page.relative_to(ROOT)}: {section}.{option}" for page in PAGES
                      for section, option in re.findall(r"\b([A-Z][A-Za-z]+)\.([a-z_][a-z0-9_]*)\b", page.read_text())
                      if section in known and option not in known[section].class_traits(config=True)})
    assert not missing, "options the docs name that do not exist:\n" + "\n".join(missing)
